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
    page.get_by_text("Parallel Coordinate Plot").wait_for(timeout=180_000)  # a loaded 2-core machine is slow
    assert page.get_by_role("tab", name="Parallel coordinates").get_attribute("aria-selected") == "true"
    chart = page.locator(".stPlotlyChart").first  # the open tab's chart: Optuna's parallel coordinates
    assert chart.is_visible()
    text = chart.text_content()
    assert all(label in text for label in ("Parallel Coordinate Plot", "Objective Value", "blocks", "dense", "rate"))
    table = page.locator(".stDataFrame").nth(1)  # the trials table
    assert table.is_visible()
    screenshot(page, ARTIFACTS / "explore_parallel_coordinates.png")
