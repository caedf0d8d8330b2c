"""Stop while a job trains, in Chromium: the click on Stop to its question ("Keep best epoch", "Discard", "Keep
training") showing, and "Keep training" to Stop showing again.

Usage: .venv/bin/python benchmarks/stop_latency.py [--quick] [--panel-from REV]

A real server (live_server.Server) and Debian's Chromium at 1400 px. The Train page starts the cnn-classic
preset (long enough to outlast the run), and once TensorFlow is training on both cores, Stop is pressed
TRIALS times (--quick: 6) at a random moment against the panel's 1 s polling fragment, and each question is
answered "Keep training". The trials come in two blocks, each with its own job, discarded at its end. A
sample is the wall time from Playwright's click to the awaited button being visible; a question that does not
come within 10 s counts as a dropped click.

--panel-from REV also serves a copy of this checkout whose dashboard/components/job_panel.py is the one at git
revision REV. Its blocks interleave with this checkout's (A B B A), one job training at a time, so before and
after share the run and differ in the panel only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import common
from live_server import CHROMIUM, CHROMIUM_ARGS, Server, this_and_before, wait_idle

PANEL = "dashboard/components/job_panel.py"
PRESET = "cnn-classic"
TRIALS, QUICK_TRIALS = 20, 6
QUESTION_TIMEOUT_MS = 10_000


def open_and_start(browser, server: Server):
    """A Train page on `server` with PRESET's job started and its progress bar showing."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url + "/train")
    wait_idle(page, 180_000)
    sidebar = page.get_by_test_id("stSidebar")
    for _ in range(4):  # a rerun can close the list under the pointer: open it again
        try:
            wait_idle(page)
            sidebar.get_by_test_id("stSelectbox").filter(has_text="Preset").click(timeout=10_000)
            page.get_by_role("option", name=PRESET, exact=True).click(timeout=10_000)
            page.get_by_role("heading", name=f"preset {PRESET}").first.wait_for(timeout=30_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_test_id("stProgress").wait_for(timeout=120_000)
    return page


def one_trial(page, rng: random.Random) -> dict:
    """Stop, then Keep training: the seconds each took to show its answer (None: the question never came)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_timeout(rng.uniform(0, 1000))  # a random phase against the 1 s poll
    start = time.perf_counter()
    page.get_by_role("button", name="Stop", exact=True).click(timeout=30_000)
    try:
        page.get_by_role("button", name="Keep training").wait_for(timeout=QUESTION_TIMEOUT_MS)
    except PlaywrightTimeout:
        return {"stop_to_question_s": None, "keep_training_to_stop_s": None}
    question = time.perf_counter() - start
    page.wait_for_timeout(rng.uniform(0, 1000))
    start = time.perf_counter()
    page.get_by_role("button", name="Keep training").click(timeout=30_000)
    page.get_by_role("button", name="Stop", exact=True).wait_for(timeout=30_000)
    return {"stop_to_question_s": question, "keep_training_to_stop_s": time.perf_counter() - start}


def discard(page) -> None:
    wait_idle(page)
    page.get_by_role("button", name="Stop", exact=True).click(timeout=30_000)
    page.get_by_role("button", name="Discard").click(timeout=30_000)
    page.get_by_text("was stopped").first.wait_for(timeout=120_000)


def summary(label: str, rows: list[dict]) -> list[dict]:
    answered = [r["stop_to_question_s"] for r in rows if r["stop_to_question_s"] is not None]
    dropped = len(rows) - len(answered)
    return [
        common.target(f"Stop to its question while training, {label} (median)", answered, "(report)", "s", None),
        common.target(f"Keep training to Stop again, {label} (median)",
                      [r["keep_training_to_stop_s"] for r in rows], "(report)", "s", None),
        common.target(f"Stop clicks with no question within {QUESTION_TIMEOUT_MS // 1000} s, {label}", [dropped],
                      "0", "", dropped == 0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TRIALS} trials instead of {TRIALS}")
    parser.add_argument("--panel-from", metavar="REV", help=f"also measure this checkout with {PANEL} as of REV")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    trials = QUICK_TRIALS if args.quick else TRIALS
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        servers = this_and_before(Path(tmp), PANEL, args.panel_from)
        samples: dict[str, list[dict]] = {s.label: [] for s in servers}
        try:
            for server in servers:
                server.wait_serving()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                # One job at a time, as a user has it; blocks in the order A B B A, so drift in the machine's
                # load falls on both alike.
                order = servers + servers[::-1] if len(servers) > 1 else servers * 2
                for server in order:
                    page = open_and_start(browser, server)
                    time.sleep(10)  # TensorFlow started and training: both cores busy from here
                    for trial in range(trials // 2):
                        row = one_trial(page, rng)
                        samples[server.label].append(row)
                        print(f"  {server.label:>28} {trial}: {row}", flush=True)
                        if row["stop_to_question_s"] is None:
                            wait_idle(page)
                    discard(page)
                    page.context.close()
                browser.close()
        finally:
            for server in servers:
                server.stop()

    targets = [row for server in servers for row in summary(server.label, samples[server.label])]
    if args.panel_from:
        now, then = (statistics.median(r["stop_to_question_s"] for r in samples[s.label]
                                       if r["stop_to_question_s"] is not None) for s in servers)
        targets.append(common.target(f"Stop to its question: {servers[1].label} / this checkout",
                                     [then / now], "(report)", "x", None))
    details = {"method": __doc__.split("\n\n", 1)[1].strip(), "preset": PRESET, "samples": samples,
               "viewport_px": 1400}
    common.write("stop_latency", targets, details, args.quick)


if __name__ == "__main__":
    main()
