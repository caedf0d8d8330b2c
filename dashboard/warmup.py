"""TensorFlow loads after Home is drawn, not before it.

Importing TensorFlow and Keras takes 4-5 s of a cold start and Home needs neither, so app.py draws the page
first and then calls `load_in_background()`: the import runs in a daemon thread while the visitor reads Home.

Nothing else may import TensorFlow while that thread does: two threads importing different parts of one
half-initialised package see each other's partial modules (measured: the background import failed with
"partially initialized module 'tensorflow.python.trackable.data_structures'" while the Train page imported
TensorFlow). So whatever may import TensorFlow calls `wait()` first: app.py before every script run but the
one that started the import, and Home's download buttons, whose callables Streamlit runs in threads of
their own (components/import_ui.py).

Once Keras is in, `gc.freeze()` moves the objects alive then (TensorFlow's ~370,000 long-lived ones) into
a permanent generation the collector skips. Streamlit calls gc.collect() after every script run, and with
TensorFlow's objects in reach each collection took 1-2 s, on every rerun of every page.
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
import threading

log = logging.getLogger(__name__)
_once = threading.Lock()
_thread: threading.Thread | None = None


def _import_and_freeze() -> None:
    try:
        for name in ("tensorflow", "keras"):  # the order the lab's own modules import them in
            importlib.import_module(name)
    except Exception:  # noqa: BLE001  a page that needs them raises the same error where it can be shown
        log.exception("loading TensorFlow in the background failed")
        return
    if gc.get_freeze_count() == 0:
        gc.freeze()


def load_in_background() -> threading.Thread:
    """Start importing TensorFlow and Keras in a daemon thread, once per process; the thread.

    Under Streamlit's AppTest the import runs here instead, in the script's own thread, and the thread is
    never started: a test's own code imports TensorFlow whenever it likes (a fixture that trains a model)
    and cannot know to wait, and two overlapping imports fail (measured: a deadlock on a tensorflow module lock)."""
    global _thread
    with _once:
        if _thread is None:
            _thread = threading.Thread(target=_import_and_freeze, name="tensorflow-warmup", daemon=True)
            if "streamlit.testing.v1" in sys.modules:
                _import_and_freeze()
            else:
                _thread.start()
    return _thread


def started() -> bool:
    return _thread is not None


def wait() -> None:
    """Return once TensorFlow and Keras are imported (or their import failed), starting the import if needed."""
    thread = load_in_background()
    if thread.ident is not None:  # started, not run in place under AppTest
        thread.join()
