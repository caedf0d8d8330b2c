"""Compare's Calibration section: can each picked model's confidence be trusted, as it comes and after
temperature scaling fitted on the model's own validation split? (mnist_core.calibration; one report per model
file, cached on disk.)"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import cache, charts_calibration
from dashboard.components import messages
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

SCALED_CHOICES = {"before": "as the model says", "after": "after temperature scaling"}
HISTOGRAMS_PER_ROW = 3
FORMATS = {"test accuracy": "{:.2%}", "ECE": "{:.4f}", "NLL": "{:.4f}", "Brier": "{:.4f}", "temperature T": "{:.3f}",
           "ECE after T": "{:.4f}", "NLL after T": "{:.4f}", "Brier after T": "{:.4f}"}


def _reports(picked: list[str]) -> dict[str, dict]:
    """Every picked model's report: read from disk, or computed under one progress bar for those not measured yet.
    A model that fails costs one line; the others still show."""
    reports, pending = {}, []
    for name in picked:
        try:
            found = cache.calibration_cached(name)
        except LabError as exc:
            messages.error(f"{markdown_literal(name)}: {exc}")
            continue
        if found is None:
            pending.append(name)
        else:
            reports[name] = found
    if pending:
        bar = st.progress(0.0, text=f"Measuring calibration of {len(pending)} model(s)...")
        for i, name in enumerate(pending):
            def progress(fraction: float, text: str, i: int = i, name: str = name) -> None:
                bar.progress(min(1.0, (i + fraction) / len(pending)), text=f"{markdown_literal(name)}: {text}")

            try:
                reports[name] = cache.calibration_report(name, progress)
            except LabError as exc:
                messages.error(f"{markdown_literal(name)}: {exc}")
        bar.empty()
    return {name: reports[name] for name in picked if name in reports}


def _table(reports: dict[str, dict]) -> None:
    rows = []
    for name, rep in reports.items():
        before, after = rep["before"], rep["after"]
        rows.append({"model": name, "test accuracy": before["accuracy"], "ECE": before["ece"], "NLL": before["nll"],
                     "Brier": before["brier"], "temperature T": rep["temperature"], "ECE after T": after["ece"],
                     "NLL after T": after["nll"], "Brier after T": after["brier"],
                     "T fitted on": (f"{rep['validation_images']:,} validation images" if rep["temperature_fitted"]
                                     else "not fitted")})
    df = pd.DataFrame(rows)
    st.dataframe(df.style.format({k: v for k, v in FORMATS.items() if k in df}), hide_index=True)
    any_report = next(iter(reports.values()))
    st.caption(f"On the {any_report['test_images']:,} test images. ECE: the gap between confidence and accuracy over "
               f"{any_report['bins']} bins of top-label confidence, weighted by the bins' share of images (0 is "
               "perfect). NLL: mean −ln p(true digit). Brier: mean over images of Σ over the 10 digits of "
               "(p − 1 if true else p)², 0 perfect, 2 worst. Temperature T: fitted on each model's own validation "
               "split to minimise NLL; probabilities become softmax(log p / T), T > 1 softens over-confidence. "
               "The predicted digit, and so accuracy, never changes.")
    for name, rep in reports.items():
        if not rep["temperature_fitted"]:
            st.caption(f"{markdown_literal(name)}: temperature {markdown_literal(rep['temperature_note'])}.")


def render(picked: list[str], colors: dict[str, str]) -> None:
    try:
        cache.mnist()
    except LabError as exc:
        messages.error(f"Calibration needs MNIST: {exc}")
        return
    reports = _reports(picked)
    if not reports:
        return
    _table(reports)
    which = st.radio("Confidence", list(SCALED_CHOICES), format_func=SCALED_CHOICES.get, horizontal=True,
                     key="calibration_scaled")
    st.plotly_chart(charts_calibration.reliability_diagram(
        {n: rep[which]["reliability"] for n, rep in reports.items()}, colors,
        title=f"Reliability ({SCALED_CHOICES[which]})"))
    st.caption("Each point is one bin of answers: how confident the model was (x) and how often it was right (y); "
               "bigger points hold more images. On the dashed diagonal a model's confidence is exactly its accuracy; "
               "below it the model is over-confident.")
    st.markdown("**How confident are right and wrong answers?**")
    names = list(reports)
    for start in range(0, len(names), HISTOGRAMS_PER_ROW):
        for col, name in zip(st.columns(HISTOGRAMS_PER_ROW), names[start : start + HISTOGRAMS_PER_ROW], strict=False):
            col.plotly_chart(charts_calibration.confidence_histogram(reports[name][which]["histograms"], title=name))
    st.caption("Green: answers that were right; red: wrong ones, each as a share of its own group. A model you can "
               "trust keeps its wrong answers at low confidence.")
