"""Dashboard speed: rerun time of every page with 5 saved models, cold start, and server memory.

Usage: .venv/bin/python benchmarks/app_pages.py [--quick] [--no-browser] [--no-levers] [--cold-starts N]

1. Rerun times, in-process with Streamlit's AppTest: each page of dashboard/app.py is opened once
   (its first load fills the caches), then rerun 5 times (--quick: 2); the median rerun counts.
   Compare is timed with all 5 models picked, Draw both as it opens and in "compare all" mode.
   Pages are read from app.py, so pages added later are timed too.
2. Cold start and memory, with a real server and Debian's chromium via Playwright, N times (default 3): the
   time from launching `streamlit run` to the home page's title showing in the browser; then every page is
   visited in menu order, each waited for until its script has run to the end, and the server's resident
   memory is read from /proc after each page, with its peak (VmHWM) so far. Goals (issue 15): cold start
   <= 5 s (median), peak memory after every page <= 1 GB (1024 MB, median). --quick visits the pages once.
3. Levers (unless --no-levers), each measured in this same run and kept in details["levers"]: cold starts
   with TensorFlow imported before the first page (as app.py did before; a sitecustomize on PYTHONPATH) and
   with Streamlit's file watcher off, and
   one visit of every page for each memory setting: TensorFlow's oneDNN off, oneDNN on the system allocator,
   and glibc's arenas capped at 2. (The forward pass's own lever, traced vs eager and its batch size, is
   measured in fresh processes by eval_throughput.py.)

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
COLD_START_GOAL_S, MEMORY_GOAL_MB = 5.0, 1024
# Settings measured against the app's own, one full visit each: {lever: (environment, what it changes)}.
MEMORY_LEVERS = {
    "oneDNN off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, "TensorFlow's Eigen kernels and glibc malloc"),
    "oneDNN on the system allocator": ({"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"},
                                       "glibc malloc instead of oneDNN's pool, which never shrinks"),
    # Only from the environment, before the server starts. mallopt(M_ARENA_MAX, 2) called in the server once
    # Streamlit's own threads had heaps left the peak where it was: after Home 962, 943, 992 MB against 924,
    # 887, 899 MB with this variable (3 interleaved rounds), at the top of app.py 968 MB (n=1; 2026-12-07, AVX2).
    "glibc arenas capped at 2": ({"MALLOC_ARENA_MAX": "2"}, "glibc keeps at most 2 heaps for all threads"),
}
APP_ITSELF = "the app as it is"
EAGER_IMPORT = "import tensorflow, keras  # noqa\n"  # the old cold start: TensorFlow before the first page
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


def proc_status(pid: int) -> dict:
    """The server's resident memory now (VmRSS) and at its peak (VmHWM) in MB, and its thread count."""
    return {"rss_mb": common.proc_kb(pid, "VmRSS") / 1024, "peak_mb": common.proc_kb(pid, "VmHWM") / 1024,
            "threads": common.proc_kb(pid, "Threads")}


def wait_idle(page) -> None:
    """Until Streamlit has run the page's script to the end (the app's own marker, as the browser tests use)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=180_000)


def browser_run(env: dict, visit_pages: bool = True) -> dict:
    """One cold start: from launching `streamlit run` to the home page's title in Chromium; then (visit_pages)
    every page in menu order, each run to its end, and the server's memory after each and at its peak."""
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
                    time.sleep(0.05)
            server_up = time.perf_counter() - t0
            page.goto(url)
            page.get_by_role("heading", name="MNIST Model Lab").wait_for(timeout=180_000)
            cold = time.perf_counter() - t0
            result = {"server_health_seconds": server_up, "cold_start_seconds": cold}
            if visit_pages:
                wait_idle(page)
                result["after_home"] = proc_status(server.pid)
                visits, memory, peaks = {}, {}, {}
                for file, path in pages():
                    t1 = time.perf_counter()
                    page.goto(url + path)
                    page.locator("h1").first.wait_for(timeout=180_000)
                    wait_idle(page)
                    name, status = Path(file).stem, proc_status(server.pid)
                    visits[name] = time.perf_counter() - t1
                    memory[name], peaks[name] = status["rss_mb"], status["peak_mb"]
                # The peak after each page shows which page's transient set it, which resident memory hides.
                result |= {"page_visit_seconds": visits, "rss_mb_after_page": memory, "peak_mb_after_page": peaks,
                           **proc_status(server.pid)}
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()
    return result


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def interleaved(variants: dict[str, dict], rounds: int, visit_pages: bool) -> dict[str, list[dict]]:
    """Each variant (name -> extra environment) once per round, the order rotated by the round, so a burst of
    load from others on this shared machine lands on every variant alike. The calibration and robustness
    caches, which sit beside the registry, are removed after each run: every Compare computes what a fresh
    registry's does."""
    names, runs = list(variants), {name: [] for name in variants}
    env = dict(os.environ)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            result = browser_run(env | variants[name], visit_pages=visit_pages)
            shutil.rmtree(Path(env["MNIST_MODELS_DIR"]).parent / "cache", ignore_errors=True)
            runs[name].append(result)
            memory = (f", peak memory {result['peak_mb']:.0f} MB, {result['rss_mb']:.0f} MB at the end"
                      if "peak_mb" in result else "")
            print(f"  round {r + 1}/{rounds} {name}: cold start {result['cold_start_seconds']:.2f} s{memory}", flush=True)
    return runs


