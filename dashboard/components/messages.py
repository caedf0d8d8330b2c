"""One way for a page to tell the user something.

A callback cannot draw (it runs before the script), so it `flash`es a message into a named slot and the
page `show`s that slot where the message belongs, on the next run. Errors are one line, never a traceback.
"""

from __future__ import annotations

import logging

import streamlit as st

from mnist_core.errors import LabError

KINDS = ("success", "info", "warning", "error")
log = logging.getLogger(__name__)


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
    """One line for a LabError or a text. Any other exception is a surprise: its traceback goes to the
    server log, and the page gets its one-line message."""
    if isinstance(exc_or_text, BaseException) and not isinstance(exc_or_text, LabError):
        log.error("unexpected error shown on a page", exc_info=exc_or_text)
    text = str(exc_or_text).strip()
    if isinstance(exc_or_text, BaseException):
        text = text or type(exc_or_text).__name__
    (where or st).error(text.splitlines()[0] if text else "Something went wrong (no details were given)")


# Every ASCII punctuation mark can start markdown (links, images, emphasis, `:red[..]` directives, `$` maths);
# a backslash before each one makes the text literal in st.markdown, captions, labels and st.success/info/...
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in r"""\`*_{}[]()<>#+-.!|~$:&"'=^%@;,?/"""})


def plain(name) -> str:
    """A name or text read from a file, made inert for any element that renders markdown: control
    characters shown as escapes (a newline cannot start a new block), every markdown character literal."""
    from mnist_core.display import printable

    return printable(str(name)).translate(_MARKDOWN_ESCAPES)
