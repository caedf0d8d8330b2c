"""One way for a page to tell the user something.

A callback cannot draw (it runs before the script), so it `flash`es a message into a named slot and the
page `show`s that slot where the message belongs, on the next run. Errors are one line, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from mnist_core import fsutil
from mnist_core.errors import LabError

KINDS = ("success", "info", "warning", "error")
log = logging.getLogger(__name__)


def _key(slot: str) -> str:
    return f"msg:{slot}"


def flash(slot: str, kind: str, text: str) -> None:
    """Keep a message for the next time `show(slot)` runs (typically in a callback)."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    st.session_state[_key(slot)] = (kind, text)


def pending(slot: str) -> bool:
    """Whether a message waits in `slot` for its `show`."""
    return _key(slot) in st.session_state


def show(slot: str, where=None) -> None:
    """Draw the message kept in `slot`, once, in `where` (a container; default: here)."""
    msg = st.session_state.pop(_key(slot), None)
    if msg:
        getattr(where or st, msg[0])(msg[1])


def words(exc: BaseException) -> str:
    """An exception as one line for people: a LabError's own words; a full disk, a read-only file system or a
    missing permission said as such; another OS error's file and reason; for anything else, what kind of
    failure it was (the traceback belongs in the server log, not the page)."""
    if isinstance(exc, (LabError, OSError)):
        return fsutil.failure_words(exc) or "Something went wrong (no details were given)"
    return f"Something went wrong here ({fsutil.failure_words(exc)}); the details are in the server log."


def first_line(exc_or_text) -> str:
    text = str(exc_or_text).strip()
    return text.splitlines()[0] if text else ""


def error(exc_or_text, where=None) -> None:
    """One line for a LabError, an exception or a text. Any exception other than a LabError is a surprise:
    its traceback goes to the server log, and the page gets its one line (an OS error's file and reason)."""
    if isinstance(exc_or_text, BaseException):
        if not isinstance(exc_or_text, LabError):
            log.error("unexpected error shown on a page as one line", exc_info=exc_or_text)
        text = fsutil.failure_words(exc_or_text) if isinstance(exc_or_text, OSError) else first_line(exc_or_text)
        text = text or type(exc_or_text).__name__
    else:
        text = first_line(exc_or_text) or "Something went wrong (no details were given)"
    (where or st).error(text)


@contextmanager
def boundary(what: str, where=None) -> Iterator[None]:
    """Run one section of a page: if it fails, it says so in one line (`what`: the failure) and the page goes
    on with its next section. st.stop and st.rerun are BaseExceptions and pass through."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  a section's boundary: logged by error() unless a LabError
        if not isinstance(exc, LabError):
            log.error("unexpected error in a page section (%s)", what, exc_info=exc)
        (where or st).error(f"{what}: {words(exc)}")
