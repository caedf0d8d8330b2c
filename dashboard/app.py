"""Entry point: `streamlit run dashboard/app.py`. Pages live in dashboard/views/."""

import sys
from pathlib import Path

import streamlit as st

# Streamlit puts dashboard/ on sys.path; the project root holds mnist_core and the dashboard package.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="MNIST Model Lab", page_icon="✍️", layout="wide")

pages = [
    st.Page(VIEWS / "home.py", title="Home", icon=":material/home:", url_path="", default=True),
    st.Page(VIEWS / "train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page(VIEWS / "compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    st.Page(VIEWS / "explore.py", title="Explore", icon=":material/tune:", url_path="explore"),
    st.Page(VIEWS / "draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
    st.Page(VIEWS / "inspect.py", title="Inspect", icon=":material/biotech:", url_path="inspect"),
    st.Page(VIEWS / "my_digits.py", title="My digits", icon=":material/gesture:", url_path="my-digits"),
    st.Page(VIEWS / "data.py", title="Data", icon=":material/grid_view:", url_path="data"),
]
st.navigation(pages).run()
