"""Compare's Calibration section (being built in issue 13; owned by one engineer)."""

import streamlit as st


def render(picked: list[str], colors: dict[str, str]) -> None:
    st.caption("Calibration: not built yet.")
