"""AppTests for the Compare page, and unit tests of the mnist_core.compare helpers it draws."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from mnist_core import compare, evaluate, registry
from mnist_core.display import markdown_literal
from tests.conftest import plotly_array


@pytest.fixture
def open_compare(app_page):
    return functools.partial(app_page, "views/compare.py", clean=True)


def set_created(folder: Path, created: str) -> None:
    meta = json.loads((folder / "metadata.json").read_text())
    meta["created"] = created
    (folder / "metadata.json").write_text(json.dumps(meta))


def test_empty_registry_says_so(open_compare):
    at = open_compare()
    assert any("No saved models to compare yet" in i.value for i in at.info)
    assert not at.dataframe


def test_two_models_side_by_side_with_mcnemar(registry_with, full_mnist, open_compare):
    root = registry_with("tiny", default=True)
    set_created(root / "tiny", "2030-01-01 00:00:00")  # newest first: tiny, then default
    at = open_compare()
    assert at.multiselect(key="compare_pick").value == ["tiny", "default"]
    table = at.dataframe[0].value
    assert list(table["model"]) == ["tiny", "default"]
    default_meta = registry.read_metadata("default")
    assert table.loc[1, "test accuracy"] == pytest.approx(default_meta["test"]["accuracy"])
    assert (table["latency ms"] > 0).all() and (table["images/s"] > 0).all()  # measured on the page

    diffs = at.dataframe[1].value  # only the differing aspects by default, in words
    assert list(diffs["aspect"])[:2] == ["Conv blocks", "Dense layers"]
    filters = "-".join(str(b["filters"]) for b in default_meta["spec"]["conv_blocks"])
    assert diffs.loc[0, "tiny"] == "none" and diffs.loc[0, "default"].startswith(f"3 conv blocks {filters}")
    assert "Validation and seed" in list(diffs["aspect"])  # seed 1 vs seed 0
    verdict = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert verdict[0].startswith("- default is the most accurate") and "significantly better than tiny" in verdict[1]

    # McNemar on the real test predictions of both models, as shown.
    only_tiny = next(m for m in at.metric if m.label == "Only tiny right")
    only_default = next(m for m in at.metric if m.label == "Only default right")
    from mnist_core.predict import Predictor

    preds = {n: evaluate.probabilities(Predictor.load(n).model, full_mnist.x_test).argmax(1) for n in ("tiny", "default")}
    expected = evaluate.mcnemar(preds["tiny"], preds["default"], full_mnist.y_test)
    assert int(only_tiny.value) == expected["only_a_right"]
    assert int(only_default.value) == expected["only_b_right"]
    assert expected["only_b_right"] > expected["only_a_right"]  # the 99% CNN beats a 1-epoch fixture MLP
    assert any("default is significantly better" in m.value for m in at.markdown)


def test_broken_entries_are_listed_not_pickable(registry_with, open_compare):
    root = registry_with("good")
    (root / "empty").mkdir()
    (root / "zero").mkdir()
    (root / "zero" / "model.keras").write_bytes(b"")
    at = open_compare()
    listed = " ".join(m.value for m in at.markdown)
    assert "**empty** (broken): no model.keras" in listed and "**zero** (broken)" in listed
    assert at.multiselect(key="compare_pick").options == ["good"]
    assert list(at.dataframe[0].value["model"]) == ["good"]


def test_rename_and_delete_with_confirmation(registry_with, open_compare):
    root = registry_with("first", "second")
    at = open_compare()
    at.selectbox(key="compare_manage").set_value("first")
    at.text_input(key="compare_new_name").set_value("renamed")
    next(b for b in at.button if b.label == "Rename").click().run()
    assert (root / "renamed").is_dir() and not (root / "first").exists()
    assert "renamed" in at.multiselect(key="compare_pick").value

    at.selectbox(key="compare_manage").set_value("second")
    next(b for b in at.button if b.label == "Delete...").click().run()
    assert (root / "second").is_dir()  # nothing happens before the confirmation
    assert any("Delete **second** for good?" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not (root / "second").exists()
    assert at.multiselect(key="compare_pick").value == ["renamed"]
    assert not at.exception

    at.text_input(key="compare_new_name").set_value("../escape")
    next(b for b in at.button if b.label == "Rename").click().run()
    assert len(at.error) == 1 and "bad model name" in at.error[0].value


def test_reevaluate_rewrites_the_stored_metrics(registry_with, full_mnist, open_compare):
    root = registry_with("tiny")
    meta = json.loads((root / "tiny" / "metadata.json").read_text())
    meta["test"]["accuracy"] = 0.0  # a stale number the action must replace
    (root / "tiny" / "metadata.json").write_text(json.dumps(meta))
    at = open_compare()
    assert at.dataframe[0].value.loc[0, "test accuracy"] == 0.0
    next(b for b in at.button if b.label == "Re-evaluate").click().run()
    fresh = registry.read_metadata("tiny")
    assert fresh["test"]["accuracy"] > 0.5
    assert at.dataframe[0].value.loc[0, "test accuracy"] == pytest.approx(fresh["test"]["accuracy"])
    assert registry.inspect("tiny").ok  # the model file and its checksum are untouched


# ---------- mnist_core.compare ----------


def test_best_marks_only_real_differences():
    rows = [{"model": "a", "test accuracy": 0.98, "test loss": 0.08, "parameters": 100, "train seconds": 5.0},
            {"model": "b", "test accuracy": 0.99, "test loss": 0.05, "parameters": 100, "train seconds": 9.0}]
    fast, slow = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.02, 0.98], [3.0, 3.1, 2.9, 3.0, 3.2, 2.8, 3.0, 3.1, 2.9]
    timings = {"a": {"samples": {"latency ms": fast, "images/s": [900.0] * 9}},
               "b": {"samples": {"latency ms": slow, "images/s": [901.0, 899.0] * 4 + [900.0]}}}
    best = compare.best_rows(rows, timings, accuracy_leader="b")
    assert best == {"parameters": [0, 1], "test accuracy": [1], "latency ms": [0]}  # images/s: inside the noise
    assert "test accuracy" not in compare.best_rows(rows, timings, accuracy_leader=None)


def test_spec_table_marks_the_differing_fields():
    a = {"spec": {"kind": "mlp", "dense_layers": [{"units": 128}]}, "config": {"epochs": 3}}
    b = {"spec": {"kind": "mlp", "dense_layers": [{"units": 64}, {"units": 32}]}, "config": {"epochs": 3}}
    rows, differing = compare.spec_table({"a": a, "b": b})
    assert differing == ["spec.dense_layers (count)", "spec.dense_layers[0].units", "spec.dense_layers[1].units"]
    row = next(r for r in rows if r["field"] == "spec.dense_layers[1].units")
    assert row == {"field": "spec.dense_layers[1].units", "a": None, "b": 32}


def test_disagreements_and_verdict(small_mnist):
    labels = small_mnist.y_test[:6].astype(np.int64)
    pred_a = labels.copy()
    pred_b = labels.copy()
    pred_b[[1, 4]] = (labels[[1, 4]] + 1) % 10
    pred_a[5] = pred_b[5] = (labels[5] + 2) % 10  # both wrong alike: not a disagreement
    assert list(compare.disagreements(pred_a, pred_b, labels)) == [1, 4]
    result = evaluate.mcnemar(pred_a, pred_b, labels)
    assert (result["only_a_right"], result["only_b_right"]) == (2, 0)
    assert compare.mcnemar_verdict(result, "A", "B").startswith("No significant difference")


# ---------- training curves and colours ----------


def figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def make_old_format(folder: Path) -> None:
    """Rewrite a model's metadata as models saved before batch-resolution curves: per-epoch history only."""
    meta = json.loads((folder / "metadata.json").read_text())
    del meta["curve"]
    meta["history"] = [{k: v for k, v in row.items() if k != "images"} for row in meta["history"]]
    (folder / "metadata.json").write_text(json.dumps(meta))


