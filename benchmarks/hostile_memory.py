"""Server memory under the worst hostile inputs of issue 12 (its closing note's "peak memory" figure).

Usage: .venv/bin/python benchmarks/hostile_memory.py    (a few minutes; not in run_all.py's default list)

Serves the real app on 127.0.0.1 against temp folders holding a copy of the shipped default model (as
tests/browser/conftest.py does), visits every page once in Chromium for the baseline, then feeds it the inputs
below, built as tests/hostile/ builds them. The server's VmRSS (plus its children's) is sampled every 0.1 s from
/proc; after each input its VmHWM, the peak sampled during it, whether the page showed a traceback (stException)
and whether the refusal's words were shown go to benchmarks/results/hostile_memory.json.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
import zlib
from pathlib import Path

import common
import numpy as np
from PIL import Image

sys.path.insert(0, str(common.ROOT / "tests" / "hostile"))
from hostile_util import SHIPPED_DEFAULT, bomb_png, png_bytes, write_lab_folder  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PAGES = ("", "train", "compare", "explore", "draw", "inspect", "my-digits", "data")
TAB = "feed00c0ffee"  # this browser's tab id (dashboard/components/session.py), so the old job below is "ours"
GOAL_MB = 1536
SETTLE_S = 2.0  # keep sampling after the page is idle: work the run left behind shows up here


def descendants(pid: int) -> list[int]:
    try:
        kids = [int(k) for task in Path(f"/proc/{pid}/task").glob("*/children") for k in task.read_text().split()]
    except OSError:  # a thread or child ended while it was read
        return []
    return kids + [grandchild for kid in kids for grandchild in descendants(kid)]


class Sampler(threading.Thread):
    """VmRSS of the server (and of the server plus its children) every 0.1 s; `window()` restarts the peaks."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.window()

    def window(self) -> None:
        self.peak_kb = self.peak_tree_kb = 0

    def run(self) -> None:
        while not self.stop.is_set():
            own = common.proc_kb(self.pid, "VmRSS")
            tree = own + sum(common.proc_kb(kid, "VmRSS") for kid in descendants(self.pid))
            self.peak_kb, self.peak_tree_kb = max(self.peak_kb, own), max(self.peak_tree_kb, tree)
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def repeated_row_zip(png: bytes) -> bytes:
    """About 4 KB: one PNG, and a labels.csv naming it 300,000 times (as test_hostile_data_files does)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", png)
        zf.writestr("labels.csv", b"file,label\n" + b"a.png,3\n" * 300_000)
    return buf.getvalue()


def gigabyte_member_model(dst: Path) -> Path:
    """The shipped model's archive plus assets/blob.bin of 1 GiB of zeros (as test_hostile_data_files.archive_with)."""
    zero = b"\0" * 2**20
    with zipfile.ZipFile(SHIPPED_DEFAULT / "model.keras") as zin, \
            zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item))
        with zout.open("assets/blob.bin", "w", force_zip64=True) as fh:
            for _ in range(2**10):
                fh.write(zero)
    return dst


def real_digit_png() -> bytes:
    """A real MNIST test digit, dark ink on white, at its own 28x28 (so the zip stays about 4 KB)."""
    x_test = np.load(common.ROOT / "tests" / "fixtures" / "mnist_small.npz")["x_test"]
    return png_bytes(Image.fromarray(255 - x_test[7]))


