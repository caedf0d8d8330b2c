"""Issue 12, group 6: the server's limits hold without the project's config.toml.

A real `streamlit run dashboard/app.py`, started from another folder (so .streamlit/config.toml is not read:
Streamlit's defaults are 200 MB uploads and any Host), is driven over raw websockets and HTTP: a DNS-rebinding
page (Host and Origin both evil.example) gets no page and then no websocket at all, the lab's own address
works, and an upload over the lab's 5 MB is refused by the server itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from hostile_util import ROOT, SHIPPED_DEFAULT

from dashboard import host_guard

FOREIGN = "evil.example"
SERVE_TIMEOUT = 120  # seconds: the first script run imports TensorFlow on a shared 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_lab(tmp_path_factory):
    """The app served on 127.0.0.1 from a folder without .streamlit/config.toml; yields its port."""
    base = tmp_path_factory.mktemp("served")
    shutil.copytree(SHIPPED_DEFAULT, base / "models" / "default")
    port = _free_port()
    env = dict(os.environ, MNIST_MODELS_DIR=str(base / "models"), MNIST_JOBS_DIR=str(base / "jobs"),
               MNIST_EXPLORE_DIR=str(base / "explore"), MNIST_MY_DIGITS_DB=str(base / "my_digits.sqlite"),
               TF_CPP_MIN_LOG_LEVEL="2")
    env.pop(host_guard.EXTRA_HOSTS_ENV, None)
    log = open(base / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=base, env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + SERVE_TIMEOUT
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (base / "server.log").read_text()
                time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


async def _session(port: int, host: str, upload: bytes | None = None) -> dict:
    """Open the app's websocket as a browser on `host` would (Host and Origin), run the script once and
    collect the alerts and titles it draws; with `upload`, also PUT it to the upload route meanwhile."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    headers = {"Origin": f"http://{host}"}
    async with websockets.connect(f"ws://{host}/_stcore/stream", host="127.0.0.1", port=port, max_size=None,
                                  additional_headers=headers, subprotocols=["streamlit"], open_timeout=30) as ws:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        rerun.rerun_script.page_script_hash = ""
        await ws.send(rerun.SerializeToString())
        seen = {"alerts": [], "headings": [], "session_id": None, "upload_status": None}
        deadline = time.time() + SERVE_TIMEOUT
        while time.time() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(ws.recv(), timeout=deadline - time.time()))
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                seen["session_id"] = msg.new_session.initialize.session_id
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                if element.WhichOneof("type") == "alert":
                    seen["alerts"].append(element.alert.body)
                elif element.WhichOneof("type") == "heading":
                    seen["headings"].append(element.heading.body)
            elif kind == "script_finished":
                break
        if upload is not None:
            seen["upload_status"] = await asyncio.to_thread(_put_upload, port, seen["session_id"], upload)
        return seen