def test_curves_overlay_stored_curves_one_colour_per_model_on_every_chart(registry_with, open_compare):
    root = registry_with("tiny", "old", "third")
    make_old_format(root / "old")
    at = open_compare()
    at.multiselect(key="compare_pick").set_value(["tiny", "old", "third"]).run()
    assert not at.exception
    curves = next(f for f in figures(at) if any(t.get("name") == "tiny train" for t in f["data"]))
    bars = next(f for f in figures(at) if f["data"] and f["data"][0].get("type") == "bar"
                and f["layout"]["xaxis"]["title"]["text"] == "digit")
    traces = {t["name"]: t for t in curves["data"]}
    curve = registry.read_metadata("tiny")["curve"]
    assert traces["tiny train"]["x"] == [p["epoch"] for p in curve] and len(curve) == 29  # not a single dot
    assert traces["old train"]["x"] == [1]  # what an old model stored: one point per epoch
    bar_colors = {b["name"]: b["marker"]["color"] for b in bars["data"]}
    assert len(set(bar_colors.values())) == 3
    for name, trace in traces.items():
        assert trace["line"]["color"] == bar_colors[name.rsplit(" ", 1)[0]]  # same model, same colour everywhere

    at.radio(key="compare_x").set_value("seconds").run()
    curves = next(f for f in figures(at) if any(t.get("name") == "tiny train" for t in f["data"]))
    assert curves["layout"]["xaxis"]["title"]["text"] == "seconds"
    assert next(t for t in curves["data"] if t["name"] == "tiny train")["x"] == [p["seconds"] for p in curve]
    at.radio(key="compare_x").set_value("images").run()
    curves = next(f for f in figures(at) if any(t.get("name") == "tiny train" for t in f["data"]))
    assert not any(t["name"].startswith("old ") for t in curves["data"])  # old models never recorded images seen
    assert curves["layout"]["annotations"][0]["text"] == "no images seen recorded for old"
    assert not at.exception


