"""Home: what the lab is, what each page is for, whether the data is there, and which models are saved."""

import pandas as pd
import streamlit as st

from dashboard import cache, host_guard
from dashboard.components import import_ui, messages, mnist_gate
from mnist_core import data
from mnist_core.display import markdown_literal

# One line per page, in the sidebar's order: where it is, and what a visitor goes there for. Each line is kept
# short enough to fit unbroken beside an open sidebar in an 800 px window (the link label has 488 px there and
# Streamlit cuts a longer one off with "..."): at most LINE_CHARS characters with the title.
LINE_CHARS = 75
PAGES = [
    ("views/train.py", "Train", ":material/model_training:",
     "build a network, or start from a preset, and watch it learn live"),
    ("views/compare.py", "Compare", ":material/compare:",
     "saved models side by side, and whether a gap is more than chance"),
    ("views/explore.py", "Explore", ":material/tune:",
     "a hyperparameter search tries networks; keep the best as a model"),
    ("views/draw.py", "Draw", ":material/draw:",
     "draw or upload a digit and see what every saved model reads"),
    ("views/inspect.py", "Inspect", ":material/biotech:",
     "inside one model: which pixels decide, what each layer sees"),
    ("views/my_digits.py", "My digits", ":material/gesture:",
     "your own handwriting as a test set, and fine-tuning on it"),
    ("views/data.py", "Data", ":material/grid_view:",
     "MNIST itself: digits per class, samples, each model's mistakes"),
]

st.title("MNIST Model Lab")
exposed = host_guard.exposed_address()
if exposed:  # said once, here: config.toml (127.0.0.1) was not used, or HOST was set on purpose
    st.warning(f"This lab is served on {markdown_literal(exposed)}, not only to this computer: anyone who can reach "
               "it can train, delete models and read your digits. There is no login. Serve it on 127.0.0.1 "
               "(`make run`) and reach it through an SSH tunnel, or put an authenticating proxy in front.",
               icon=":material/public:")
st.markdown("Build classifiers for handwritten digits, watch them learn, and see what each architecture choice "
            "does: on the 10,000 MNIST test images and on your own handwriting.")

for path, title, icon, what in PAGES:
    st.page_link(path, label=f"**{title}** · {what}", icon=icon)

st.subheader("Data")
mnist = mnist_gate.available()
if mnist is not None:
    where = data.cache_path() if mnist.source == "cache" else mnist.source
    st.success(f"MNIST: {len(mnist.x_train):,} training and {len(mnist.x_test):,} test images from {markdown_literal(where)}; "
               "all four files pass their sha256 checksums.", icon=":material/verified:")

st.subheader("Saved models")
entries = cache.models()
if not entries:
    st.info("No saved models yet. Train one on the Train page, or import one below.")
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
    import_ui.render_downloads(entries)

if mnist is not None:  # an import is measured and evaluated on MNIST
    with messages.boundary("The import control failed"):
        import_ui.render()
