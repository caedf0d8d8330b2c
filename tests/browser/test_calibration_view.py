"""Compare's Calibration section in Chromium with three models: the table, the reliability diagram and the
right/wrong histograms draw, the scaled view switches, and nothing raises."""

from __future__ import annotations

import json
import shutil

import pytest


def _add_model(app_server, source, name: str):
    target = app_server.models_dir / name
    shutil.copytree(source, target)
    meta = json.loads((target / "metadata.json").read_text())
    (target / "metadata.json").write_text(json.dumps(meta | {"name": name, "created": "2030-01-01 00:00:00"}))
    return target


@pytest.mark.browser
def test_calibration_of_three_models(page, app_server, tiny_trained):
    added = [_add_model(app_server, tiny_trained, "tiny-a"), _add_model(app_server, tiny_trained, "tiny-b")]
    try:
        app_server.open(page, "/compare")
        page.get_by_test_id("stMultiSelect").first.locator("input").click()
        page.get_by_role("option", name="default", exact=True).click(timeout=10_000)
        page.keyboard.press("Escape")
        # The default model's report is computed on this run (its validation split, then the test set).
        chart = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="perfect calibration")
        chart.filter(has_text="default").wait_for(timeout=240_000)
        app_server.wait_idle(page, timeout_ms=240_000)
        page.get_by_text("Calibration: can you trust the confidence?").scroll_into_view_if_needed()
        assert chart.count() == 1 and page.get_by_text("Reliability (as the model says)").count() == 1
        for name in ("tiny-a", "tiny-b", "default"):
            assert chart.get_by_text(name, exact=True).count() == 1, name
        histograms = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="wrong (")
        assert histograms.count() == 3
        page.get_by_text("after temperature scaling").click()
        app_server.wait_idle(page)
        page.get_by_text("Reliability (after temperature scaling)").wait_for(timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stAlert"]').filter(has_text="calibration").count() == 0
    finally:
        for folder in added:
            shutil.rmtree(folder)
