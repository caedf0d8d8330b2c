"""Entry point: `streamlit run dashboard/app.py`. Pages live in dashboard/views/."""

import gc
import sys
from pathlib import Path

import streamlit as st

# Streamlit puts dashboard/ on sys.path; the project root holds mnist_core and the dashboard package.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VIEWS = Path(__file__).parent / "views"

# After every script run Streamlit calls gc.collect() and keras.backend.clear_session() (another
# gc.collect()). With TensorFlow's ~370,000 long-lived objects each collection took 1-2 s, on every
# rerun of every page. gc.freeze() moves the objects alive now (TensorFlow, Keras, Streamlit) into a
# permanent generation the collector skips: a Home rerun went from ~2 s to ~0.06 s (benchmarks/app_pages.py).
import keras  # noqa: E402, F401  (every page needs it; imported here so the freeze covers it)

if gc.get_freeze_count() == 0:
    gc.freeze()

st.set_page_config(page_title="MNIST Model Lab", page_icon="✍️", layout="wide")

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
st.navigation(pages).run()
