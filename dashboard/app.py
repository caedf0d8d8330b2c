"""Entry point: `streamlit run dashboard/app.py`. Pages live in dashboard/views/."""

import logging
import sys
from pathlib import Path

import streamlit as st

# Streamlit puts dashboard/ on sys.path; the project root holds mnist_core and the dashboard package.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from mnist_core.tf_quiet import use_lab_settings  # noqa: E402

use_lab_settings()  # before the background import of TensorFlow: the settings the jobs run with

VIEWS = Path(__file__).parent / "views"

# Streamlit's cleanup after every script run (fragment runs too) also empties TensorFlow's kernel cache
# (keras.backend.clear_session), so the next prediction rebuilt its kernels: 0.1-0.4 s added to every
# stroke on /draw. The lab keeps no per-run Keras state worth clearing (models are cached on purpose).
from streamlit.runtime.scriptrunner import script_runner  # noqa: E402

if hasattr(script_runner, "_clean_problem_modules"):
    script_runner._clean_problem_modules = lambda: None

st.set_page_config(page_title="MNIST Model Lab", page_icon="✍️", layout="wide")
# The last fence, for what escapes every boundary below (a fragment's own rerun, a callback): Streamlit
# shows a generic line instead of the traceback. Set here, not only in .streamlit/config.toml, which
# `streamlit run` from another directory never reads.
if "streamlit.testing.v1" not in sys.modules:  # under AppTest it would leak into every later test's app
    st.set_option("client.showErrorDetails", "none")
from dashboard import host_guard  # noqa: E402

host_guard.install()  # upload and Host limits even without the project's config.toml: see host_guard.py
from dashboard.components import layout  # noqa: E402

layout.apply()  # every page usable from an 800 px window up: see components/layout.py

pages = [
    st.Page(VIEWS / "home.py", title="Home", icon=":material/home:", url_path="", default=True),
    st.Page(VIEWS / "train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page(VIEWS / "compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page(VIEWS / "explore.py", title="Explore", icon=":material/tune:", url_path="explore"),
    st.Page(VIEWS / "draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
    st.Page(VIEWS / "inspect.py", title="Inspect", icon=":material/biotech:", url_path="inspect"),
    st.Page(VIEWS / "my_digits.py", title="My digits", icon=":material/gesture:", url_path="my-digits"),
    st.Page(VIEWS / "data.py", title="Data", icon=":material/grid_view:", url_path="data"),
]
from dashboard.components.session import browser_session  # noqa: E402

browser_session()  # before any page: the id that makes "your last run" yours survives reloads in the URL
from streamlit.errors import FragmentHandledException  # noqa: E402

from dashboard import warmup  # noqa: E402
from dashboard.components import messages  # noqa: E402

try:
    page = st.navigation(pages)
    # Only the run that starts TensorFlow's background import (Home's first) goes on beside it; every other
    # run waits for it, since any page but Home, and Home's fetch and import actions, import TensorFlow too.
    if warmup.started() or page.url_path != "":
        warmup.wait()
    page.run()
except FragmentHandledException:
    raise  # a fragment's failure, already logged and shown in its place by Streamlit
except Exception as exc:  # noqa: BLE001  the page boundary: whatever a page did not catch is logged with its
    # traceback and shown as one line under what the page drew so far. st.stop, st.rerun and st.switch_page
    # raise Streamlit's ScriptControlException, a BaseException, so they pass through untouched.
    logging.getLogger("dashboard").exception("a page failed; the browser got one line")
    messages.error(messages.words(exc))
finally:
    # Only now, with the first page drawn: TensorFlow's 4-5 s import (and the gc.freeze after it) in the
    # background, off the cold start. Home needs no TensorFlow; see dashboard/warmup.py.
    warmup.load_in_background()
