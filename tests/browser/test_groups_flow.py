"""A seed group in a real browser: on /train, repeat the smallest MLP preset with 2 seeds for one epoch as one
job, watch it run through both runs, then find the group on /compare as one set with its mean curve and band,
at 1400 px and at 800 px."""

from __future__ import annotations

import pytest

from mnist_core import registry
from tests.browser.conftest import ARTIFACTS, screenshot
from tests.browser.test_layout import assert_fits
from tests.browser.test_train_flow import TRAIN_TIMEOUT_MS, app, set_up_training  # noqa: F401  (app: a fixture)

GROUP_CURVE = """(name) => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(p => p.layout?.xaxis?.title?.text === 'epoch')
  .flatMap(p => p.data.map(t => t.name || ''))
  .some(n => n.startsWith(name + ' (mean of 2)'))"""
PROGRESS_TEXT = "() => document.querySelector('[data-testid=\"stProgress\"]')?.innerText || ''"


@pytest.mark.browser
def test_a_two_seed_group_trained_on_train_is_one_group_on_compare(page, app):  # noqa: F811
    name = set_up_training(page, app, epochs=1, name="pair")
    assert name == "pair"
    seeds = page.get_by_label("Repeat with seeds", exact=True)
    seeds.fill("2")
    seeds.press("Enter")
    page.get_by_text("2 runs (pair-s0 ... pair-s1)").wait_for(timeout=60_000)
    app.wait_idle(page)
    page.get_by_role("button", name="Start 2 runs").click()
    page.get_by_test_id("stProgress").wait_for(timeout=60_000)
    page.wait_for_function(f"() => ({PROGRESS_TEXT})().startsWith('Run 2/2')", timeout=TRAIN_TIMEOUT_MS,
                           polling=500)
    page.get_by_text("Saved 2 runs of group").wait_for(timeout=TRAIN_TIMEOUT_MS)
    app.wait_idle(page)
    for run, seed in (("pair-s0", 0), ("pair-s1", 1)):
        group = registry.read_metadata(run)["group"]
        assert (group["name"], group["kind"], group["seed"], group["runs"]) == ("pair", "seeds", seed, 2)
    screenshot(page, ARTIFACTS / "groups_train_done.png")

    for width, height in ((1400, 1000), (800, 900)):
        page.set_viewport_size({"width": width, "height": height})
        app.open(page, "/compare")
        page.get_by_role("heading", name="Seed groups and sweeps").wait_for(timeout=120_000)
        page.get_by_text("pair (2 seeds)").first.wait_for(timeout=120_000)  # the group, picked by default
        page.wait_for_function(GROUP_CURVE, arg="pair", timeout=120_000)
        app.wait_idle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert_fits(page, f"Compare's groups at {width} px")
        page.get_by_role("heading", name="Seed groups and sweeps").scroll_into_view_if_needed()
        screenshot(page, ARTIFACTS / f"groups_compare_{width}.png")
