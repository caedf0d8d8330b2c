"""Page layout that holds from an 800 px window up: one style sheet for every page, applied once in app.py.

Streamlit stacks columns only when the *window* is narrower than 640 px, but an expanded sidebar takes
300 px of it: at 800 px the main area is 468 px wide and a three-way split leaves about 150 px per column
(the Draw canvas was clipped to 160 of its 280 px, metric values ended in "..."). These rules make the
layout depend on the room the page really has:

- below NARROW_PX with the sidebar open, columns in the main area stack the way Streamlit stacks them on a
  phone (the main area is then under 640 px);
- metric values and labels, and button labels, wrap instead of being cut off with an ellipsis, at any width
  (a tight row showed "97.5...", "Downlo..." and "Save to ...").

The sidebar keeps Streamlit's width (the user can narrow or collapse it): capped at 240 px it cut the
Train spec editor's side-by-side fields ("relu" showed as "rel").

Pure CSS, so it also holds while a window is resized. No container query: that would make the main area
the containing block of fixed-position descendants and break Streamlit's full-screen view of charts.
"""

import streamlit as st

# Below this window width the open 300 px sidebar leaves the main area under Streamlit's 640 px column
# breakpoint (the main area has 5 rem padding a side from about 1000 px on).
NARROW_PX = 1100

STYLE = f"""
<style>
@media (max-width: {NARROW_PX - 1}px) {{
  .stApp:has(section[data-testid="stSidebar"][data-collapsed="false"]) [data-testid="stMain"] [data-testid="stColumn"] {{
    min-width: calc(100% - 1.5rem);
  }}
}}
[data-testid="stMetricValue"] > div, [data-testid="stMetricValue"] p,
[data-testid="stMetricLabel"] > div, [data-testid="stMetricLabel"] p,
button [data-testid="stMarkdownContainer"], button [data-testid="stMarkdownContainer"] p {{
  white-space: normal;
  overflow-wrap: anywhere;
  text-overflow: clip;
}}
</style>
"""


def apply() -> None:
    """Add the lab's layout rules to the page (style only: it takes no room on the page)."""
    st.html(STYLE)
