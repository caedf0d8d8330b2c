"""The one Fetch-MNIST action, for Home and for every page that needs the data."""

from __future__ import annotations

import streamlit as st

from dashboard import cache
from mnist_core import data
from mnist_core.errors import LabError


def fetch_button(key: str = "fetch_mnist") -> None:
    """A button that fetches, verifies and caches MNIST, showing each source it tries, then reruns."""
    if not st.button("Fetch MNIST", icon=":material/download:", type="primary", key=key):
        return
    with st.status("Fetching MNIST...", expanded=True) as status:
        try:
            data.load(on_status=status.write)  # verifies every file and writes the cache
        except LabError as exc:
            status.update(label="Fetching MNIST failed", state="error")
            st.error(str(exc))
            return
        status.update(label="MNIST is ready", state="complete")
    st.rerun()


def require() -> data.Mnist:
    """The verified MNIST arrays; without them, say why, offer Fetch, and stop the page here."""
    try:
        return cache.mnist()
    except LabError as exc:
        st.warning(str(exc))
        fetch_button()
        st.stop()
