"""One way for a page to tell the user something.

A callback cannot draw (it runs before the script), so it `flash`es a message into a named slot and the
page `show`s that slot where the message belongs, on the next run. Errors from the lab are one line.
"""

from __future__ import annotations

import streamlit as st

KINDS = ("success", "info", "warning", "error")


def flash(slot: str, kind: str, text: str) -> None:
    """Keep a message for the next time `show(slot)` runs (typically in a callback)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    st.session_state[f"msg:{slot}"] = (kind, text)


def show(slot: str, where=None) -> None:
    """Draw the message kept in `slot`, once, in `where` (a container; default: here)."""
    msg = st.session_state.pop(f"msg:{slot}", None)
    if msg:
        getattr(where or st, msg[0])(msg[1])


def error(exc_or_text, where=None) -> None:
    """One line for a LabError (or any text), never a traceback."""
    text = str(exc_or_text).strip().splitlines()[0] if str(exc_or_text).strip() else type(exc_or_text).__name__
    (where or st).error(text)
