"""/explore in a real browser: a finished study shows its trials and charts in the lab's words; two studies
started one after the other each show live and then done; save best reports its outcome."""

import pytest

from mnist_core import registry
from mnist_core.explore import runner
from mnist_core.explore import space as spaces
from mnist_core.explore import study as studies
from tests.browser.conftest import ARTIFACTS, screenshot

RUN_TIMEOUT_MS = 300_000  # TensorFlow start-up plus a tiny trial or a retraining on a shared 2-core machine


@pytest.fixture
def served_study(app_server, monkeypatch):
    """A real 4-trial study (tiny MLPs on 2,000 real training images) in the served app's explore dir."""
    monkeypatch.setenv("MNIST_EXPLORE_DIR", str(app_server.models_dir.parent / "explore"))
    monkeypatch.setenv("MNIST_MODELS_DIR", str(app_server.models_dir))
    space = spaces.validate({"blocks": [0], "layers": [1], "dense": [16, 32], "rate": [0.003, 0.01]})
    studies.create_or_resume("browser", studies.open_storage(), space, 2000, epochs=1)
    runner.work("browser", None, 4, sampler="grid", seed=0, say=lambda line: None)
    return "browser"


@pytest.mark.browser
def test_finished_study_shows_parallel_coordinates(page, app_server, served_study):
    app_server.open(page, "/explore")
    page.get_by_role("tab", name="Parallel coordinates").wait_for(timeout=180_000)  # a loaded 2-core machine is slow
    assert page.get_by_role("tab", name="Parallel coordinates").get_attribute("aria-selected") == "true"
    chart = page.locator(".stPlotlyChart").first  # the open tab's chart: the parallel coordinates
    chart.wait_for()
    text = chart.text_content()
    assert all(label in text for label in ("validation accuracy", "blocks", "dense", "rate")), text
    assert "Objective Value" not in text
    assert page.locator(".stDataFrame").nth(1).is_visible()  # the trials table
    screenshot(page, ARTIFACTS / "explore_parallel_coordinates.png")


def _sidebar_input(page, test_id: str, label: str):
    return page.get_by_test_id("stSidebar").get_by_test_id(test_id).filter(has_text=label).locator("input")


def _start_tiny_study(page, app, name: str) -> None:
    for test_id, label, value in (("stTextInput", "Study name", name),
                                  ("stNumberInput", "Training images per trial", "1000"),
                                  ("stNumberInput", "Epochs per trial", "1"),
                                  ("stNumberInput", "Trials to add", "1")):
        box = _sidebar_input(page, test_id, label)
        box.fill(value)
        box.press("Enter")
        app.wait_idle(page)
    page.get_by_test_id("stSidebar").get_by_role("button", name="Start study").click()


@pytest.mark.browser
def test_two_studies_in_a_row_each_live_then_done_then_save_best(page, app_server, served_study):
    app = app_server
    app.open(page, "/explore")
    page.get_by_role("heading", name="Studies").wait_for(timeout=180_000)
    for name in ("first", "second"):
        _start_tiny_study(page, app, name)
        page.get_by_role("heading", name=f"Study {name}", exact=True).wait_for(timeout=60_000)  # live at once
        screenshot(page, ARTIFACTS / f"explore_live_{name}.png")
        page.get_by_role("heading", name=f"Last run: Study {name}").wait_for(timeout=RUN_TIMEOUT_MS)
        app.wait_idle(page)
        # Done by itself: the study is open, its trial is in the table, and Start is enabled again.
        assert page.get_by_test_id("stSidebar").get_by_role("button", name="Start study").is_enabled()
        assert page.get_by_test_id("stException").count() == 0
        assert len(studies.load_study(name, studies.open_storage()).trials) == 1
    screenshot(page, ARTIFACTS / "explore_second_done.png")

    model = "second-best-browser"
    box = page.get_by_label("Model name", exact=True)
    box.fill(model)
    box.press("Enter")
    app.wait_idle(page)
    page.get_by_role("button", name="Save best as model").click()
    page.get_by_role("heading", name=f"Retraining the best trial of second as {model}").wait_for(timeout=60_000)
    page.get_by_text(f"Saved as {model}.").wait_for(timeout=RUN_TIMEOUT_MS)
    app.wait_idle(page)
    assert registry.read_metadata(model)["explore"]["study"] == "second"
    screenshot(page, ARTIFACTS / "explore_saved_best.png")
