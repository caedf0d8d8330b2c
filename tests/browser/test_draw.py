"""On /draw, draw a 1, a 0 and a 7 with the mouse; each time the Prediction metric must show the digit.

The time from mouse-up to the right Prediction on screen is measured in the browser's own clock and
written to tests/artifacts/draw_latency.json (the issue's goal is under 0.5 s; this test records it).
"""

import json
import math
import os

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import ARTIFACTS, screenshot

# Strokes in canvas pixels (280x280), each a list of points drawn in one mouse-down..mouse-up.
STROKES = {
    1: [[(140, 45), (140, 235)]],
    0: [[(140 + 60 * math.sin(t / 24 * 2 * math.pi), 140 - 90 * math.cos(t / 24 * 2 * math.pi)) for t in range(26)]],
    7: [[(75, 60), (205, 60), (125, 235)]],
}

# Records when the last mouse-up happened, and polls (once per frame) until the Prediction metric reads `digit`.
MARK_MOUSEUP = "window.addEventListener('mouseup', () => { window.__mouseup = performance.now(); }, true)"
WAIT_FOR_DIGIT = """digit => {
  const metric = [...document.querySelectorAll('[data-testid="stMetric"]')]
    .find(m => m.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() === 'Prediction');
  const value = metric?.querySelector('[data-testid="stMetricValue"]')?.innerText.trim();
  return value === String(digit) ? performance.now() - window.__mouseup : false;
}"""

# Counts the messages the page sends to the server and the presses of the canvas's own send button.
RECORD_SENDS = """(() => {
  window.__wsOut = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) { window.__wsOut += 1; return send.call(this, data); };
  window.__sendPresses = 0;
  document.addEventListener('click', event => {
    if (event.composedPath().some(e => e.getAttribute?.('aria-label') === 'Update the app with this drawing'))
      window.__sendPresses += 1;
  }, true);
})()"""


def draw_strokes(page, box, strokes):
    """Draw `strokes` (canvas pixels) on the canvas whose bounding box is `box` (also used by test_draw_inspect)."""
    for stroke in strokes:
        (x0, y0), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
        page.mouse.up()


def canvas_box(page):
    """The drawing surface: Fabric.js stacks an upper canvas (which takes the mouse) over the drawn one.

    Clear remounts the canvas, and the old one can linger for a moment after the rerun, so the canvas returned
    here is marked as used and only an unmarked one counts next time.
    """
    canvas = page.locator("canvas.upper-canvas:not([data-used])").first
    canvas.wait_for(state="visible")
    # A stroke in the first moments of a fresh canvas was sometimes lost (1 run in 3 under load), and
    # no person draws within half a second of pressing Clear.
    page.wait_for_timeout(500)
    box = canvas.bounding_box()
    assert box and round(box["width"]) == 280 and round(box["height"]) == 280, box
    canvas.evaluate("c => c.setAttribute('data-used', '1')")
    return box


@pytest.mark.browser
def test_draw_three_digits_predicts_each(page, app_server):
    app_server.open(page, "/draw")
    page.get_by_text("draw a digit").wait_for()
    page.evaluate(MARK_MOUSEUP)
    latencies = {}
    for digit, strokes in STROKES.items():
        draw_strokes(page, canvas_box(page), strokes)
        try:
            handle = page.wait_for_function(WAIT_FOR_DIGIT, arg=digit, polling="raf", timeout=30_000)
        except PlaywrightTimeout:
            screenshot(page, ARTIFACTS / f"draw_{digit}_failed.png")
            shown = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
            pytest.fail(f"drew a {digit}; after 30 s the page shows Prediction {shown or 'none'}", pytrace=False)
        latencies[digit] = round(handle.json_value() / 1000, 3)
        screenshot(page, ARTIFACTS / f"draw_{digit}.png")
        if digit != 7:
            page.get_by_role("button", name="Clear").click()
            page.get_by_text("draw a digit").wait_for()
            app_server.wait_idle(page)

    # The last drawing stays: every model's answer and the preprocessing steps, for the screenshot.
    page.get_by_text("Compare all saved models").click()
    page.get_by_text("Show preprocessing steps").click()
    page.get_by_text("All saved models", exact=True).wait_for()
    page.get_by_text("centred 28x28").wait_for()
    app_server.wait_idle(page)
    screenshot(page, ARTIFACTS / "draw_compare_all.png")

    result = {"mouseup_to_prediction_s": latencies, "max_s": max(latencies.values()), "goal_s": 0.5,
              "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count()}
    (ARTIFACTS / "draw_latency.json").write_text(json.dumps(result, indent=1))
    print("draw latency (mouse-up to right Prediction):", result)


@pytest.mark.browser
def test_a_stroke_is_sent_at_mouse_up_and_only_once(page, app_server):
    """Draw presses the canvas's own send button when a stroke ends, skipping the component's 200 ms wait
    (dashboard/views/draw.py; the time saved is measured by benchmarks/stroke_latency.py). The drawing must
    still leave once per stroke, and a click on the canvas's toolbar must not count as a stroke."""
    page.context.add_init_script(RECORD_SENDS)
    app_server.open(page, "/draw")
    page.get_by_text("draw a digit").wait_for()
    sent_before = page.evaluate("window.__wsOut")
    draw_strokes(page, canvas_box(page), STROKES[1])
    page.get_by_text("Prediction", exact=True).wait_for()
    page.wait_for_timeout(500)  # a second send, the component's own, would leave 200 ms after mouse-up
    app_server.wait_idle(page)
    assert page.evaluate("window.__sendPresses") == 1, "the page did not press the canvas's send button"
    assert page.evaluate("window.__wsOut") - sent_before == 1, "one stroke must send one message"

    page.get_by_role("button", name="Undo").click()  # the toolbar sends on its own; the page must not press
    page.get_by_text("Prediction", exact=True).wait_for(state="detached")
    app_server.wait_idle(page)
    assert page.evaluate("window.__sendPresses") == 1
