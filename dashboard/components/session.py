"""Who is this browser tab? An id that survives reloads, so "your last run" stays yours.

Streamlit's own session ends with a reload, so the id lives in the URL (`?tab=...`) as well as in session
state. Navigating between pages clears the URL's query; app.py calls `browser_session()` on every run,
which writes it back from session state.
"""

from __future__ import annotations

import re
import uuid

import streamlit as st

PARAM = "tab"
_VALID = re.compile(r"^[0-9a-f]{12}$")


def browser_session() -> str:
    ss = st.session_state
    sid = ss.get("browser_session")
    if not sid:
        from_url = st.query_params.get(PARAM, "")
        sid = from_url if _VALID.fullmatch(from_url) else uuid.uuid4().hex[:12]
        ss.browser_session = sid
    if st.query_params.get(PARAM) != sid:
        st.query_params[PARAM] = sid
    return sid
