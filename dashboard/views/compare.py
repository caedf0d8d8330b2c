"""Compare: saved models side by side, from their stored metrics; significance for every pair; a chosen pair up close."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, charts
from dashboard.components import (
    calibration_view,
    compare_summary,
    ensemble_ui,
    group_view,
    messages,
    mnist_gate,
    model_manage,
    my_digits_ui,
    page_state,
    robustness_view,
)
from mnist_core import compare, evaluate, spec_words
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

ss = st.session_state


def _reevaluate(names: list[str]) -> None:
    try:
        for name in names:
            compare.reevaluate(name, cache.mnist())
    except LabError as exc:
        messages.flash("compare", "error", str(exc))
        return
    messages.flash("compare", "success", f"Re-evaluated {', '.join(names)} on the 10,000 test images.")


GALLERY_PAGE = 40  # disagreement images per gallery page
PICK_PARAM = "models"  # the picked models in the URL


def _predictions(names: list[str]) -> dict[str, np.ndarray] | None:
    try:
        return {n: compare.predictions(cache.test_probabilities(n)) for n in names}
    except LabError as exc:
        st.error(str(exc))
        return None


def _significance(rows: list[dict]) -> None:
    st.subheader("Is each difference real? McNemar's exact test, every pair")
    df = pd.DataFrame(rows)
    df["significant"] = df["significant"].map({True: "yes", False: "no"})
    st.dataframe(df.style.format({"p": "{:.3g}", "Holm p": "{:.3g}"}), hide_index=True)
    st.caption("Only A/B right: test images one model gets right and the other wrong. Holm p corrects for testing "
               f"{len(rows)} pair{'s' if len(rows) != 1 else ''} at once; significant means Holm p < 0.05.")


def _pick_pair(picked: list[str]) -> tuple[str, str]:
    # A model dropped from the multiselect is replaced by the first picked one the other box does not hold,
    # so the boxes never hold a stale name and start as the first two picked.
    for key, other in (("compare_a", "compare_b"), ("compare_b", "compare_a")):
        if ss.get(key) not in picked:
            ss[key] = next(n for n in picked if n != ss.get(other))
    left, right = st.columns(2)
    return (left.selectbox("Model A", picked, key="compare_a"), right.selectbox("Model B", picked, key="compare_b"))


def _two_models(a: str, b: str, matrices: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> None:
    left, right = st.columns([1, 1])
    left.plotly_chart(charts.confusion_matrix(compare.a_better_matrix(matrices[a], matrices[b]),
                                              title=f"Where {a} beats {b}", difference=True))
    left.caption(f"Positive (blue) everywhere means {a} did better: on the diagonal, how many more of that digit "
                 f"{a} gets right; off it, how many fewer of that mistake {a} makes. Red: {b} did better.")
    labels = cache.mnist().y_test
    pred_a, pred_b = predicted[a], predicted[b]
    result = evaluate.mcnemar(pred_a, pred_b, labels)
    right.metric(f"Only {a} right", result["only_a_right"])
    right.metric(f"Only {b} right", result["only_b_right"])
    right.metric("p-value (this pair alone)", f"{result['p_value']:.3g}")
    right.write(compare.mcnemar_verdict(result, a, b))
    ids = compare.disagreements(pred_a, pred_b, labels)
    st.subheader(f"Digits they disagree on ({len(ids)})")
    if not len(ids):
        return
    pages = -(-len(ids) // GALLERY_PAGE)
    if ss.get("compare_gallery_page", 1) > pages:
        ss.compare_gallery_page = pages
    page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key="compare_gallery_page")
    shown = compare.disagreement_page(ids, int(page), GALLERY_PAGE)
    st.caption(f"Each title: true digit, then A = {a} and B = {b}, each with ✓ right or ✗ wrong. "
               "Images where one model is right come first.")
    titles = [compare.disagreement_title(int(labels[i]), int(pred_a[i]), int(pred_b[i])) for i in shown]
    st.plotly_chart(charts.image_grid(cache.mnist().x_test[shown], titles), config={"staticPlot": True})


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
    have_mnist = mnist_gate.available() is not None  # stored metrics show without MNIST; the rest needs it
    if "compare_pick" not in ss:
        # The picks outlive a page switch (a plain session key) and a reload (the URL); else the two newest.
        from_url = [n for n in st.query_params.get(PICK_PARAM, "").split(",") if n in usable]
        ss.compare_pick = ss.get(page_state.KEPT + "compare_pick") or from_url or usable[:2]
    ss.compare_pick = [n for n in ss.compare_pick if n in usable]
    picked = st.multiselect("Models", usable, key="compare_pick")
    ss[page_state.KEPT + "compare_pick"] = picked
    if st.query_params.get(PICK_PARAM, "") != ",".join(picked):
        st.query_params[PICK_PARAM] = ",".join(picked)  # names are checked: letters, digits, - and _ only
    meta = {n: next(e.metadata for e in entries if e.name == n) for n in picked}
    if not picked:
        st.info("Pick one or more models.")
    else:
        # Each section has its own boundary: a model whose stored metrics are damaged costs one line in the
        # sections that read them, and every other section still draws.
        predicted, pairs = None, None
        if have_mnist and len(picked) > 1:
            with messages.boundary("The significance test"):
                predicted = _predictions(picked)
                if predicted is not None:
                    pairs = compare.pairwise_mcnemar(predicted, cache.mnist().y_test)
        with messages.boundary("The comparison table"):
            table = compare_summary.table(meta, pairs, have_mnist)
            a, b, c = st.columns([1, 1, 3])
            a.download_button("Download CSV", table.to_csv(index=False), "comparison.csv", "text/csv")
            compare_summary.report_button(b, meta, table, pairs)
            c.button("Re-evaluate", on_click=_reevaluate, args=(picked,), help="Recompute the stored test metrics.")
        if pairs:
            st.subheader("Verdict")
            with messages.boundary("The verdict"):
                compare_summary.verdict(meta, pairs)
        if len(picked) > 1:
            st.subheader("Spec and config")
            with messages.boundary("The spec table"):
                compare_summary.specs(meta)
        colors = charts.model_colors(picked)  # one colour per model in every chart below
        st.subheader("Training curves")
        with messages.boundary("The training curves"):
            c1, c2, c3 = st.columns(3)
            metric = c1.radio("Metric", ["loss", "accuracy"], horizontal=True, key="compare_metric")
            x = c2.radio("x-axis", list(charts.X_AXES), format_func=charts.X_AXES.get, horizontal=True, key="compare_x")
            splits = c3.multiselect("Split", ["train", "validation"], default=["train", "validation"], key="compare_splits")
            st.plotly_chart(charts.training_curves(meta, metric, tuple(splits), x=x, colors=colors))
        st.subheader("Confusion matrices")
        matrices = {}
        with messages.boundary("The confusion matrices"):
            matrices = {n: np.asarray(meta[n]["test"]["confusion_matrix"]) for n in picked}
            figures = [charts.confusion_matrix(cm, title=n) for n, cm in matrices.items()]
            for start in range(0, len(figures), 3):
                for col, fig in zip(st.columns(3), figures[start : start + 3], strict=False):
                    col.plotly_chart(fig)
        if pairs:
            _significance(pairs)
        if len(picked) > 1:
            st.subheader("Two models up close")
            with messages.boundary("The two-model comparison"):
                a, b = _pick_pair(picked)
                if a == b:
                    st.info("Pick two different models as A and B.")
                else:
                    st.markdown(f"**{markdown_literal(a)} vs {markdown_literal(b)}:** "
                                + markdown_literal(spec_words.one_line(meta[a], meta[b])))
                    if predicted is not None and len(matrices) == len(picked):
                        _two_models(a, b, matrices, predicted)
        st.subheader("Beyond the test set: robustness")
        with messages.boundary("The robustness view"):
            robustness_view.render(picked, colors)
        st.subheader("Calibration: can you trust the confidence?")
        with messages.boundary("The calibration view"):
            calibration_view.render(picked, colors)
        st.subheader("Per-class accuracy")
        with messages.boundary("The per-class chart"):
            st.plotly_chart(charts.per_class_bars({n: meta[n]["test"]["recall"] for n in picked}, colors=colors))
        my_digits_ui.compare_section(picked)
        st.subheader("Seed groups and sweeps")
        with messages.boundary("The seed groups"):
            group_view.render(picked, colors)
        st.subheader("Ensembles")
        with messages.boundary("The ensemble control"):
            ensemble_ui.render(picked, colors)
st.divider()
st.subheader("Rename, delete or download")
model_manage.render(entries)
