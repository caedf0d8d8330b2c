"""My handwriting, end to end in the browser: draw three digits on /draw and save them with their labels,
inspect the last drawing on /inspect, see the three on /my-digits, fine-tune the default model one epoch on
them, and find the new model on /compare with its accuracy on "my digits".

Screenshots: tests/artifacts/inspect_drawn_digit.png, my_digits_saved.png, my_digits_fine_tuned.png,
compare_my_digits.png.
"""

import json
import os
import statistics
import time

import pytest

from tests.browser.conftest import ARTIFACTS, screenshot
from tests.browser.test_draw import STROKES, WAIT_FOR_DIGIT, canvas_box, draw_strokes

MARK_MOUSEUP = "window.addEventListener('mouseup', () => { window.__mouseup = performance.now(); }, true)"


def _selected(selectbox) -> str:
    """The shown value of a Streamlit selectbox (its text, or the value of its search input)."""
    inputs = selectbox.locator("input")
    value = inputs.first.input_value() if inputs.count() else ""
    return value or selectbox.inner_text().splitlines()[-1].strip()


def _go(page, app_server, title: str) -> None:
    """Follow the sidebar link, so the browser session (and the drawing in it) is kept."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).wait_for()
    app_server.wait_idle(page, 180_000)


@pytest.mark.browser
def test_save_inspect_fine_tune_compare(page, app_server):
    page.set_default_timeout(120_000)
    app_server.open(page, "/draw")
    page.get_by_text("draw a digit").wait_for()
    page.evaluate(MARK_MOUSEUP)
    for digit, strokes in STROKES.items():
        box = canvas_box(page)
        page.locator("canvas.upper-canvas").evaluate("c => c.setAttribute('data-used', '1')")
        draw_strokes(page, box, strokes)
        page.wait_for_function(WAIT_FOR_DIGIT, arg=digit, polling="raf", timeout=60_000)
        app_server.wait_idle(page)
        # The label box proposes the prediction; the user confirms it.
        label_box = page.get_by_test_id("stSelectbox").filter(has_text="Label (confirm or correct)")
        assert _selected(label_box) == str(digit), label_box.inner_html()[:2000]
        page.get_by_role("button", name="Save to my digits").click()
        page.get_by_text(f"Saved to my digits as a {digit}").wait_for()
        app_server.wait_idle(page)
        if digit != 7:
            page.get_by_role("button", name="Clear").click()
            page.get_by_text("draw a digit").wait_for()
            app_server.wait_idle(page)

    # The 7 is still on the canvas: look inside the model at it.
    _go(page, app_server, "Inspect")
    page.get_by_test_id("stButtonGroup").get_by_text("Drawing from /draw").click()
    page.get_by_text("your drawing from /draw").wait_for()
    app_server.wait_idle(page, 180_000)
    page.get_by_text("Feature maps of this input").wait_for()
    page.get_by_text("gradient saliency for 7").wait_for()
    page.wait_for_timeout(3000)  # plotly and vega draw after the script ends
    screenshot(page, ARTIFACTS / "inspect_drawn_digit.png")

    _go(page, app_server, "My digits")
    tiles = page.locator('[class*="st-key-my_tile_"]')
    assert tiles.count() == 3
    assert sorted(_selected(t.get_by_test_id("stSelectbox")) for t in tiles.all()) == ["0", "1", "7"]
    screenshot(page, ARTIFACTS / "my_digits_saved.png")

    page.get_by_role("button", name="Fine-tune").click()
    page.get_by_text("Fine-tuned from default on 3 of your digits").wait_for(timeout=600_000)  # the job panel's outcome
    app_server.wait_idle(page)
    screenshot(page, ARTIFACTS / "my_digits_fine_tuned.png")
    meta = json.loads((app_server.models_dir / "default-mine" / "metadata.json").read_text())
    assert meta["parent"] == "default" and meta["fine_tune"]["my_digits"] == 3

    _go(page, app_server, "Compare")
    page.get_by_role("heading", name="My digits").wait_for()
    table = page.locator('[class*="st-key-my_digits_table"]')
    table.wait_for()
    page.wait_for_timeout(2000)
    table.scroll_into_view_if_needed()
    screenshot(page, ARTIFACTS / "compare_my_digits.png")
    text = table.inner_text()
    assert "default-mine" in text and "%" in text


@pytest.mark.browser
def test_inspect_seconds_per_new_input(page, app_server):
    """With the default CNN picked, time each change of the test-image index until the page has rerun and
    shows the new image: recorded in tests/artifacts/inspect_latency.json (goal: under 2 s)."""
    page.set_default_timeout(180_000)
    app_server.open(page, "/inspect")
    page.get_by_text("test image #0").wait_for()
    app_server.wait_idle(page, 180_000)
    box = page.get_by_label("Test image index")
    seconds = []
    for i in range(1, 6):
        started = time.perf_counter()
        box.fill(str(i))
        box.press("Enter")
        page.get_by_text(f"test image #{i},").wait_for()
        app_server.wait_idle(page)
        seconds.append(round(time.perf_counter() - started, 3))
    result = {"seconds_per_new_input": seconds, "median_s": statistics.median(seconds), "goal_s": 2.0,
              "load_average_1min": os.getloadavg()[0], "cpus": os.cpu_count()}
    (ARTIFACTS / "inspect_latency.json").write_text(json.dumps(result, indent=1))
    print("inspect seconds per new input:", result)
    assert statistics.median(seconds) < 10  # generous on a shared machine; the 2 s goal is recorded above
