"""Browser-test harness: serve the real app on 127.0.0.1 and drive it with Playwright + Debian's Chromium.

`app_server` (one per session) runs `streamlit run dashboard/app.py` against a temp registry holding a copy
of the shipped default model; `page` is a fresh browser page per test whose screenshot lands in
tests/artifacts/<test>.png. Without Chromium or Playwright the tests skip with a hint, except under CI.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
HINT = "browser tests need Chromium and Playwright: apt-get install chromium; pip install playwright"
SERVE_TIMEOUT = 120  # seconds: a cold start imports TensorFlow on a shared 2-core machine


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _require_browser() -> None:
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if missing:
        message = f"{' and '.join(missing)} missing; {HINT}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    models_dir: Path
    jobs_dir: Path
    log: Path

    def open(self, page, path: str = "/") -> None:
        """Open a page of the app and wait until its script has run to the end."""
        page.goto(self.url + path)
        self.wait_idle(page)

    @staticmethod
    def wait_idle(page, timeout_ms: int = 60_000) -> None:
        """Wait until Streamlit has finished the current script run (TensorFlow can make the first one slow)."""
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    _require_browser()
    base = tmp_path_factory.mktemp("browser_app")
    models, jobs = base / "saved_models", base / "jobs"
    shutil.copytree(ROOT / "saved_models" / "default", models / "default")
    jobs.mkdir()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "streamlit-server.log"
    port = _free_port()
    env = dict(os.environ, MNIST_MODELS_DIR=str(models), MNIST_JOBS_DIR=str(jobs), TF_CPP_MIN_LOG_LEVEL="2",
               MNIST_EXPLORE_DIR=str(base / "explore"),  # studies: base/explore, beside models_dir
               MNIST_MY_DIGITS_DB=str(base / "my_digits.sqlite"))  # never the user's own data/my_digits.sqlite
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, proc, log)
        yield App(url, models, jobs, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with code {proc.returncode}; see {log}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit did not serve {url} within {SERVE_TIMEOUT} s; see {log}", pytrace=False)


@pytest.fixture(scope="session")
def browser(app_server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    """A fresh page (1400x1000); a whole-page screenshot of how the test left it goes to tests/artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    try:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")  # parametrized ids may hold "/"
        screenshot(page, ARTIFACTS / f"{name}.png")
    finally:
        context.close()



def screenshot(page, path: Path) -> None:
    """The whole app, not just the viewport: Streamlit scrolls inside its main section, not the document,
    so grow the viewport to the content's height first."""
    height = page.evaluate("""() => Math.max(document.body.scrollHeight,
        ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]')]
            .map(e => e.scrollHeight))""")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 8000)})
    page.wait_for_timeout(400)  # let plotly re-lay out at the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
