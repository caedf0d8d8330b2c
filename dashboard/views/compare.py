"""Compare: saved models side by side, from their stored metrics; significance and disagreements for two."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, charts
from dashboard.components import messages, mnist_gate, my_digits_ui
from mnist_core import compare, evaluate, registry
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

ss = st.session_state
BEST_STYLE = "background-color: rgba(33, 195, 84, 0.25); font-weight: bold"
DIFF_STYLE = "background-color: rgba(255, 189, 69, 0.3)"
FORMATS = {"train seconds": "{:.1f}", "test accuracy": "{:.2%}", "test loss": "{:.4f}", "macro F1": "{:.4f}",
           "latency ms": "{:.2f}", "eval images/s": "{:,.0f}", "parameters": "{:,}"}


def _forget(name: str) -> None:
    ss.compare_pick = [n for n in ss.get("compare_pick", []) if n != name]


def _rename() -> None:
    old, new = ss.compare_manage, ss.get("compare_new_name", "").strip()
    try:
        registry.rename(old, new)
    except LabError as exc:
        messages.flash("compare", "error", str(exc))
        return
    ss.compare_pick = [new if n == old else n for n in ss.get("compare_pick", [])]
    messages.flash("compare", "success", f"Renamed {old} to {new}.")


def _delete() -> None:
    name, ss.compare_confirm = ss.compare_confirm, None
    try:
        registry.delete(name)
    except LabError as exc:
        messages.flash("compare", "error", str(exc))
        return
    _forget(name)
    messages.flash("compare", "success", f"Deleted {name}.")


def _reevaluate(names: list[str]) -> None:
    try:
        for name in names:
            compare.reevaluate(name, cache.mnist())
    except LabError as exc:
        messages.flash("compare", "error", str(exc))
        return
    messages.flash("compare", "success", f"Re-evaluated {', '.join(names)} on the 10,000 test images.")


def _table(meta: dict[str, dict]) -> pd.DataFrame:
    latency = {}
    for name in meta:
        try:
            latency[name] = cache.latency_ms(name)
        except LabError:
            latency[name] = None
    rows = compare.table_rows(meta, latency)
    best = compare.best_rows(rows)
    df = pd.DataFrame(rows)
    styler = df.style.format({k: v for k, v in FORMATS.items() if k in df}, na_rep="—")
    for column, winners in best.items():
        styler = styler.map(lambda _: BEST_STYLE, subset=pd.IndexSlice[winners, [column]])
    st.dataframe(styler, hide_index=True)
    st.caption("Best value in each column in bold green. Latency: one image through the Predictor, mean of 50.")
    return df


def _specs(meta: dict[str, dict]) -> None:
    rows, differing = compare.spec_table(meta)
    only = st.checkbox("Only the fields that differ", value=True, key="compare_only_diff")
    shown = [r for r in rows if r["field"] in differing] if only else rows
    df = pd.DataFrame([{k: ("—" if v is None else str(v)) for k, v in r.items()} for r in shown])
    if df.empty:
        st.caption("The picked models share one spec and config.")
        return
    styler = df.style.apply(lambda row: [DIFF_STYLE if row["field"] in differing else ""] * len(row), axis=1)
    st.dataframe(styler, hide_index=True)


def _two_models(a: str, b: str) -> None:
    st.subheader("Is the difference real? McNemar's exact test")
    try:
        labels = cache.mnist().y_test
        pred_a, pred_b = (compare.predictions(cache.test_probabilities(n)) for n in (a, b))
    except LabError as exc:
        st.error(str(exc))
        return
    result = evaluate.mcnemar(pred_a, pred_b, labels)
    x, y, z = st.columns(3)
    x.metric(f"Only {a} right", result["only_a_right"])
    y.metric(f"Only {b} right", result["only_b_right"])
    z.metric("p-value", f"{result['p_value']:.3g}")
    st.write(compare.mcnemar_verdict(result, a, b))
    ids = compare.disagreements(pred_a, pred_b, labels)
    st.subheader(f"Digits they disagree on ({len(ids)})")
    st.caption(f"Each title: true digit, then {a} | {b}.")
    shown = ids[:40]
    titles = [f"{labels[i]}: {pred_a[i]}|{pred_b[i]}" for i in shown]
    st.plotly_chart(charts.image_grid(cache.mnist().x_test[shown], titles), config={"staticPlot": True})


def _manage(entries: list[registry.Entry]) -> None:
    names = [e.name for e in entries if e.status != "foreign"]
    if not names:
        return
    name = st.selectbox("Model", names, key="compare_manage")
    left, right = st.columns(2)
    left.text_input("New name", key="compare_new_name")
    left.button("Rename", on_click=_rename)
    if ss.get("compare_confirm") == name:
        right.warning(f"Delete **{name}** for good? Its folder is removed.")
        right.button("Yes, delete", type="primary", on_click=_delete)
        right.button("Cancel", on_click=lambda: ss.update(compare_confirm=None))
    else:
        right.button("Delete...", on_click=lambda: ss.update(compare_confirm=ss.compare_manage))


st.title("Compare")
entries = cache.models()
usable = [e.name for e in entries if e.ok]
broken = [e for e in entries if not e.ok]
messages.show("compare")
if broken:
    with st.expander(f"{len(broken)} registry entries cannot be compared", expanded=True):
        for e in broken:
            st.markdown(f"- **{markdown_literal(e.name)}** ({e.status}): {markdown_literal(e.reason)}")  # names are data
if not usable:
    st.info("No saved models to compare yet. Train one on the Train page.")
else:
    mnist_gate.available()  # stored metrics show without MNIST; significance and galleries need it
    if "compare_pick" not in ss:
        ss.compare_pick = usable[:2]  # the list is newest first
    ss.compare_pick = [n for n in ss.compare_pick if n in usable]
    picked = st.multiselect("Models", usable, key="compare_pick")
    meta = {n: next(e.metadata for e in entries if e.name == n) for n in picked}
    if not picked:
        st.info("Pick one or more models.")
    else:
        # Each section has its own boundary: a model whose stored metrics are damaged costs one line in the
        # sections that read them, and every other section still draws.
        with messages.boundary("The comparison table"):
            table = _table(meta)
            a, b = st.columns([1, 4])
            a.download_button("Download CSV", table.to_csv(index=False), "comparison.csv", "text/csv")
            b.button("Re-evaluate", on_click=_reevaluate, args=(picked,), help="Recompute the stored test metrics.")
        if len(picked) > 1:
            st.subheader("Spec and config")
            with messages.boundary("The spec table"):
                _specs(meta)
        colors = charts.model_colors(picked)  # one colour per model in every chart below
        st.subheader("Training curves")
        with messages.boundary("The training curves"):
            c1, c2, c3 = st.columns(3)
            metric = c1.radio("Metric", ["loss", "accuracy"], horizontal=True, key="compare_metric")
            x = c2.radio("x-axis", list(charts.X_AXES), format_func=charts.X_AXES.get, horizontal=True, key="compare_x")
            splits = c3.multiselect("Split", ["train", "validation"], default=["train", "validation"], key="compare_splits")
            st.plotly_chart(charts.training_curves(meta, metric, tuple(splits), x=x, colors=colors))
        st.subheader("Confusion matrices")
        with messages.boundary("The confusion matrices"):
            matrices = {n: np.asarray(meta[n]["test"]["confusion_matrix"]) for n in picked}
            figures = [charts.confusion_matrix(cm, title=n) for n, cm in matrices.items()]
            if len(picked) == 2:  # the third place in the row shows where the two differ
                a, b = picked
                figures.append(charts.confusion_matrix(matrices[a] - matrices[b], title=f"{a} minus {b}", difference=True))
            for start in range(0, len(figures), 3):
                for col, fig in zip(st.columns(3), figures[start : start + 3], strict=False):
                    col.plotly_chart(fig)
        if len(picked) == 2:
            st.caption(f"In the difference, blue on the diagonal: {picked[0]} gets more of that digit right; "
                       f"blue off it: {picked[0]} makes that mistake more often.")
            with messages.boundary("The significance test"):
                _two_models(*picked)
        st.subheader("Per-class accuracy")
        with messages.boundary("The per-class chart"):
            st.plotly_chart(charts.per_class_bars({n: meta[n]["test"]["recall"] for n in picked}, colors=colors))
        my_digits_ui.compare_section(picked)
st.divider()
st.subheader("Rename or delete")
_manage(entries)
