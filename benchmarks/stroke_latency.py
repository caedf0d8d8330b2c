"""Stroke to prediction on the real Draw page in Chromium: mouse-up to the new prediction text.

Usage: .venv/bin/python benchmarks/stroke_latency.py [--quick] [--draw-page-from REV]

A real server (`streamlit run dashboard/app.py`, a temp registry holding a copy of saved_models/default)
and Debian's Chromium at 1400 px via Playwright. After one warm-up stroke (the session's first: reported,
not counted), nine digits, each one stroke, are drawn on a fresh canvas (Clear between them, so every stroke
brings a new prediction). Every time is taken in the browser's own clock (performance.now): mouse-up by a
capture listener, the prediction text by a MutationObserver over the page's metrics and alerts, and the
frame that paints it by the next requestAnimationFrame. A wrapped WebSocket records when each message
leaves and arrives, which splits a sample into: mouse-up to the drawing leaving the browser (the canvas
component waits 200 ms unless the page sends at once, see dashboard/views/draw.py; plus the PNG encoding),
drawing sent to the message carrying the answer (server rerun up to the metric, and the browser's message
handling), and that message to the text (render). The Draw rerun (drawing sent to the rerun's last
message) is recorded too.

--draw-page-from REV also serves a copy of this checkout whose dashboard/views/draw.py is the one at git
revision REV, and draws the same digits there, alternating between the two servers, so before and after
share the run and differ in the Draw page only.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path

import common
from live_server import CHROMIUM, CHROMIUM_ARGS, Server, this_and_before, wait_idle

GOAL_MS = 250
CANVAS_PX = 280
DRAW_PAGE = "dashboard/views/draw.py"


def _loop(cx, cy, rx, ry, turns=1.0, points=26, x_freq=1):
    return [(cx + rx * math.sin(x_freq * t), cy - ry * math.cos(t))
            for t in (turns * 2 * math.pi * i / (points - 1) for i in range(points))]


# One stroke per digit, in canvas pixels (280x280): the digit itself does not matter, only that the drawing
# is new, so the prediction text changes.
DIGITS = {
    "1": [(140, 45), (140, 235)],
    "0": _loop(140, 140, 60, 90),
    "7": [(75, 60), (205, 60), (125, 235)],
    "4": [(170, 235), (170, 45), (70, 170), (210, 170)],
    "2": [(80, 90), (100, 60), (140, 45), (180, 60), (195, 95), (180, 130), (80, 230), (205, 230)],
    "8": [(140 + 55 * math.sin(2 * t), 140 - 90 * math.cos(t)) for t in (2 * math.pi * i / 32 for i in range(33))],
    "3": [(80, 60), (140, 45), (195, 75), (180, 120), (130, 140), (185, 165), (195, 205), (140, 235), (80, 220)],
    "5": [(195, 50), (95, 50), (85, 130), (150, 120), (195, 160), (185, 215), (130, 235), (80, 215)],
    "6": [(180, 50), (120, 80), (90, 150), (100, 210), (140, 235), (185, 210), (190, 165), (150, 140), (100, 160)],
    "9": [(190, 90), (150, 50), (100, 70), (95, 110), (140, 130), (190, 95), (185, 235)],
}

WARM_UP_DIGIT = "6"

# Runs before the app's own scripts: every WebSocket message in or out, with its time, and the last mouse-up.
RECORDER = """(() => {
  window.__ws = [];
  const size = d => d.byteLength ?? d.size ?? d.length ?? 0;
  const Native = window.WebSocket;
  const send = Native.prototype.send;
  Native.prototype.send = function (data) { window.__ws.push(['out', performance.now(), size(data)]); return send.call(this, data); };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', e => window.__ws.push(['in', performance.now(), size(e.data)]));
    }
  };
  window.addEventListener('mouseup', () => { window.__mouseup = performance.now(); }, true);
})()"""

# Arms a watcher on the answer's text (metrics and alerts of the main area) before a stroke. It resolves at
# the first change that shows an answer, with the mutation's time and the time of the frame that paints it.
ARM_WATCHER = """() => {
  const read = () => [...document.querySelectorAll(
      '[data-testid="stMain"] [data-testid="stMetric"], [data-testid="stMain"] [data-testid="stAlert"]')]
    .map(e => e.textContent.trim()).join(' | ');
  const before = read();
  window.__answer = new Promise(resolve => {
    const observer = new MutationObserver(() => {
      const text = read();
      if (text === before || !/Prediction|Not sure/.test(text)) return;
      const changed = performance.now();
      observer.disconnect();
      requestAnimationFrame(() => resolve({changed, painted: performance.now(), text, before}));
    });
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  });
  return before;
}"""

COLLECT = "() => window.__answer.then(answer => ({...answer, mouseup: window.__mouseup}))"


def fresh_canvas_box(page) -> dict:
    """The drawing surface not drawn on yet (Clear remounts it; the old one can linger for a moment)."""
    canvas = page.locator("canvas.upper-canvas:not([data-used])").first
    canvas.wait_for(state="visible")
    page.wait_for_timeout(500)  # a stroke in the first moments of a fresh canvas was sometimes lost
    box = canvas.bounding_box()
    canvas.evaluate("c => c.setAttribute('data-used', '1')")
    return box


def draw(page, box, points) -> None:
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()


def open_draw(browser, server: Server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(RECORDER)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url + "/draw")
    page.get_by_text("draw a digit").wait_for(timeout=180_000)
    wait_idle(page, 180_000)
    return page


def one_sample(page, digit: str) -> dict:
    """Draw `digit` on a fresh canvas and split the time from mouse-up to its answer; then Clear."""
    box = fresh_canvas_box(page)
    page.evaluate(ARM_WATCHER)
    draw(page, box, DIGITS[digit])
    answer = page.evaluate(COLLECT)
    wait_idle(page)  # the rest of the rerun (figures) arrives after the answer
    ws = page.evaluate("since => window.__ws.filter(m => m[1] >= since)", answer["mouseup"])
    sent = next((t for kind, t, _ in ws if kind == "out"), None)
    arrived = [t for kind, t, _ in ws if kind == "in" and sent is not None and t >= sent]
    carrier = max((t for t in arrived if t <= answer["changed"]), default=None)
    up = answer["mouseup"]
    sample = {"digit": digit, "text": answer["text"][:120],
              "mouseup_to_text_ms": answer["changed"] - up, "mouseup_to_painted_ms": answer["painted"] - up,
              "mouseup_to_sent_ms": None if sent is None else sent - up,
              "sent_to_answer_message_ms": None if carrier is None else carrier - sent,
              "answer_message_to_text_ms": None if carrier is None else answer["changed"] - carrier,
              "server_rerun_ms": None if not arrived else arrived[-1] - sent,
              "messages_in": len(arrived), "messages_out": sum(kind == "out" for kind, _, _ in ws)}
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("draw a digit").wait_for()
    wait_idle(page)
    return sample


def summary(samples: list[dict]) -> dict:
    keys = ("mouseup_to_painted_ms", "mouseup_to_text_ms", "mouseup_to_sent_ms", "sent_to_answer_message_ms",
            "answer_message_to_text_ms", "server_rerun_ms")
    out = {}
    for key in keys:
        values = [s[key] for s in samples if s.get(key) is not None]
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 digits instead of 9 (after the warm-up)")
    parser.add_argument("--draw-page-from", metavar="REV",
                        help=f"also measure this checkout with {DRAW_PAGE} as of this git revision")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    digits = [d for d in DIGITS if d != WARM_UP_DIGIT][: 4 if args.quick else None]
    with tempfile.TemporaryDirectory() as tmp:
        servers = this_and_before(Path(tmp), DRAW_PAGE, args.draw_page_from)
        samples: dict[str, list[dict]] = {s.label: [] for s in servers}
        warm_up: dict[str, dict] = {}
        try:
            for server in servers:
                server.wait_serving()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                pages = {s.label: open_draw(browser, s) for s in servers}
                # The session's first prediction builds the figures' code paths once; reported, not counted.
                warm_up = {label: one_sample(page, WARM_UP_DIGIT) for label, page in pages.items()}
                for digit in digits:  # alternating servers, so both see the same load over time
                    for label, page in pages.items():
                        sample = one_sample(page, digit)
                        samples[label].append(sample)
                        print(f"  {label:>22}  {digit}: painted {sample['mouseup_to_painted_ms']:6.0f} ms  "
                              f"(sent after {sample['mouseup_to_sent_ms'] or float('nan'):4.0f} ms, "
                              f"server rerun {sample['server_rerun_ms'] or float('nan'):4.0f} ms)", flush=True)
                browser.close()
        finally:
            for server in servers:
                server.stop()

    main_label = servers[0].label
    painted = [s["mouseup_to_painted_ms"] for s in samples[main_label]]
    targets = [common.target("stroke to prediction in Chromium (median)", painted, f"<= {GOAL_MS} ms", "ms",
                             statistics.median(painted) <= GOAL_MS)]
    targets.append(common.target("first stroke of a session, mouse-up to prediction (Chromium loads plotly.js then)",
                                 [warm_up[main_label]["mouseup_to_painted_ms"]], "(report)", "ms", None))
    targets.append(common.target("Draw rerun after a stroke: drawing sent to the rerun's last message",
                                 [s["server_rerun_ms"] for s in samples[main_label]], "(report)", "ms", None))
    if args.draw_page_from:
        before = [s["mouseup_to_painted_ms"] for s in samples[servers[1].label]]
        targets.append(common.target(f"stroke to prediction in Chromium, {servers[1].label} (median)",
                                     before, "(report)", "ms", None))
    details = {"method": __doc__.split("\n\n", 1)[1].strip(),
               "split": {label: summary(rows) for label, rows in samples.items()},
               "samples": samples, "warm_up_stroke": warm_up, "viewport_px": 1400, "canvas_px": CANVAS_PX}
    common.write("stroke_latency", targets, details, args.quick)


if __name__ == "__main__":
    main()
