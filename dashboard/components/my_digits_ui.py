"""My-digits pieces shown on other pages: Draw's "Save to my digits" and Compare's "my digits" test set.

They live here so those pages only gain one call each.
"""

from __future__ import annotations

import logging
import os

import pandas as pd
import streamlit as st

from dashboard import cache, charts
from dashboard.components import messages
from mnist_core import evaluate, my_digits
from mnist_core.errors import LabError

PLAIN = {"displayModeBar": False}
log = logging.getLogger(__name__)


def _save(image, input28, key: str) -> None:
    label = st.session_state[key]
    try:
        digit_id = my_digits.add(my_digits.drawing_png(image), input28, label)
        messages.flash("my_save", "success", f"Saved to my digits as a {label} (#{digit_id}).")
    except LabError as exc:  # busy, full, read-only or damaged, in words; the drawing stays on the canvas
        messages.flash("my_save", "error", str(exc))
    except Exception:
        log.exception("saving a drawing to my digits failed")
        messages.flash("my_save", "error", f"the drawing could not be saved to {my_digits.db_path()} "
                       "(an unexpected error, logged on the server)")


def save_control(image, input28, predicted: int) -> None:
    """Confirm or correct the label, then store the drawing (`image`: canvas array or PIL image) and its input."""
    key = f"my_save_label_{predicted}"  # a new prediction proposes its own digit
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    left.selectbox("Label (confirm or correct)", range(10), index=predicted, key=key)
    right.button("Save to my digits", on_click=_save, args=(image, input28, key), icon=":material/save:")
    messages.show("my_save")


def _db_stamp() -> tuple:
    path = my_digits.db_path()
    try:
        s = os.stat(path)
        return (str(path), s.st_mtime_ns, s.st_size)
    except OSError:
        return (str(path), None)


@st.cache_data(show_spinner="Scoring the models on your digits...", max_entries=8)
def _report(names: tuple, stamps: tuple, db_stamp: tuple) -> dict | None:
    return evaluate.on_my_digits({name: cache.predictor(name).model for name in names})


def _percent(value) -> str:
    return "—" if value is None else f"{value:.2%}"


def compare_section(names: list[str]) -> None:
    """Accuracy of each model on my digits beside its MNIST test accuracy, a confusion matrix, and the digits
    every model gets wrong."""
    st.subheader("My digits")
    if not names:
        return
    try:
        report = _report(tuple(names), tuple(cache.model_stamp(n) for n in names), _db_stamp())
    except Exception as exc:  # busy, damaged or a model that will not load: one line, the rest of Compare goes on
        messages.error(exc)
        return
    if report is None:
        st.info("No saved digits yet: save some from the Draw page to test the models on your own handwriting.")
        return
    meta = {e.name: e.metadata for e in cache.models()}
    rows = [{"model": n, "my digits accuracy": _percent(report["models"][n]["accuracy"]),
             "MNIST test accuracy": _percent(meta.get(n, {}).get("test", {}).get("accuracy")),
             "fine-tuned from": meta.get(n, {}).get("parent") or ""} for n in names]
    st.caption(f"{len(report['y'])} of your digits, saved from the Draw page (see My digits).")
    st.container(key="my_digits_table").table(pd.DataFrame(rows).set_index("model"))
    left, right = st.columns(2)
    pick = left.selectbox("Confusion matrix on my digits for", names, key="compare_my_confusion")
    left.plotly_chart(charts.confusion_matrix(report["models"][pick]["confusion_matrix"]), config=PLAIN)
    wrong = report["all_wrong"]
    if len(wrong):
        right.caption(f"{len(wrong)} of your digits every model here gets wrong (label shown):")
        right.plotly_chart(charts.image_grid(list(report["x"][wrong][:40]), [f"#{report['ids'][i]}: {report['y'][i]}"
                                             for i in wrong[:40]], cols=8, tile_px=60), config=PLAIN)
    else:
        right.caption("Every one of your digits is read right by at least one of these models.")
