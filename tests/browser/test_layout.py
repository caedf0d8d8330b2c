"""Every page in an 800 px and a 1400 px window (Draw and a two-model Compare also at 1100 px, the tightest
side-by-side layout): nothing wider than the window, the Draw canvas wholly visible, no metric value, metric
label or button label cut off with an ellipsis. Screenshots: tests/artifacts/test_*_fits_*.png.

The checks are about layout, not content, so they hold whatever a page shows: they look at every metric and
button, the canvas if there is one, and the widths of the document and the main area. Before
components/layout.py the 300 px sidebar left the main area 468 px wide at 800 px, the canvas was clipped to
about 160 of its 280 px and metric values ended in "...".
"""

import json
import shutil

import pytest

from dashboard.components.layout import NARROW_PX
from tests.browser.test_draw import STROKES, canvas_box, draw_strokes

NARROW, WIDE = {"width": 800, "height": 900}, {"width": 1400, "height": 1000}
# The narrowest window in which columns sit side by side with the sidebar open (layout.NARROW_PX).
TIGHTEST = {"width": NARROW_PX, "height": 900}

# Widths of the window, the document and the main area; every metric value or label and every button label
# whose text is wider than its box (Streamlit clips these with an ellipsis: scrollWidth > clientWidth is cut off).
MEASURE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const cut = [];
  const texts = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], button [data-testid="stMarkdownContainer"]';
  for (const part of document.querySelectorAll(texts)) {
    for (const e of [part, ...part.querySelectorAll('*')]) {
      if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) {
        cut.push(`${part.closest('button') ? 'button' : part.dataset.testid} "${part.innerText.trim()}": ${e.scrollWidth} px of text in ${e.clientWidth} px`);
        break;
      }
    }
  }
  return {window: window.innerWidth, document: document.documentElement.scrollWidth,
          main: main.clientWidth, mainContent: main.scrollWidth,
          metrics: document.querySelectorAll('[data-testid="stMetricValue"]').length, cut};
}"""

# The part of an element the user can see across: its box cut by the window and by every ancestor that
# clips (overflow other than visible), crossing out of the canvas component's shadow root.
VISIBLE_WIDTH = """el => {
  const box = el.getBoundingClientRect();
  let left = Math.max(box.left, 0), right = Math.min(box.right, window.innerWidth);
  for (let node = el; ; ) {
    node = node.parentElement || node.getRootNode().host;
    if (!node) break;
    if (getComputedStyle(node).overflowX !== 'visible') {
      const clip = node.getBoundingClientRect();
      left = Math.max(left, clip.left);
      right = Math.min(right, clip.right);
    }
  }
  return {left: box.left, right: box.right, width: box.width, visible: Math.max(0, right - left)};
}"""


def assert_fits(page, where: str) -> dict:
    """Nothing wider than the window, no metric or button text cut off; returns the measures (usable by any page's test)."""
    m = page.evaluate(MEASURE)
    assert m["document"] <= m["window"], f"{where}: the page is {m['document']} px wide in a {m['window']} px window"
    assert m["mainContent"] <= m["main"] + 1, f"{where}: the main area scrolls sideways ({m['mainContent']} > {m['main']})"
    assert not m["cut"], f"{where}: cut off: {m['cut']}"
    return m


def _assert_canvas_whole(page, where: str) -> None:
    canvas = page.locator("canvas.upper-canvas").first
    seen = canvas.evaluate(VISIBLE_WIDTH)
    assert seen["width"] == pytest.approx(280, abs=1), f"{where}: canvas {seen}"
    assert 0 <= seen["left"] and seen["right"] <= page.viewport_size["width"], f"{where}: canvas {seen}"
    assert seen["visible"] == pytest.approx(280, abs=1), f"{where}: only {seen['visible']:.0f} px of the canvas show"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [NARROW, TIGHTEST, WIDE], ids=["800px", "1100px", "1400px"])
def test_draw_fits(page, app_server, viewport):
    page.set_viewport_size(viewport)
    where = f"/draw at {viewport['width']} px"
    app_server.open(page, "/draw")
    page.get_by_text("draw a digit").wait_for()
    draw_strokes(page, canvas_box(page), STROKES[7])  # canvas_box also asserts the canvas is 280x280
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMetricValue"]')]
        .some(v => v.innerText.trim() === '7')""", timeout=30_000)
    page.get_by_text("Compare all saved models").click()  # the widest layout Draw has
    page.get_by_text("Show preprocessing steps").click()
    page.get_by_text("All saved models", exact=True).wait_for()
    app_server.wait_idle(page)
    _assert_canvas_whole(page, where)
    assert assert_fits(page, where)["metrics"] >= 2  # Prediction and Confidence were checked
    # The check itself: Streamlit's own metric style (one line, ellipsis) in a box too small is reported.
    page.evaluate("""() => { const v = document.querySelector('[data-testid="stMetricValue"] > div');
      for (const e of [v, v.querySelector('p')]) e.style.cssText =
        'width: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; overflow-wrap: normal'; }""")
    assert page.evaluate(MEASURE)["cut"]
    page.evaluate("""() => { const v = document.querySelector('[data-testid="stMetricValue"] > div');
      for (const e of [v, v.querySelector('p')]) e.style.cssText = ''; }""")  # as it was, for the screenshot
    assert not page.evaluate(MEASURE)["cut"]


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [NARROW, WIDE], ids=["800px", "1400px"])
@pytest.mark.parametrize("path", ["/train", "/compare", "/", "/explore", "/inspect", "/my-digits", "/data"])
def test_page_fits(page, app_server, path, viewport):
    page.set_viewport_size(viewport)
    app_server.open(page, path)
    page.wait_for_timeout(1500)  # charts and tables lay out after the script run ends
    app_server.wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert_fits(page, f"{path} at {viewport['width']} px")


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [NARROW, TIGHTEST, WIDE], ids=["800px", "1100px", "1400px"])
def test_compare_of_two_models_fits(page, app_server, viewport):
    """Two models make Compare's widest rows: three confusion matrices, and McNemar's three metrics whose
    labels carry the model names."""
    twin = app_server.models_dir / "default-twin"
    shutil.copytree(app_server.models_dir / "default", twin)
    meta = json.loads((twin / "metadata.json").read_text())
    (twin / "metadata.json").write_text(json.dumps(meta | {"name": twin.name}))
    try:
        page.set_viewport_size(viewport)
        app_server.open(page, f"/compare?models=default,{twin.name}")  # whatever else other tests saved
        page.get_by_text("Is each difference real?").wait_for(timeout=60_000)
        page.get_by_text("p-value (this pair alone)").wait_for(timeout=120_000)  # the last of the three metrics
        page.wait_for_timeout(1500)
        app_server.wait_idle(page)
        where = f"/compare of two models at {viewport['width']} px"
        assert assert_fits(page, where)["metrics"] >= 3, where
    finally:
        shutil.rmtree(twin)
