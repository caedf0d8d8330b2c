"""Cold start: Home is drawn without TensorFlow, which then loads in the background (dashboard/warmup.py).

Each check runs in a fresh interpreter: this test process may have imported TensorFlow already.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"


def run_fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_home_is_drawn_without_importing_tensorflow():
    out = run_fresh(f"""
        import sys
        from dashboard import warmup
        started = []
        warmup.load_in_background = lambda: started.append(1)  # keep the background import out of this check
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(APP)!r}, default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        print(at.title[0].value, "|", "tensorflow" in sys.modules, "keras" in sys.modules, "|", started)
    """)
    assert out.strip().splitlines()[-1] == "MNIST Model Lab | False False | [1]"


def test_the_background_import_loads_keras_and_freezes_what_it_made():
    out = run_fresh("""
        import gc, sys
        from dashboard import warmup
        assert "tensorflow" not in sys.modules and not warmup.started()
        thread = warmup.load_in_background()
        assert warmup.load_in_background() is thread  # once per process
        warmup.wait()
        print(not thread.is_alive(), "tensorflow" in sys.modules, "keras" in sys.modules, gc.get_freeze_count() > 100_000)
    """)
    assert out.strip().splitlines()[-1] == "True True True True"


def test_every_run_after_the_first_waits_for_the_background_import():
    out = run_fresh(f"""
        from dashboard import warmup
        waits = []
        warmup.wait = lambda: waits.append(1)
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(APP)!r}, default_timeout=300)
        at.run()  # the first Home run draws beside the import it starts
        first = len(waits)
        at.run()  # a later run (a click, another tab) could import TensorFlow: it must wait, not race
        print(not at.exception, first, len(waits))
    """)
    assert out.strip().splitlines()[-1] == "True 0 1"


def test_under_apptest_the_import_runs_in_the_script_thread_after_home():
    out = run_fresh(f"""
        import gc, sys, threading
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(APP)!r}, default_timeout=300)
        at.run()
        alive = [t.name for t in threading.enumerate() if t.name == "tensorflow-warmup"]
        print(not at.exception, "keras" in sys.modules, gc.get_freeze_count() > 100_000, alive)
    """)
    assert out.strip().splitlines()[-1] == "True True True []"
