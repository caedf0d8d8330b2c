"""On /explore, a finished study shows its trials and Optuna's parallel-coordinates plot in the browser."""

import pytest

from mnist_core import search
from tests.browser.conftest import ARTIFACTS, screenshot


@pytest.fixture
def served_study(app_server, monkeypatch):
    """A real 4-trial study (tiny MLPs on 2,000 real training images) in the served app's explore dir."""
    monkeypatch.setenv("MNIST_EXPLORE_DIR", str(app_server.models_dir.parent / "explore"))
    space = {"blocks": [0], "layers": [1], "dense": [16, 32], "rate": [0.003, 0.01]}
    search.create_or_resume("browser", search.open_storage(), space, 2000, epochs=1)
    search.work("browser", None, 4, sampler="grid", seed=0, say=lambda line: None)
    return "browser"


@pytest.mark.browser
def test_finished_study_shows_parallel_coordinates(page, app_server, served_study):
    app_server.open(page, "/explore")
    page.get_by_text("Open study").wait_for()
    page.get_by_role("tab", name="Parallel coordinates").wait_for()
    plot = page.locator(".js-plotly-plot .parcoords").first
    plot.wait_for(state="visible", timeout=60_000)
    labels = page.locator(".js-plotly-plot .parcoords .axis-title").all_inner_texts()
    assert {"dense", "rate", "Objective Value"} <= set(labels), labels
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    screenshot(page, ARTIFACTS / "explore_parallel_coordinates.png")
