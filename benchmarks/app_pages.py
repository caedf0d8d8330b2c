"""Dashboard speed: rerun time of every page with 5 saved models, cold start, and peak memory.

Usage: .venv/bin/python benchmarks/app_pages.py [--quick] [--no-browser]

1. Rerun times, in-process with Streamlit's AppTest: each page of dashboard/app.py is opened once
   (its first load fills the caches), then rerun 5 times (--quick: 2); the median rerun counts.
   Compare is timed with all 5 models picked, Draw both as it opens and in "compare all" mode.
   Pages are read from app.py, so pages added later are timed too.
2. Cold start and memory, with a real server and Debian's chromium via Playwright: time from
   launching `streamlit run` to the home page's title showing in the browser, then every page is
   visited and the server's peak resident memory (VmHWM) is read from /proc.

The registry is a temp folder holding 5 copies of the shipped default model under different
names, so every page has real metadata to show. Nothing touches saved_models/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import common

APP = common.ROOT / "dashboard" / "app.py"
SHIPPED_DEFAULT = common.ROOT / "saved_models" / "default"
MODEL_NAMES = ("default", "model-b", "model-c", "model-d", "model-e")
COMPARE_GOAL, DRAW_GOAL = 1.5, 0.3
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def pages() -> list[tuple[str, str]]:
    """(file relative to dashboard/, url path) of every st.Page in app.py, in menu order."""
    found = re.findall(r'st\.Page\(\s*VIEWS\s*/\s*"([\w.]+)"(.*?)\)', APP.read_text())
    out = []
    for file, rest in found:
        url = re.search(r'url_path="([^"]*)"', rest)
        out.append((f"views/{file}", url.group(1) if url else Path(file).stem))
    return out


def fill_registry(folder: Path) -> None:
    for name in MODEL_NAMES:
        shutil.copytree(SHIPPED_DEFAULT, folder / name)
        meta_path = folder / name / "metadata.json"
        meta = json.loads(meta_path.read_text())
        meta["name"] = name
        meta_path.write_text(json.dumps(meta, indent=1))


def rerun_times(reruns: int) -> dict:
    from streamlit.testing.v1 import AppTest

    results = {}

    def timed(at, label, runs):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t0)
        errors = [e.value for e in at.exception] + [e.value for e in at.error]
        results[label] = {"median": statistics.median(times), "min": min(times), "max": max(times), "times": times,
                          "errors": [str(e)[:200] for e in errors]}
        print(f"  {label:32} rerun median {results[label]['median']:.3f} s  {'ERRORS: ' + str(errors)[:200] if errors else ''}",
              flush=True)

    for file, _url in pages():
        at = AppTest.from_file(str(APP), default_timeout=180)
        at.run()
        if file != "views/home.py":
            at.switch_page(file)
        t0 = time.perf_counter()
        at.run()
        first = time.perf_counter() - t0
        label = Path(file).stem
        if label == "compare":
            pick = [m for m in at.multiselect if m.key == "compare_pick"]
            if pick:
                pick[0].set_value(list(MODEL_NAMES))
                t0 = time.perf_counter()
                at.run()  # first load with all 5 picked builds the figures once
                first = time.perf_counter() - t0
                label = "compare (5 models picked)"
        timed(at, label, reruns)
        results[label]["first_load"] = first
        if Path(file).stem == "draw":
            toggles = [t for t in at.toggle if t.key == "draw_compare_all"]
            if toggles:
                toggles[0].set_value(True)
                at.run()
                timed(at, "draw (compare all on)", reruns)
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def browser_run(env: dict) -> dict:
    """Cold start to the home page in a real browser, then every page, then the server's peak memory."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        t0 = time.perf_counter()
        server = subprocess.Popen(cmd, cwd=common.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            while True:
                try:
                    urllib.request.urlopen(url + "_stcore/health", timeout=2)
                    break
                except OSError:
                    if time.perf_counter() - t0 > 180 or server.poll() is not None:
                        raise SystemExit("the app did not start") from None
                    time.sleep(0.1)
            server_up = time.perf_counter() - t0
            page.goto(url)
            page.get_by_role("heading", name="MNIST Model Lab").wait_for(timeout=180_000)
            cold = time.perf_counter() - t0
            visits = {}
            for file, path in pages():
                t1 = time.perf_counter()
                page.goto(url + path)
                page.locator("h1").first.wait_for(timeout=180_000)
                page.wait_for_timeout(500)  # let the page finish its script run
                visits[Path(file).stem] = time.perf_counter() - t1
            memory = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()
    return {"server_health_seconds": server_up, "cold_start_seconds": cold, "page_visit_seconds": visits,
            "peak_memory_mb": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 reruns per page instead of 5")
    parser.add_argument("--no-browser", action="store_true", help="skip the cold start and memory measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models, jobs = Path(tmp) / "models", Path(tmp) / "jobs"
        models.mkdir()
        jobs.mkdir()
        fill_registry(models)
        os.environ["MNIST_MODELS_DIR"], os.environ["MNIST_JOBS_DIR"] = str(models), str(jobs)
        print("rerun times (AppTest):", flush=True)
        reruns = rerun_times(2 if args.quick else 5)
        browser = None
        if not args.no_browser and Path(CHROMIUM).exists():
            print("cold start and memory (streamlit + chromium):", flush=True)
            browser = browser_run(dict(os.environ))
            print(f"  cold start {browser['cold_start_seconds']:.1f} s, peak memory {browser['peak_memory_mb']:.0f} MB")

    targets = []
    compare = reruns.get("compare (5 models picked)")
    if compare:
        targets.append(common.target("Compare rerun, 5 models picked", compare["times"], f"<= {COMPARE_GOAL:g} s", "s",
                                     compare["median"] <= COMPARE_GOAL and not compare["errors"]))
    for label in ("draw", "draw (compare all on)"):
        if label in reruns:
            r = reruns[label]
            targets.append(common.target(f"Draw rerun{label[4:]}", r["times"], f"<= {DRAW_GOAL:g} s", "s",
                                         r["median"] <= DRAW_GOAL and not r["errors"]))
    for label, r in reruns.items():
        if not label.startswith(("compare", "draw")):
            targets.append(common.target(f"{label.capitalize()} rerun", r["times"], "(report)", "s", None))
    if browser:
        targets.append(common.target("app cold start to home page", [browser["cold_start_seconds"]], "(report)", "s", None))
        targets.append(common.target("app peak memory after every page", [browser["peak_memory_mb"]], "(report)", "MB",
                                     None))
    common.write("app_pages", targets, {"reruns": reruns, "browser": browser, "models": list(MODEL_NAMES),
                                        "pages": pages()}, args.quick)


if __name__ == "__main__":
    main()
