"""A real `streamlit run dashboard/app.py` for the browser benchmarks (stroke_latency, stop_latency): served on
127.0.0.1 from this checkout or from a copy whose one file comes from another git revision, with a temp
registry holding a copy of saved_models/default, and Debian's Chromium to drive it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import common

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SERVE_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run dashboard/app.py` from `tree` (this checkout, or an export of another revision)."""

    def __init__(self, label: str, tree: Path, base: Path):
        self.label, self.tree = label, tree
        models = base / "saved_models"
        shutil.copytree(common.ROOT / "saved_models" / "default", models / "default")
        (base / "jobs").mkdir()
        env = dict(os.environ, MNIST_MODELS_DIR=str(models), MNIST_JOBS_DIR=str(base / "jobs"),
                   MNIST_EXPLORE_DIR=str(base / "explore"), MNIST_MY_DIGITS_DB=str(base / "my_digits.sqlite"),
                   TF_CPP_MIN_LOG_LEVEL="2")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.address", "127.0.0.1",
               "--server.port", str(self.port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        self.log = open(base / "server.log", "wb")  # noqa: SIM115  closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_serving(self) -> None:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.label}: streamlit exited with code {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.label}: streamlit did not serve within {SERVE_TIMEOUT_S} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def checkout_with_file_from(rev: str, path: str, into: Path) -> Path:
    """A copy of this checkout (uncommitted work included) whose file `path` is the one at git revision `rev`,
    so two servers differ in that file only. MNIST is linked, not copied."""
    skip = {".venv", ".git", "data", "tests", "saved_models", "results", "__pycache__", ".ruff_cache", ".pytest_cache"}
    shutil.copytree(common.ROOT, into, ignore=lambda _dir, names: [n for n in names if n in skip])
    (into / "data").symlink_to(common.ROOT / "data")
    old = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=common.ROOT, capture_output=True, check=True)
    (into / path).write_bytes(old.stdout)
    return into


def this_and_before(base: Path, path: str, rev: str | None) -> list[Server]:
    """A server of this checkout, and with `rev` a second one whose file `path` is the one at that git revision
    (labelled with its name and short hash), each with its own registry and jobs under `base`."""
    (base / "now").mkdir()
    servers = [Server("this checkout", common.ROOT, base / "now")]
    if rev:
        short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=common.ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
        (base / "then").mkdir()
        tree = checkout_with_file_from(rev, path, base / "then" / "tree")
        servers.append(Server(f"{Path(path).name} of git {short}", tree, base / "then"))
    return servers


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
