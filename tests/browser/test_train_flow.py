"""The training flow in a real browser: train the smallest MLP preset for one epoch and watch it live, find it
in saved_models/ and on /compare; and stop a job, leaving no model and no half-saved folder behind."""

from __future__ import annotations

import os
import time

import pytest

from mnist_core import jobs, registry
from tests.browser.conftest import ARTIFACTS, screenshot

SMALLEST_MLP = "mlp-2x28"
TRAIN_TIMEOUT_MS = 300_000  # one full-MNIST epoch plus start-up and evaluation on a shared 2-core machine

# The live loss chart's number of plotted train points; it grows as batch events arrive.
LOSS_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const loss = plots.find(p => p.layout?.yaxis?.title?.text === 'loss');
  return loss ? loss.data.reduce((n, t) => n + (t.x?.length || 0), 0) : 0;
}"""
PROGRESS_TEXT = "() => document.querySelector('[data-testid=\"stProgress\"]')?.innerText || ''"
DONE = "() => document.body.innerText.includes('See it beside the others on the Compare page')"
# Every distinct progress text and live-curve size the page shows, in order, recorded on each DOM change.
RECORD_RENDERED_STATES = f"""() => {{
  window.__seen = {{texts: [], points: []}};
  const record = () => {{
    const text = ({PROGRESS_TEXT})(), points = ({LOSS_POINTS})();
    if (text && window.__seen.texts.at(-1) !== text) window.__seen.texts.push(text);
    if (points && window.__seen.points.at(-1) !== points) window.__seen.points.push(points);
  }};
  new MutationObserver(record).observe(document.body, {{subtree: true, childList: true, characterData: true}});
}}"""


@pytest.fixture
def app(app_server, monkeypatch):
    """The served app; afterwards any job a failed test left running is stopped, so the next start is not refused."""
    monkeypatch.setenv("MNIST_JOBS_DIR", str(app_server.jobs_dir))
    monkeypatch.setenv("MNIST_MODELS_DIR", str(app_server.models_dir))
    yield app_server
    running = jobs.current()
    if running:
        jobs.stop(running.id)
        jobs.wait(running.id, timeout=120)


def choose(page, app, selectbox, option: str, then) -> None:
    """Pick an option of a selectbox and wait for `then` (a locator) to show the effect. A rerun landing while
    the list is open closes it, so retry."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(4):
        app.wait_idle(page)
        try:
            selectbox.click(timeout=10_000)
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            then.wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"could not pick {option!r}")


def set_up_training(page, app, epochs: int, name: str | None = None) -> str:
    """On /train: pick the smallest MLP preset, set the epochs (and the name); return the name to be saved."""
    app.open(page, "/train")
    sidebar = page.get_by_test_id("stSidebar")
    choose(page, app, sidebar.get_by_test_id("stSelectbox").filter(has_text="Preset"), SMALLEST_MLP,
           then=page.get_by_role("heading", name=f"Model: mlp-d28-d28 (preset {SMALLEST_MLP})"))
    app.wait_idle(page)
    epochs_box = sidebar.get_by_test_id("stNumberInput").filter(has_text="epochs").locator("input")
    epochs_box.fill(str(epochs))
    epochs_box.press("Enter")
    page.get_by_text(f"{epochs} epoch{'s' if epochs > 1 else ''} ≈").wait_for(timeout=120_000)  # re-measured
    app.wait_idle(page)
    name_box = page.get_by_label("Save as", exact=True).and_(page.get_by_role("textbox"))
    if name:
        name_box.fill(name)
        name_box.press("Enter")
        app.wait_idle(page)
    return name_box.input_value()


def start(page) -> None:
    page.get_by_role("button", name="Start training").click()
    page.get_by_test_id("stProgress").wait_for(timeout=60_000)


@pytest.mark.browser
def test_train_smallest_mlp_for_one_epoch_then_compare(page, app):
    name = set_up_training(page, app, epochs=1)
    assert name == "mlp-d28-d28"
    page.evaluate(RECORD_RENDERED_STATES)
    start(page)

    # The bar and the curves move. The browser records every state it renders (polling from here would miss
    # states on a busy machine, where one epoch takes ~15 s and the page redraws every second or few).
    page.wait_for_function(DONE, timeout=TRAIN_TIMEOUT_MS, polling=500)
    seen = page.evaluate("window.__seen")
    assert len([t for t in seen["texts"] if "batch" in t]) >= 2, seen  # the bar's text changed as batches went by
    assert len(seen["points"]) >= 2 and seen["points"][-1] > seen["points"][0], seen  # the loss curve grew
    app.wait_idle(page)
    folder = app.models_dir / name
    assert (folder / registry.MODEL_FILE).is_file()
    meta = registry.read_metadata(name)
    assert len(meta["history"]) == 1 and meta["test"]["accuracy"] > 0.85
    shown = page.get_by_test_id("stMetric").filter(has_text="Test accuracy").get_by_test_id("stMetricValue")
    assert shown.inner_text() == f"{meta['test']['accuracy']:.2%}"

    # Click the confusion-matrix cell (true 4, predicted 9): its test images appear.
    cell = page.evaluate("""() => {
      const gd = [...document.querySelectorAll('.js-plotly-plot')].find(p => p.layout?.xaxis?.title?.text === 'predicted');
      gd.scrollIntoView();
      const box = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      return {x: box.left + xa._offset + xa.l2p(9), y: box.top + ya._offset + ya.l2p(4)};
    }""")
    page.mouse.click(cell["x"], cell["y"])
    count = meta["test"]["confusion_matrix"][4][9]
    page.get_by_text(f"True 4, predicted 9: {count} test images").wait_for(timeout=30_000)
    app.wait_idle(page)
    screenshot(page, ARTIFACTS / "train_done.png")

    app.open(page, "/compare")
    page.get_by_test_id("stMetricLabel").filter(has_text=f"Only {name} right").wait_for(timeout=120_000)
    app.wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, ARTIFACTS / "compare_two.png")


@pytest.mark.browser
def test_stop_a_running_job_saves_nothing(page, app):
    name = set_up_training(page, app, epochs=3, name="stop-me")
    assert name == "stop-me"
    start(page)
    page.wait_for_function(f"() => ({PROGRESS_TEXT})().includes('batch') && ({LOSS_POINTS})() > 0",
                           timeout=120_000, polling=500)
    screenshot(page, ARTIFACTS / "train_live.png")
    job = jobs.current()
    assert job is not None and job.name == "stop-me"
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("Training stop-me was stopped; nothing was saved.").wait_for(timeout=120_000)
    app.wait_idle(page)
    screenshot(page, ARTIFACTS / "train_stopped.png")

    assert jobs.status(job.id).state == "stopped"
    time.sleep(1)  # a save racing the stop would land now
    left = sorted(os.listdir(app.models_dir))
    assert "stop-me" not in left
    assert not [n for n in left if n.startswith(registry.TEMP_PREFIX)], left
    assert "stop-me" not in [e.name for e in registry.list_models()]
