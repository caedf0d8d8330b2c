"""The training flow in a real browser: train the smallest MLP preset for one epoch and watch it live, see its
curves stay after it ends, find it in saved_models/ and on /compare; reload mid-training and find the spec and
the panel consistent, and another tab not owning the run; stop a job and keep its best epoch or discard it."""

from __future__ import annotations

import os
import time

import pytest

from mnist_core import jobs, registry
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.browser.test_layout import assert_fits

SMALLEST_MLP = "mlp-2x28"
TRAIN_TIMEOUT_MS = 300_000  # one full-MNIST epoch plus start-up and evaluation on a shared 2-core machine

# The live loss chart's number of plotted train points; it grows as batch events arrive.
LOSS_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const loss = plots.find(p => p.layout?.yaxis?.title?.text === 'loss');
  return loss ? loss.data.reduce((n, t) => n + (t.x?.length || 0), 0) : 0;
}"""
PROGRESS_TEXT = "() => document.querySelector('[data-testid=\"stProgress\"]')?.innerText || ''"
DONE = "() => document.body.innerText.includes('with the other models')"  # the outcome's link to Compare
# Loss curves on the page: [number of points] per chart whose y axis is the loss.
LOSS_CHARTS = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(p => p.layout?.yaxis?.title?.text === 'loss')
  .map(p => p.data.reduce((n, t) => n + (t.x?.length || 0), 0))"""
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


def sidebar_number(page, label: str):
    """The sidebar's number box labelled exactly `label` (e.g. "epochs", not the patience box that mentions epochs)."""
    return page.get_by_test_id("stSidebar").get_by_label(label, exact=True)


def set_up_training(page, app, epochs: int, name: str | None = None) -> str:
    """On /train: pick the smallest MLP preset, set the epochs (and the name); return the name to be saved."""
    app.open(page, "/train")
    sidebar = page.get_by_test_id("stSidebar")
    choose(page, app, sidebar.get_by_test_id("stSelectbox").filter(has_text="Preset"), SMALLEST_MLP,
           then=page.get_by_role("heading", name=f"Model: mlp-d28-d28 (preset {SMALLEST_MLP})"))
    app.wait_idle(page)
    epochs_box = sidebar_number(page, "epochs")
    epochs_box.fill(str(epochs))
    epochs_box.press("Enter")
    page.get_by_text(f"{epochs} epoch{'s' if epochs > 1 else ''} ×").wait_for(timeout=120_000)  # re-measured
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


def stop_job(page, app, choice: str) -> None:
    """Press Stop, then `choice` ("Keep best epoch" or "Discard"), until the job's stop file exists.

    A click that lands while the panel's polling fragment reruns can be dropped by Streamlit on a loaded
    machine (seen in full-suite runs: the job ran on to its end), so wait for the page to be idle before each
    click, and press again if the stop was not recorded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    job = jobs.current()
    for _ in range(4):
        if jobs.stop_requested(job.id):
            return
        app.wait_idle(page)
        stop = page.get_by_role("button", name="Stop", exact=True)
        if stop.count():
            stop.click()
        try:
            page.get_by_role("button", name=choice).wait_for(timeout=30_000)
            app.wait_idle(page)
            page.get_by_role("button", name=choice).click(timeout=10_000)
        except PlaywrightTimeout:
            continue  # the Stop click was dropped: press it again
        deadline = time.monotonic() + 10
        while not jobs.stop_requested(job.id) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert jobs.stop_requested(job.id), "Stop was pressed four times and never recorded"


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
    # The curves stay after the run: the results draw the stored batch-resolution curve, not a single dot.
    page.wait_for_function(f"() => ({LOSS_CHARTS})().some(n => n > 10)", timeout=30_000)
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
    page.set_viewport_size({"width": 800, "height": 900})  # the results' metric values fit a narrow window too
    page.wait_for_timeout(500)
    assert_fits(page, "Train results at 800 px")
    screenshot(page, ARTIFACTS / "train_done_800.png")
    page.set_viewport_size({"width": 1400, "height": 1000})

    app.open(page, "/compare")
    page.get_by_test_id("stMetricLabel").filter(has_text=f"Only {name} right").wait_for(timeout=120_000)
    app.wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, ARTIFACTS / "compare_two.png")


@pytest.mark.browser
def test_reload_mid_training_keeps_the_spec_and_the_panel_consistent(page, app, browser):
    name = set_up_training(page, app, epochs=30, name="reload-me")  # ~3 s an epoch: still running when stopped
    start(page)
    page.wait_for_function(f"() => ({PROGRESS_TEXT})().includes('batch')", timeout=120_000, polling=500)
    page.reload()
    app.wait_idle(page)
    page.get_by_role("heading", name=f"Training {name}").wait_for(timeout=60_000)
    # The sidebar kept the spec (from the URL), and the heading above the panel names the same model.
    assert sidebar_number(page, "epochs").input_value() == "30"
    assert page.get_by_role("heading", name="Model: mlp-d28-d28").count() == 1
    assert page.get_by_text("mlp-d28-d28 · 30 epochs").count() == 1  # the panel describes the job's own spec
    page.wait_for_function(f"() => ({PROGRESS_TEXT})().includes('batch')", timeout=60_000, polling=500)
    screenshot(page, ARTIFACTS / "train_reloaded.png")

    # Another browser session sees a job running elsewhere, not a run of its own.
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        app.open(other, "/train")
        other.get_by_text("1 other job running on this machine").wait_for(timeout=60_000)
        assert other.get_by_role("heading", name=f"Training {name}").count() == 0
        assert other.get_by_role("heading", name="Model: mlp-d128-d128 (preset mlp-2x128)").count() == 1
        screenshot(other, ARTIFACTS / "train_other_session.png")
    finally:
        other.context.close()
    stop_job(page, app, "Discard")
    page.get_by_text(f"Training {name} was stopped").wait_for(timeout=120_000)


@pytest.mark.browser
def test_stop_and_keep_saves_the_best_epoch_so_far(page, app):
    name = set_up_training(page, app, epochs=30, name="keep-me")
    start(page)
    job = jobs.current()
    deadline = time.monotonic() + 240
    while len(jobs.status(job.id).history) < 2:  # two epochs done: there is a best epoch to keep
        assert jobs.status(job.id).running and time.monotonic() < deadline, jobs.status(job.id).state
        time.sleep(0.5)
    stop_job(page, app, "Keep best epoch")
    page.get_by_text(f"Saved as {name} at its best epoch").wait_for(timeout=180_000)
    app.wait_idle(page)
    meta = registry.read_metadata(name)
    assert meta["stopped_early"]["at_epoch"] < 30 and meta["stopped_early"]["best_epoch"] >= 2
    assert meta["test"]["accuracy"] > 0.85
    screenshot(page, ARTIFACTS / "train_stopped_kept.png")


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
    stop_job(page, app, "Discard")
    page.get_by_text("Training stop-me was stopped: stopped by request; nothing was saved.").wait_for(timeout=120_000)
    app.wait_idle(page)
    screenshot(page, ARTIFACTS / "train_stopped.png")

    assert jobs.status(job.id).state == "stopped"
    time.sleep(1)  # a save racing the stop would land now
    left = sorted(os.listdir(app.models_dir))
    assert "stop-me" not in left
    assert not [n for n in left if n.startswith(registry.TEMP_PREFIX)], left
    assert "stop-me" not in [e.name for e in registry.list_models()]
