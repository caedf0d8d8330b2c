"""Draw -> Inspect -> Draw through the sidebar, as a user goes: the drawing, its prediction and the toggles
are still there when Draw comes back, and Inspect takes the drawing as its input on the way.

Streamlit drops the widget state of a page that is not shown, so before dashboard/components/page_state
the canvas came back empty and the toggles off.
"""

import pytest

from tests.browser.conftest import ARTIFACTS, screenshot
from tests.browser.test_draw import STROKES, canvas_box, draw_strokes

# The canvas Fabric.js draws the strokes on (beside it: a background canvas, and the upper one for the mouse).
INK = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n; }"""


def _prediction(page) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text="Prediction")).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _ink(page) -> int:
    """White pixels on the drawn-on canvas (the canvas redraws from its strokes, so this counts the strokes)."""
    canvas = page.locator("canvas.dc-canvas.lower-canvas").first
    canvas.wait_for(state="visible")
    return canvas.evaluate(INK)


def _wait_for_ink(page) -> None:
    """A remounted canvas loads its strokes asynchronously: wait until they are drawn."""
    page.wait_for_function(f"""() => {{ const c = [...document.querySelectorAll('*')].map(e => e.shadowRoot)
        .filter(Boolean).map(r => r.querySelector('canvas.dc-canvas.lower-canvas')).find(Boolean);
        return c && ({INK})(c) > 0; }}""", timeout=15_000)


def _go(page, app_server, title: str) -> None:
    """A click on the sidebar's page link: the same browser session, as a user switches pages."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.wait_for_url(f"**/{title.lower()}*")
    app_server.wait_idle(page)


@pytest.mark.browser
def test_drawing_and_toggles_survive_a_visit_to_inspect(page, app_server):
    app_server.open(page, "/draw")
    page.get_by_text("draw a digit").wait_for()
    page.get_by_text("Show preprocessing steps").click()  # the label: the switch input itself sits under it
    app_server.wait_idle(page)
    draw_strokes(page, canvas_box(page), STROKES[7])
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMetricValue"]')]
        .some(v => v.innerText.trim() === '7')""", timeout=30_000)
    app_server.wait_idle(page)
    ink_before = _ink(page)
    assert ink_before > 2000, ink_before  # three 20 px strokes across most of 280 px
    screenshot(page, ARTIFACTS / "draw_inspect_1_drawn.png")

    _go(page, app_server, "Inspect")
    page.get_by_role("radio", name="Drawing from /draw").or_(page.get_by_role("button", name="Drawing from /draw")) \
        .first.click()
    page.get_by_text("your drawing from /draw").wait_for(timeout=60_000)
    app_server.wait_idle(page)
    assert _prediction(page) == "7"
    screenshot(page, ARTIFACTS / "draw_inspect_2_inspect.png")

    _go(page, app_server, "Draw")
    page.get_by_text("centred 28x28").wait_for()  # the preprocessing steps: the toggle stayed on
    assert page.get_by_role("switch", name="Show preprocessing steps").is_checked()
    assert not page.get_by_role("switch", name="Compare all saved models").is_checked()
    assert _prediction(page) == "7"
    _wait_for_ink(page)
    ink_after = _ink(page)
    assert abs(ink_after - ink_before) < 0.02 * ink_before, (ink_before, ink_after)  # the same strokes
    screenshot(page, ARTIFACTS / "draw_inspect_3_back.png")

    # Drawing goes on on top of the kept strokes, and that longer drawing is what the next visit brings back.
    draw_strokes(page, canvas_box(page), [[(20, 265), (90, 265)]])
    page.wait_for_timeout(300)
    app_server.wait_idle(page)
    ink_more = _ink(page)
    assert ink_more > ink_after + 500, (ink_after, ink_more)
    _go(page, app_server, "Data")
    _go(page, app_server, "Draw")
    page.get_by_text("centred 28x28").wait_for()
    _wait_for_ink(page)
    assert abs(_ink(page) - ink_more) < 0.02 * ink_more, (ink_more, _ink(page))

    # The kept drawing goes on like a fresh one: Clear empties it and the prediction goes.
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("draw a digit").wait_for()
    assert page.locator('[data-testid="stMetric"]').count() == 0