def old_job_with_huge_events(jobs: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    folder = jobs / "20260101-000000-old000"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"id": folder.name, "name": "old-run", "pid": gone.pid,
                                                 "started": 1.0, "kind": "train", "session": TAB}))
    line = b'{"event": "batch", "epoch": 1, "batch": 1, "steps": 9, "loss": 1.0, "accuracy": 0.5, "elapsed": 1.0}\n'
    with open(folder / "events.jsonl", "wb") as fh:
        fh.write(line * (100 * 2**20 // len(line)))


def main() -> None:
    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="hostile_memory_"))
    models, jobs = base / "saved_models", base / "jobs"
    shutil.copytree(SHIPPED_DEFAULT, models / "default")
    jobs.mkdir()
    env = dict(os.environ, MNIST_MODELS_DIR=str(models), MNIST_JOBS_DIR=str(jobs), TF_CPP_MIN_LOG_LEVEL="2",
               MNIST_EXPLORE_DIR=str(base / "explore"), MNIST_MY_DIGITS_DB=str(base / "my_digits.sqlite"))
    port, log = free_port(), open(base / "server.log", "wb")
    server = subprocess.Popen([str(common.ROOT / ".venv" / "bin" / "python"), "-m", "streamlit", "run",
                               "dashboard/app.py", "--server.address", "127.0.0.1", "--server.port", str(port),
                               "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                              cwd=common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url, sampler, results = f"http://127.0.0.1:{port}", Sampler(server.pid), {}
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None and time.monotonic() < deadline, (base / "server.log").read_text()[-2000:]
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        sampler.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(120_000)

            def idle() -> None:
                page.wait_for_timeout(500)  # a click's rerun may not have started yet
                page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=300_000)

            def visit(path: str, query: str = "") -> None:
                page.goto(f"{url}/{path}?tab={TAB}{query}")
                idle()

            def measure(name: str, action, expect: str) -> None:
                sampler.window()
                start = time.perf_counter()
                action()
                seconds = time.perf_counter() - start
                time.sleep(SETTLE_S)
                said = [t.strip()[:300] for t in page.locator('[data-testid="stAlert"], [data-testid="stFileChip"]')
                        .all_inner_texts()]
                results[name] = {"peak_during_mb": round(sampler.peak_kb / 1024, 1),
                                 "peak_with_children_mb": round(sampler.peak_tree_kb / 1024, 1),
                                 "vmhwm_after_mb": round(common.proc_kb(server.pid, "VmHWM") / 1024, 1),
                                 "rss_after_mb": round(common.proc_kb(server.pid, "VmRSS") / 1024, 1),
                                 "seconds": round(seconds, 1), "server_alive": server.poll() is None,
                                 "tracebacks": page.locator('[data-testid="stException"]').count(),
                                 "page_said": said, "expected_words": expect,
                                 "expected_words_shown": expect in page.locator("body").inner_text()}
                print(f"{name:28} {json.dumps(results[name])[:400]}", flush=True)

            measure("baseline: every page once", lambda: [visit(path) for path in PAGES], "Data")
            write_lab_folder(models, "bomb", gigabyte_member_model(base / "bomb.keras"),
                             {"created": "2099-01-01 00:00:00"})  # the newest, so Compare pre-selects it
            measure("model member of 1 GiB, Compare twice", lambda: (visit("compare"), visit("compare")),
                    "over the limit of 268,435,456 per member")

            def import_zip() -> None:
                visit("my-digits")
                blob = repeated_row_zip(real_digit_png())
                page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(
                    {"name": "hostile.zip", "mimeType": "application/zip", "buffer": blob})
                idle()
                page.get_by_role("button", name="Import").click()
                idle()
            results["zip bytes"] = len(repeated_row_zip(real_digit_png()))
            measure("zip naming one PNG 300,000x", import_zip, "over the limit")
            huge = {"spec": {"kind": "mlp", "dense_layers": [{"units": 8192}] * 8}}
            link = base64.urlsafe_b64encode(zlib.compress(json.dumps(huge).encode())).decode().rstrip("=")
            measure("/train link over cost limits", lambda: visit("train", f"&spec={link}"), "over the lab's limit")
            old_job_with_huge_events(jobs)
            measure("100 MB events file, /train", lambda: (visit(""), visit("train")), "old-run")

            def upload_on_draw(name: str, blob: bytes):
                def action() -> None:
                    visit("draw")
                    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(
                        {"name": name, "mimeType": "image/png", "buffer": blob})
                    idle()
                return action
            measure("20 MB upload on /draw", upload_on_draw("big.png", os.urandom(20 * 2**20)), "or smaller")
            measure("12000x12000 bomb PNG /draw", upload_on_draw("bomb.png", bomb_png(12000, 12000)),
                    "too large")
            browser.close()
    finally:
        sampler.stop.set()
        server.terminate()
        server.wait(timeout=30)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
    report(results)


def report(results: dict) -> None:
    baseline = results["baseline: every page once"]["vmhwm_after_mb"]
    inputs = {k: v for k, v in results.items() if isinstance(v, dict) and not k.startswith("baseline")}
    worst = max(inputs, key=lambda k: inputs[k]["peak_during_mb"])
    met = (max(v["vmhwm_after_mb"] for v in inputs.values()) < GOAL_MB
           and all(v["server_alive"] and v["tracebacks"] == 0 for v in inputs.values()))
    details = {"baseline_mb": baseline, "worst_input": worst,
               "worst_growth_over_baseline_mb": round(inputs[worst]["peak_during_mb"] - baseline, 1),
               "all_refusals_shown": all(v["expected_words_shown"] for v in inputs.values()), "inputs": results,
               "note": "baseline_mb: VmHWM after every page was visited once; peak_during_mb: highest VmRSS sampled "
                       "every 0.1 s from the input's start to 2 s after its page was idle; met: every VmHWM under "
                       "the goal, no stException on any page, the server alive"}
    common.write("hostile_memory", [common.target("server peak memory under hostile inputs",
                                                  [v["peak_during_mb"] for v in inputs.values()],
                                                  f"under {GOAL_MB / 1024:g} GB, no traceback", "MB", met)],
                 details, quick=False)


if __name__ == "__main__":
    main()