def browser_measurements(tmp: Path, rounds: int, memory_rounds: int, with_levers: bool) -> tuple[dict, dict | None]:
    """The app's cold starts (median of `rounds`) and its memory after every page (`memory_rounds` visits),
    each interleaved with its levers when `with_levers`."""
    eager = tmp / "eager_import"
    eager.mkdir()
    (eager / "sitecustomize.py").write_text(EAGER_IMPORT)
    start_levers = {"TensorFlow imported before the first page": {"PYTHONPATH": str(eager)},
                    "file watcher off": {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}} if with_levers else {}
    print(f"cold starts, {rounds} rounds:", flush=True)
    starts = interleaved({APP_ITSELF: {}} | start_levers, rounds, visit_pages=False)
    memory_levers = {name: settings for name, (settings, _) in MEMORY_LEVERS.items()} if with_levers else {}
    print("memory after every page:", flush=True)
    memory = interleaved({APP_ITSELF: {}} | memory_levers, 1, visit_pages=True)
    for _ in range(memory_rounds - 1):  # after the levers: the app's own runs bracket them
        memory[APP_ITSELF] += interleaved({APP_ITSELF: {}}, 1, visit_pages=True)[APP_ITSELF]
    browser = {"cold_starts": starts[APP_ITSELF], "memory_runs": memory[APP_ITSELF],
               "cold_start_median_seconds": median_of(starts[APP_ITSELF], "cold_start_seconds"),
               "peak_memory_median_mb": median_of(memory[APP_ITSELF], "peak_mb")}
    if not with_levers:
        return browser, None
    found = {}
    for name, env in start_levers.items():
        found[name] = {"environment": env, "runs": starts[name],
                       "cold_start_median_seconds": median_of(starts[name], "cold_start_seconds")}
    found["TensorFlow imported before the first page"]["changes"] = "TensorFlow and Keras before Home, as app.py did"
    found["file watcher off"]["changes"] = "server.fileWatcherType none"
    for name, (settings, changes) in MEMORY_LEVERS.items():
        run = memory[name][0]
        found[name] = {"changes": changes, "environment": settings, "runs": memory[name], "peak_mb": run["peak_mb"],
                       "rss_mb_at_end": run["rss_mb"]}
    return browser, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 reruns per page instead of 5; pages visited once")
    parser.add_argument("--no-browser", action="store_true", help="skip the cold start and memory measurement")
    parser.add_argument("--no-levers", action="store_true", help="skip the lever runs (details['levers'])")
    parser.add_argument("--no-reruns", action="store_true", help="skip the AppTest rerun times")
    parser.add_argument("--cold-starts", type=int, default=3, help="cold starts to take the median of (>= 3)")
    args = parser.parse_args()
    n = max(3, args.cold_starts)
    with tempfile.TemporaryDirectory() as tmp:
        models, jobs = Path(tmp) / "models", Path(tmp) / "jobs"
        models.mkdir()
        jobs.mkdir()
        fill_registry(models)
        os.environ["MNIST_MODELS_DIR"], os.environ["MNIST_JOBS_DIR"] = str(models), str(jobs)
        reruns = {}
        if not args.no_reruns:
            print("rerun times (AppTest):", flush=True)
            reruns = rerun_times(2 if args.quick else 5)
        browser, lever_results = None, None
        if not args.no_browser and Path(CHROMIUM).exists():
            browser, lever_results = browser_measurements(Path(tmp), n, 1 if args.quick else 2, not args.no_levers)
            print(f"  cold start median {browser['cold_start_median_seconds']:.2f} s, "
                  f"peak memory median {browser['peak_memory_median_mb']:.0f} MB")

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
        starts, visits = browser["cold_starts"], browser["memory_runs"]
        cold, peak = browser["cold_start_median_seconds"], browser["peak_memory_median_mb"]
        targets.append(common.target("app cold start to home page (Chromium)", [r["cold_start_seconds"] for r in starts],
                                     f"<= {COLD_START_GOAL_S:g} s", "s", cold <= COLD_START_GOAL_S))
        targets.append(common.target("app server peak memory (VmHWM) after every page", [r["peak_mb"] for r in visits],
                                     f"<= {MEMORY_GOAL_MB} MB", "MB", peak <= MEMORY_GOAL_MB))
        targets.append(common.target("app server resident memory after the last page", [r["rss_mb"] for r in visits],
                                     "(report)", "MB", None))
    common.write("app_pages", targets, {"reruns": reruns, "browser": browser, "levers": lever_results,
                                        "models": list(MODEL_NAMES), "pages": pages()}, args.quick)


if __name__ == "__main__":
    main()
