"""AppTest for components/model_results: a saved model's training curves above its test-set results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import APP_TIMEOUT


def results_page(name: str) -> None:
    from dashboard.components import model_results

    model_results.show(name)


@pytest.fixture
def open_results(app_page):
    # app_page clears Streamlit's caches before and after; this page is one component, not a view.
    def open_model(name: str) -> AppTest:
        at = AppTest.from_function(results_page, args=(name,), default_timeout=APP_TIMEOUT)
        at.run()
        assert not at.exception, at.exception
        return at

    return open_model


def curve_charts(at) -> dict[str, dict]:
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {c["layout"]["yaxis"]["title"]["text"]: c for c in charts if c["layout"]["yaxis"].get("title")
            and c["layout"]["yaxis"]["title"]["text"] in ("loss", "accuracy")}


def edit_metadata(folder: Path, change) -> dict:
    meta = json.loads((folder / "metadata.json").read_text())
    change(meta)
    (folder / "metadata.json").write_text(json.dumps(meta))
    return meta


def test_results_show_the_stored_curve_above_the_confusion_matrix(registry_with, open_results):
    root = registry_with("tiny")
    meta = json.loads((root / "tiny" / "metadata.json").read_text())
    at = open_results("tiny")
    headers = [h.value for h in at.subheader]
    assert headers.index("Training curves") < headers.index("Confusion matrix")
    charts = curve_charts(at)
    for metric in ("loss", "accuracy"):
        train, validation = charts[metric]["data"]
        assert train["x"] == [p["epoch"] for p in meta["curve"]] and train["y"] == [p[metric] for p in meta["curve"]]
        assert validation["y"] == [meta["history"][0][f"val_{metric}"]]
    assert charts["accuracy"]["layout"]["yaxis"]["range"][1] <= 1.01 and charts["loss"]["layout"]["yaxis"]["range"][0] == 0
    assert not any("one point per epoch" in c.value for c in at.caption)

    at.radio(key="results_x_tiny").set_value("images").run()
    train = curve_charts(at)["loss"]["data"][0]
    assert train["x"] == [p["images"] for p in meta["curve"]] and train["x"][-1] == 1800


def test_a_model_without_curve_shows_its_history_and_says_so(registry_with, open_results):
    root = registry_with("old")

    def drop_curve(meta):
        del meta["curve"]
        meta["stopped_early"] = {"at_epoch": 2, "best_epoch": 1, "reason": "stopped by request"}

    meta = edit_metadata(root / "old", drop_curve)
    at = open_results("old")
    train, validation = curve_charts(at)["loss"]["data"]
    assert train["x"] == [1] and train["y"] == [meta["history"][0]["loss"]]
    captions = " ".join(c.value for c in at.caption)
    assert "saved with one point per epoch" in captions
    assert "Stopped by request during epoch 2; saved as it was at the end of its best epoch, 1." in captions