def _put_upload(port: int, session_id: str, body: bytes) -> int:
    """PUT a file to the upload route the way the browser does (XSRF cookie and header); the HTTP status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/_stcore/health")  # sets the XSRF cookie, as the page load does in a browser
    response = conn.getresponse()
    response.read()
    cookie = next((c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or []
                   if c.startswith("_streamlit_xsrf=")), None)
    assert cookie, "the server set no XSRF cookie"
    boundary = "labboundary"
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
               f"Content-Type: image/png\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    conn.request("PUT", f"/_stcore/upload_file/{session_id}/file-1", body=payload, headers={
        "Cookie": cookie, "X-Xsrftoken": cookie.split("=", 1)[1], "Origin": f"http://127.0.0.1:{port}",
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    status = conn.getresponse().status
    conn.close()
    return status


def _handshake_status(port: int, host: str) -> int:
    """A raw websocket handshake with this Host and Origin: 101 accepted, 4xx refused."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("GET", "/_stcore/stream", skip_host=True)
    for name, value in {"Host": host, "Origin": f"http://{host}", "Upgrade": "websocket", "Connection": "Upgrade",
                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}.items():
        conn.putheader(name, value)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def _run(coroutine):
    """asyncio.run in a thread of its own: the browser tests' session-wide Playwright keeps an event loop
    running in the main thread, where asyncio.run refuses to start another."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_dns_rebinding_gets_no_page_then_no_websocket(served_lab):
    port = served_lab
    lab, evil = f"127.0.0.1:{port}", f"{FOREIGN}:{port}"
    # The very first session can arrive before app.py ever ran (nothing installed yet): its script stops.
    first = _run(_session(port, evil))
    assert first["alerts"] and "not the lab's" in first["alerts"][0], first
    assert not first["headings"], first  # no page drew: not even Home's title
    # From then on Streamlit itself refuses the handshake, before any session exists.
    assert _handshake_status(port, evil) == 403
    assert _handshake_status(port, f"{FOREIGN.upper()}.:{port}") == 403  # case and a trailing dot change nothing
    assert _handshake_status(port, lab) == 101
    assert _handshake_status(port, f"localhost:{port}") == 101
    own = _run(_session(port, lab))
    assert "MNIST Model Lab" in own["headings"], own
    assert not any("not the lab's" in a for a in own["alerts"]), own


def test_upload_over_the_labs_limit_is_refused_by_the_server(served_lab):
    """Without config.toml Streamlit would take 200 MB; the app set its own 5 MB, which the route enforces."""
    port = served_lab
    limit = host_guard.MAX_UPLOAD_MB * 1024 * 1024
    small = _run(_session(port, f"127.0.0.1:{port}", upload=b"\x89PNG" + bytes(1024)))
    assert small["upload_status"] in (200, 204), small  # the route and its XSRF check work
    big = _run(_session(port, f"127.0.0.1:{port}", upload=bytes(limit + 1024 * 1024)))
    assert big["upload_status"] == 413, big


# ---------- the pieces, without a server ----------


def test_allowed_hosts_follow_the_address_the_server_was_started_for(monkeypatch):
    from streamlit import config

    monkeypatch.delenv(host_guard.EXTRA_HOSTS_ENV, raising=False)
    try:
        config.set_option("server.address", "127.0.0.1")
        assert host_guard.allowed_hosts() == ["localhost", "127.0.0.1", "::1"]
        assert host_guard.exposed_address() is None
        config.set_option("server.address", "192.168.7.20")
        assert "192.168.7.20" in host_guard.allowed_hosts() and FOREIGN not in host_guard.allowed_hosts()
        assert host_guard.exposed_address() == "192.168.7.20"
        config.set_option("server.address", "0.0.0.0")
        assert socket.gethostname().lower() in host_guard.allowed_hosts()
        monkeypatch.setenv(host_guard.EXTRA_HOSTS_ENV, "lab.example.org, *.lan")
        hosts = host_guard.allowed_hosts()
        assert host_guard.host_allowed("lab.example.org:8501", hosts)
        assert host_guard.host_allowed("pc.lan", hosts)
        assert not host_guard.host_allowed("evil.example:8501", hosts)
        assert not host_guard.host_allowed("lab.example.org.evil.example", hosts)
        assert host_guard.host_allowed("[::1]:8501", hosts) and host_guard.host_allowed("LOCALHOST.", hosts)
    finally:
        config.get_config_options(force_reparse=True)


def test_home_warns_when_served_beyond_this_computer(app_page, registry_with):
    from streamlit import config

    registry_with("tiny")
    try:
        assert not [w for w in app_page("views/home.py").warning if "no login" in w.value]
        config.set_option("server.address", "0.0.0.0")
        warnings = [w.value for w in app_page("views/home.py").warning if "not only to this computer" in w.value]
        assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and "127.0.0.1" in warnings[0], warnings
    finally:
        config.get_config_options(force_reparse=True)


def test_make_run_warns_before_serving_on_every_interface():
    def warning(host: str) -> str:
        done = subprocess.run(["make", "-s", "host-warning", f"HOST={host}"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "WARNING: serving on 0.0.0.0" in warning("0.0.0.0") and "ssh -L" in warning("0.0.0.0")
    assert "WARNING" in warning("192.168.1.5")
    assert warning("127.0.0.1") == warning("localhost") == ""
    order = subprocess.run(["make", "-n", "-d", "run", "HOST=0.0.0.0"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "Must remake target 'host-warning'" in order  # `make run` goes through it


def test_readme_reliability_table_states_the_limits_in_the_code():
    """Each row names a constant that exists, and shows its value (as a count, in MiB/GiB/MB, or as a square)."""
    import importlib
    import math
    import re

    section = (ROOT / "README.md").read_text().split("## Reliability", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line.split("|")[3]]
    assert len(rows) >= 25, rows
    modules = {"spec_sidebar": "dashboard.components.spec_sidebar", "host_guard": "dashboard.host_guard",
               "explore.workers": "mnist_core.explore.workers", "cli.predict": "mnist_core.cli.predict",
               "cli.common": "mnist_core.cli.common"}
    for row in rows:
        limit, names = row.split("|")[2], re.findall(r"`([a-z_.]+)\.([A-Z_]+)`", row.split("|")[3])
        value = getattr(importlib.import_module(modules.get(names[0][0], f"mnist_core.{names[0][0]}")), names[0][1])
        side = math.isqrt(value)
        forms = {f"{value:,}", f"{value / 2**20:g} MiB", f"{value / 2**10:g} KiB", f"{value / 2**30:g} GiB",
                 f"{value / 2**20:g} MB", f"{value / 1e9:.1f} GFLOPs", f"{value / 1e9:g} GFLOPs",
                 f"{side} x {side}"}
        assert any(form in limit for form in forms), (row, forms)


def test_every_file_uploader_states_its_own_limit():
    """Streamlit's default is 200 MB per file when config.toml is not read: each uploader caps itself."""
    import ast

    found = 0
    for path in (ROOT / "dashboard").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "file_uploader":
                found += 1
                limit = next((k.value for k in node.keywords if k.arg == "max_upload_size"), None)
                assert limit is not None, f"{path.name}:{node.lineno} has no max_upload_size"
                if isinstance(limit, ast.Constant):
                    assert 1 <= limit.value <= host_guard.MAX_UPLOAD_MB, (path.name, node.lineno)
    assert found >= 4  # Draw, Inspect, My digits, the spec sidebar
