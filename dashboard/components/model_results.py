"""Results of one saved model: its training curves, then test-set metrics, clickable confusion matrix,
per-class scores and mistakes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, charts
from mnist_core import evaluate, registry
from mnist_core.errors import LabError

GALLERY = 30  # digits per gallery: enough to see a pattern, cheap to draw


def _gallery(images, titles: list[str], cols: int = 10) -> None:
    st.plotly_chart(charts.image_grid(images, titles, cols=cols), config={"staticPlot": True})


def training_curves(name: str, meta: dict) -> None:
    """Loss and accuracy as stored with the model: batch resolution when it has a curve, else per epoch."""
    st.subheader("Training curves")
    x = st.radio("x-axis", list(charts.X_AXES), format_func=charts.X_AXES.get, horizontal=True,
                 key=f"results_x_{name}")
    left, right = st.columns(2)
    for col, metric in ((left, "loss"), (right, "accuracy")):
        col.plotly_chart(charts.training_curves({name: meta}, metric, x=x), key=f"results_{metric}_{name}")
    notes = []
    if isinstance(early := meta.get("early_stopped"), dict):
        notes.append(f"Early stopping ended training after epoch {early.get('epoch')}; the model keeps the weights "
                     f"of epoch {early.get('best_epoch')}, its lowest validation loss.")
    if isinstance(stop := meta.get("stopped_early"), dict):
        notes.append(f"Stopped by request during epoch {stop.get('at_epoch')}; saved as it was at the end of its "
                     f"best epoch, {stop.get('best_epoch')}.")
    if not meta.get("curve"):
        notes.append("This model was saved with one point per epoch (no batch-resolution curve).")
    for note in notes:
        st.caption(note)


def show(name: str) -> None:
    try:
        meta = registry.read_metadata(name)
        probs = cache.test_probabilities(name)
        mnist = cache.mnist()
    except LabError as exc:
        st.error(str(exc))
        return
    test = meta["test"]
    labels, predicted = mnist.y_test, probs.argmax(axis=1)
    a, b, c, d = st.columns(4)
    a.metric("Test accuracy", f"{test['accuracy']:.2%}")
    b.metric("Test loss", f"{test['loss']:.4f}")
    c.metric("Macro F1", f"{test['macro_f1']:.4f}")
    d.metric("Train time", f"{meta.get('train_seconds', 0):.0f} s")
    training_curves(name, meta)

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Confusion matrix")
        cm = test["confusion_matrix"]
        fig = charts.add_cell_picker(charts.confusion_matrix(cm), cm)
        event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=f"cm_pick_{name}")
    with right:
        st.subheader("Per class")
        table = pd.DataFrame({"digit": range(10), "precision": test["precision"], "recall": test["recall"]})
        st.dataframe(table, hide_index=True, column_config={
            k: st.column_config.ProgressColumn(k, format="percent", min_value=0.0, max_value=1.0)
            for k in ("precision", "recall")})

    points = event.selection.points if event else []
    if points:
        true, pred = int(points[-1]["y"]), int(points[-1]["x"])
        ids = np.flatnonzero((labels == true) & (predicted == pred))
        st.subheader(f"True {true}, predicted {pred}: {len(ids)} test images")
        if len(ids):
            shown = ids[:GALLERY]
            _gallery(mnist.x_test[shown], [f"#{i} {probs[i, pred]:.0%}" for i in shown])
    else:
        st.caption("Click a cell of the matrix to see its test images.")

    wrong = evaluate.misclassified(probs, labels)
    st.subheader(f"Misclassified test digits ({len(wrong)}), most confident first")
    shown = wrong[:GALLERY]
    _gallery(mnist.x_test[shown], [f"{labels[i]}→{predicted[i]} {probs[i, predicted[i]]:.0%}" for i in shown])
