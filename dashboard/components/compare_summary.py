"""Compare's top: the table (stored metrics plus timings measured side by side), the verdict, and the specs in words."""

import pandas as pd
import streamlit as st

from dashboard import cache
from mnist_core import compare, spec_words
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

BEST_STYLE = "background-color: rgba(33, 195, 84, 0.25); font-weight: bold"
DIFF_STYLE = "background-color: rgba(255, 189, 69, 0.3)"
FORMATS = {"train seconds": "{:.1f}", "test accuracy": "{:.2%}", "test loss": "{:.4f}", "macro F1": "{:.4f}",
           "latency ms": "{:.2f}", "images/s": "{:,.0f}", "parameters": "{:,}"}


def _timings(names: list[str]) -> dict[str, dict]:
    if cache.timings_cached(names):
        return cache.timings(names)
    bar = st.progress(0.0, "Timing the picked models side by side...")
    try:
        return cache.timings(names, progress=lambda f, text: bar.progress(f, text))
    finally:
        bar.empty()


def table(meta: dict[str, dict], pairs: list[dict] | None, have_mnist: bool) -> pd.DataFrame:
    """The comparison table; `pairs` are the pairwise McNemar rows (None without MNIST: no accuracy mark)."""
    names = list(meta)
    timings: dict[str, dict] = {}
    if have_mnist:
        try:
            timings = _timings(names)
        except LabError as exc:
            st.warning(f"Timings left out: {exc}")
    rows = compare.table_rows(meta, timings)
    accuracy = {r["model"]: r["test accuracy"] for r in rows if isinstance(r["test accuracy"], float)}
    leader = compare.significant_leader(accuracy, pairs) if pairs else None
    best = compare.best_rows(rows, timings, leader)
    df = pd.DataFrame(rows)
    styler = df.style.format({k: v for k, v in FORMATS.items() if k in df}, na_rep="—")
    for column, winners in best.items():
        styler = styler.map(lambda _: BEST_STYLE, subset=pd.IndexSlice[winners, [column]])
    st.dataframe(styler, hide_index=True)
    st.caption("Bold green marks a real best only: fewest parameters; test accuracy when McNemar finds the leader "
               "better than every other model; latency and images/s when the leader's timings beat every other's "
               "(Mann-Whitney, p < 0.05). Timings are measured now, all models in one interleaved pass of "
               "9 rounds (latency: one image through the Predictor; images/s: a batch of 256), medians shown.")
    return df


def verdict(meta: dict[str, dict], pairs: list[dict]) -> None:
    accuracy = {n: m["test"]["accuracy"] for n, m in meta.items()}
    matrices = {n: m["test"]["confusion_matrix"] for n, m in meta.items()}
    for sentence in compare.verdict(accuracy, pairs, matrices):
        st.markdown("- " + markdown_literal(sentence))  # sentences hold model names, which are data


def specs(meta: dict[str, dict]) -> None:
    rows, differing = spec_words.diff_rows(meta)
    only = st.checkbox("Only what differs", value=True, key="compare_only_diff")
    shown = [r for r in rows if r["aspect"] in differing] if only else rows
    if not shown:
        st.caption("The picked models share one spec and config.")
    else:
        df = pd.DataFrame(shown)
        styler = df.style.apply(lambda row: [DIFF_STYLE if row["aspect"] in differing else ""] * len(row), axis=1)
        st.dataframe(styler, hide_index=True)
    with st.expander("Every field, as stored"):
        raw, raw_differing = compare.spec_table(meta)
        st.dataframe(pd.DataFrame([{k: ("—" if v is None else str(v)) for k, v in r.items()} for r in raw]),
                     hide_index=True)
        st.caption(f"{len(raw_differing)} of {len(raw)} stored fields differ.")


def _measured(names: list[str]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Robustness and calibration results already on disk for these models (never computes)."""
    from mnist_core import robustness

    robust, calibrated = {}, {}
    for name in names:
        try:
            found = robustness.cached(name, cache.mnist())
            if found:
                robust[name] = found
            found = cache.calibration_cached(name)
            if found:
                calibrated[name] = found
        except LabError:
            continue  # the report says "not measured yet" for this model
    return robust, calibrated


def report_button(where, meta: dict[str, dict], table_df: pd.DataFrame, pairs: list[dict] | None) -> None:
    """A download of the whole comparison as one self-contained HTML file, built only when clicked."""
    from dashboard import report_html

    def build() -> str:
        accuracy = {n: m["test"]["accuracy"] for n, m in meta.items()}
        sentences = compare.verdict(accuracy, pairs, {n: m["test"]["confusion_matrix"] for n, m in meta.items()}) \
            if pairs else []
        robust, calibrated = _measured(list(meta))
        return report_html.build(meta, table_df, FORMATS, sentences, pairs, robust, calibrated)

    where.download_button("Download report", build, "mnist-comparison.html", "text/html", on_click="ignore",
                          help="One HTML file with the table, verdict, curves, confusion matrices, significance "
                               "tests, and the robustness and calibration already measured. Opens offline.")