# ---------- three or more models: every pair, and any two up close ----------


def significance_table(at):
    return next(d.value for d in at.dataframe if "Holm p" in d.value.columns)


def test_three_models_every_pair_tested_and_any_two_up_close(registry_with, full_mnist, open_compare):
    from dashboard import charts
    from mnist_core.predict import Predictor

    root = registry_with("tiny", "twin", default=True)
    set_created(root / "tiny", "2030-01-02 00:00:00")
    set_created(root / "twin", "2030-01-01 00:00:00")  # newest first: tiny, twin, default
    at = open_compare()
    at.multiselect(key="compare_pick").set_value(["tiny", "twin", "default"]).run()
    assert not at.exception

    preds = {n: evaluate.probabilities(Predictor.load(n).model, full_mnist.x_test).argmax(1)
             for n in ("tiny", "twin", "default")}
    table = significance_table(at)
    assert len(table) == 3
    assert list(zip(table["model A"], table["model B"], strict=True)) == [
        ("tiny", "twin"), ("tiny", "default"), ("twin", "default")]
    pairs = zip(table["model A"], table["model B"], strict=True)
    raw = [evaluate.mcnemar(preds[a], preds[b], full_mnist.y_test) for a, b in pairs]
    assert list(table["only B right"]) == [r["only_b_right"] for r in raw]
    assert list(table["Holm p"]) == pytest.approx(compare.holm([r["p_value"] for r in raw]))
    assert list(table["significant"]) == ["no", "yes", "yes"]  # identical copies vs the 99% CNN
    verdict = [m.value for m in at.markdown if m.value.startswith("- ")]
    accuracy = registry.read_metadata("default")["test"]["accuracy"]
    assert verdict[:2] == ["- " + markdown_literal(s) for s in (
        f"default is the most accurate on the 10,000 test digits ({accuracy:.2%}).",
        "It is significantly better than tiny and twin (Holm-corrected McNemar, p < 0.05).")]

    def difference_figure():
        return next(f for f in figures(at) if f["layout"].get("title", {}).get("text", "").startswith("Where "))

    cms = {n: np.asarray(registry.read_metadata(n)["test"]["confusion_matrix"]) for n in preds}
    assert at.selectbox(key="compare_a").value == "tiny" and at.selectbox(key="compare_b").value == "twin"
    at.selectbox(key="compare_a").set_value("default")
    at.selectbox(key="compare_b").set_value("tiny").run()
    fig = difference_figure()
    assert fig["layout"]["title"]["text"] == "Where default beats tiny"
    z = plotly_array(fig["data"][0]["z"])
    assert (np.diag(z) == np.diag(cms["default"]) - np.diag(cms["tiny"])).all()
    off = ~np.eye(10, dtype=bool)
    assert (z[off] == (cms["tiny"] - cms["default"])[off]).all()
    assert np.diag(z).sum() > 0 and z[off].sum() > 0  # the better model reads positive on and off the diagonal
    assert any("Positive (blue) everywhere means default did better" in c.value for c in at.caption)

    # The gallery pages through every disagreement, each title marking who was right.
    ids = compare.disagreements(preds["default"], preds["tiny"], full_mnist.y_test)
    assert len(ids) > 80
    assert any(h.value == f"Digits they disagree on ({len(ids)})" for h in at.subheader)
    at.number_input(key="compare_gallery_page").set_value(2).run()
    grid = next(f for f in figures(at) if f["layout"].get("annotations") and "A" in f["layout"]["annotations"][0]["text"])
    y = full_mnist.y_test
    expected = [charts.inert(compare.disagreement_title(int(y[i]), int(preds["default"][i]), int(preds["tiny"][i])))
                for i in ids[40:80]]
    assert [a["text"] for a in grid["layout"]["annotations"]] == expected
    assert any("✓" in t for t in expected) and any("✗" in t for t in expected)

    at.multiselect(key="compare_pick").set_value(["twin", "default"]).run()  # B's model left: the other one takes it
    assert not at.exception
    assert at.selectbox(key="compare_a").value == "default" and at.selectbox(key="compare_b").value == "twin"
    assert len(significance_table(at)) == 1


