"""AppTest of Compare's Calibration section with three models, and Draw's calibrated predictor (dashboard.cache)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_core import calibration, calibration_report, evaluate, registry
from mnist_core import data as mnist_data


def figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def calibration_table(at):
    return next(d.value for d in at.dataframe if "ECE after T" in d.value.columns)


def test_compare_shows_calibration_of_three_models(registry_with, full_mnist, app_page, monkeypatch):
    root = registry_with("tiny", "tiny_copy", default=True)
    at = app_page("views/compare.py", clean=True)
    at.multiselect(key="compare_pick").set_value(["tiny", "tiny_copy", "default"]).run()
    assert not at.exception, at.exception
    table = calibration_table(at)
    assert list(table["model"]) == ["tiny", "tiny_copy", "default"]

    # Independent check of the default model's row: its test probabilities and its own validation split.
    meta = registry.read_metadata("default")
    model = registry.load("default")
    test_probs = evaluate.probabilities(model, full_mnist.x_test)
    row = table.set_index("model").loc["default"]
    assert row["ECE"] == pytest.approx(calibration.ece(test_probs, full_mnist.y_test), abs=1e-6)
    assert row["Brier"] == pytest.approx(calibration.brier(test_probs, full_mnist.y_test), abs=1e-6)
    _, (x_val, y_val) = mnist_data.split(full_mnist.x_train, full_mnist.y_train, meta["config"]["validation_split"],
                                         meta["config"]["seed"])
    expected_t = calibration.fit_temperature(evaluate.probabilities(model, x_val), y_val)
    assert row["temperature T"] == pytest.approx(expected_t, rel=1e-3)
    assert row["ECE after T"] == pytest.approx(
        calibration.ece(calibration.apply_temperature(test_probs, expected_t), full_mnist.y_test), abs=1e-3)
    assert row["T fitted on"] == f"{len(y_val):,} validation images"
    assert (table["test accuracy"] < 1).all() and table.loc[2, "test accuracy"] > table.loc[0, "test accuracy"]
    # The tiny models trained on the fixture's images: the full set's split is not held out from them.
    assert list(table["T fitted on"][:2]) == ["not fitted"] * 2 and (table["temperature T"][:2] == 1).all()
    assert any("trained on other images" in c.value for c in at.caption)

    reliability = [f for f in figures(at) if any(t.get("name") == "perfect calibration" for t in f["data"])]
    assert len(reliability) == 1
    assert {t["name"] for t in reliability[0]["data"]} == {"perfect calibration", "tiny", "tiny_copy", "default"}
    histograms = [f for f in figures(at) if any(str(t.get("name", "")).startswith("wrong (") for t in f["data"])]
    assert len(histograms) == 3
    assert any("default" in str(f["layout"].get("title")) for f in histograms)

    # Stored per model file: the next visit reads the reports and computes nothing.
    for name in ("tiny", "default"):
        assert (root.parent / "cache" / "calibration" / f"{registry.read_metadata(name)['model_sha256']}.json").is_file()

    def not_again(*args, **kwargs):
        raise AssertionError("calibration computed again")

    monkeypatch.setattr(calibration_report, "compute_report", not_again)
    at.radio(key="calibration_scaled").set_value("after").run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert calibration_table(at).set_index("model").loc["default", "temperature T"] == row["temperature T"]
    after = next(f for f in figures(at) if any(t.get("name") == "perfect calibration" for t in f["data"]))
    assert "after temperature scaling" in after["layout"]["title"]["text"]


def test_a_model_that_fails_costs_one_line(registry_with, app_page):
    root = registry_with("odd")
    meta_path = root / "odd" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["validation_split"] = 7  # out of bounds: refused as a config before any work
    meta_path.write_text(json.dumps(meta))
    at = app_page("views/compare.py", clean=True)
    assert any(e.value.startswith("odd: ") and "validation_split" in e.value for e in at.error)
    assert not any("ECE after T" in d.value.columns for d in at.dataframe)

    registry_with("good")  # the same model file as odd: its report is stored only after odd has failed
    at.run()
    at.multiselect(key="compare_pick").set_value(["odd", "good"]).run()
    assert not at.exception
    assert list(calibration_table(at)["model"]) == ["good"]
    assert any(e.value.startswith("odd: ") and "validation_split" in e.value for e in at.error)


def test_draw_calibrated_predictor(registry_with, full_mnist):
    """What Draw's toggle uses: the cached predictor at the fitted temperature, labelled with it once known."""
    import streamlit as st

    from dashboard import cache

    st.cache_resource.clear()
    st.cache_data.clear()
    registry_with(default=True)
    assert cache.calibration_toggle_label("default") == "Calibrated confidence (temperature fitted on first use)"
    calibrated = cache.calibrated_predictor("default")
    meta = registry.read_metadata("default")
    report = calibration_report.cached_report(meta["model_sha256"], full_mnist)
    assert report["temperature_fitted"] and calibrated.temperature == report["temperature"] != 1.0
    assert cache.calibration_toggle_label("default") == (
        f"Calibrated confidence (temperature T={report['temperature']:.2f})")
    x = mnist_data.normalise(full_mnist.x_test[:5])[..., 0]
    plain = cache.predictor("default").probabilities(x)
    np.testing.assert_allclose(calibrated.probabilities(x), calibration.apply_temperature(plain, report["temperature"]),
                               rtol=1e-4, atol=1e-6)
    assert cache.predictor("default").temperature == 1.0  # the shared predictor is untouched
    st.cache_resource.clear()
    st.cache_data.clear()
