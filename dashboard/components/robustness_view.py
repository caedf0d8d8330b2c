"""Compare's Robustness section: accuracy along each perturbation ladder for the picked models.

Measured once per model file (mnist_core.robustness, cached on disk by checksum): cached models show at once;
the others are measured on request, one after another, under a progress bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, charts_robustness
from dashboard.components import messages
from mnist_core import robustness
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

MAX_MODELS = 8  # each model not measured yet costs up to half a minute of the server's CPU
FLASH_SLOT = "robustness"


def summary_score(name: str) -> float | None:
    """The model's robustness summary score if it was measured already (never computes; None otherwise)."""
    try:
        return robustness.cached_summary(name, cache.mnist())
    except LabError:
        return None


def _cached(names: list[str], mnist) -> tuple[dict[str, dict], list[str]]:
    results, missing = {}, []
    for name in names:
        try:
            found = robustness.cached(name, mnist)
        except LabError as exc:
            messages.error(f"{name}: {exc}")
            continue
        if found is None:
            missing.append(name)
        else:
            results[name] = found
    return results, missing


def _measure(missing: list[str], mnist) -> None:
    bar, failures = st.progress(0.0, text="Measuring robustness..."), []
    for k, name in enumerate(missing):
        def progress(fraction: float, text: str, k=k, name=name) -> None:
            bar.progress(min(1.0, (k + fraction) / len(missing)), text=f"{name} ({k + 1} of {len(missing)}): {text}")

        try:
            robustness.for_model(name, mnist, model=cache.predictor(name).model, progress=progress)
        except LabError as exc:  # the other models are still measured; said after the rerun
            failures.append(f"{name}: {messages.first_line(exc)}")
    if failures:
        messages.flash(FLASH_SLOT, "error", "Not measured: " + "; ".join(failures))


def summary_table(results: dict[str, dict]) -> pd.DataFrame:
    """Per model: clean accuracy, summary score, and per perturbation the accuracy at its middle non-identity
    level and its worst accuracy on the ladder."""
    rows = []
    for name, result in results.items():
        row = {"model": name, "clean": result["clean_accuracy"], "summary": result["summary"]}
        for pert, ladder in result["perturbations"].items():
            levels = [(lv, a) for lv, a in zip(ladder["levels"], ladder["accuracy"], strict=True)
                      if lv != ladder["identity"]]
            mid_level, mid_acc = levels[(len(levels) - 1) // 2]
            row[f"{pert} @{mid_level:g}"] = mid_acc
            row[f"{pert} worst"] = min(a for _, a in levels)
        rows.append(row)
    return pd.DataFrame(rows)


def render(picked: list[str], colors: dict[str, str]) -> None:
    try:
        mnist = cache.mnist()
    except LabError:
        st.info("Robustness is measured on MNIST test digits: fetch MNIST first (above or on Home).")
        return
    messages.show(FLASH_SLOT)
    shown = picked[:MAX_MODELS]
    if len(picked) > MAX_MODELS:
        st.caption(f"Robustness shows the first {MAX_MODELS} picked models; unpick some to see others.")
    results, missing = _cached(shown, mnist)
    if missing:
        listed = ", ".join(markdown_literal(n) for n in missing)
        st.write(f"Not measured yet: **{listed}** (about half a minute each; kept for every later visit).")
        if st.button(f"Measure robustness ({len(missing)} model{'s' if len(missing) > 1 else ''})",
                     key="robustness_measure", icon=":material/speed:"):
            _measure(missing, mnist)
            st.rerun()  # every measured model is now read from the cache, in picked order
    if not results:
        return
    first = next(iter(results.values()))
    st.caption(f"Accuracy on the same {first['subset']:,} test images for every model (seed {first['seed']}); "
               "each level perturbs them the same way for every model, except FGSM and PGD, which follow each "
               "model's own gradient. Summary: the mean over perturbations of each one's mean accuracy over its "
               "perturbed levels.")
    st.plotly_chart(charts_robustness.curves(results, colors))
    table = summary_table(results)
    percent = {c: "{:.1%}" for c in table.columns if c != "model"}
    st.dataframe(table.style.format(percent), hide_index=True)
    _examples(next(iter(results)), first)


def _examples(name: str, result: dict) -> None:
    try:
        strips = cache.robustness_examples(name)
    except LabError as exc:
        messages.error(exc)
        return
    st.caption(f"One test digit at every level (FGSM and PGD against {markdown_literal(name)}'s gradient).")
    tiles = {k: [np.asarray(im) for im in v] for k, v in strips.items()}
    st.plotly_chart(charts_robustness.example_strip(tiles, result["perturbations"]), config={"staticPlot": True})