def test_download_keras_offers_the_managed_models_bundle(registry_with, open_compare):
    import io
    import zipfile

    from mnist_core.interop import export

    registry_with("tiny")
    at = open_compare()
    assert any(b.label == "Download .keras" for b in at.get("download_button"))
    with zipfile.ZipFile(io.BytesIO(export.keras_bundle("tiny"))) as bundle:  # what the button's callable returns
        assert {"model.keras", "metadata.json"} <= set(bundle.namelist())
        model_bytes = bundle.read("model.keras")
    assert model_bytes == (registry.model_path("tiny") / "model.keras").read_bytes()


def test_picks_ride_in_the_url_and_survive_a_page_switch(registry_with, open_compare):
    registry_with("a", "b", "c")
    at = open_compare(query={"models": "c,a,gone"})  # a reloaded tab: its URL still names the picks
    assert at.multiselect(key="compare_pick").value == ["c", "a"]  # a model deleted meanwhile is dropped
    at.multiselect(key="compare_pick").set_value(["b", "c"]).run()
    assert at.query_params["models"] == "b,c"
    at.switch_page("views/home.py").run()
    at.switch_page("views/compare.py").run()
    assert at.multiselect(key="compare_pick").value == ["b", "c"]


def test_export_to_onnx_shows_parity_and_latency_and_offers_the_file(registry_with, open_compare, full_mnist):
    import onnxruntime

    registry_with("tiny")
    at = open_compare()
    at.selectbox(key="export_format").set_value("onnx")
    at.button(key="export_run").click().run()
    assert not at.exception and not at.error
    same = next(m for m in at.metric if m.label == "Same digit as the lab's model")
    assert same.value == "100.00%"
    latency = next(m for m in at.metric if m.label.startswith("Single image in onnxruntime"))
    assert float(latency.value.removesuffix(" ms")) > 0
    data, _ = at.session_state["export_results"][next(iter(at.session_state["export_results"]))]
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])  # the file, in its own runtime
    x = (full_mnist.x_test[:50].astype("float32") / 255)[..., None]
    onnx_digits = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1)
    keras_digits = registry.load("tiny")(x, training=False).numpy().argmax(1)
    assert (onnx_digits == keras_digits).all()
    assert any(b.label == "Download tiny.onnx" for b in at.get("download_button"))
