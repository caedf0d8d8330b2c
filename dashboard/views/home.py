"""Home: what the lab is, whether the data is there, which models are saved, and where to go."""

import pandas as pd
import streamlit as st

from dashboard import cache
from mnist_core import data
from mnist_core.errors import LabError

st.title("MNIST Model Lab")
st.markdown(
    "Build a network for handwritten digits in the sidebar of **Train** and watch it learn.  \n"
    "Keep the good ones and set them side by side on the 10,000 MNIST test images in **Compare**.  \n"
    "Then hold them against your own handwriting in **Draw**, and look at the digits themselves in **Data**."
)

cols = st.columns(4)
for col, (path, label, icon) in zip(cols, [
    ("views/train.py", "Train a model", ":material/model_training:"),
    ("views/compare.py", "Compare models", ":material/compare:"),
    ("views/draw.py", "Draw a digit", ":material/draw:"),
    ("views/data.py", "Explore the data", ":material/grid_view:"),
], strict=True):
    col.page_link(path, label=label, icon=icon)

st.subheader("Data")
try:
    mnist = cache.mnist()
except LabError as exc:
    mnist = None
    st.warning(str(exc))
    if st.button("Fetch MNIST", icon=":material/download:", type="primary"):
        with st.status("Fetching MNIST...", expanded=True) as status:
            try:
                data.load(on_status=status.write)  # verifies every file and writes the cache
            except LabError as fetch_error:
                status.update(label="Fetching MNIST failed", state="error")
                st.error(str(fetch_error))
                st.stop()
            status.update(label="MNIST is ready", state="complete")
        st.rerun()
if mnist is not None:
    where = data.cache_path() if mnist.source == "cache" else mnist.source
    st.success(f"MNIST: {len(mnist.x_train):,} training and {len(mnist.x_test):,} test images from {where}; "
               "all four files pass their sha256 checksums.", icon=":material/verified:")

st.subheader("Saved models")
entries = cache.models()
if not entries:
    st.info("No saved models yet. Train one on the Train page.")
else:
    table = pd.DataFrame([e.row() for e in entries])[
        ["name", "type", "parameters", "test_accuracy", "created", "status", "reason"]]
    st.dataframe(table, hide_index=True, column_config={
        "test_accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
        "parameters": st.column_config.NumberColumn(format="localized"),
    })
    broken = sum(not e.ok for e in entries)
    if broken:
        st.caption(f"{broken} entr{'y' if broken == 1 else 'ies'} cannot be loaded; the reason column says why.")
