"""Compare's Seed groups section (being built in issue 13; owned by one engineer)."""

import streamlit as st


def render(picked: list[str], colors: dict[str, str]) -> None:
    st.caption("Seed groups: not built yet.")
