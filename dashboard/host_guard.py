"""The server's own limits, enforced by the app whatever config.toml Streamlit found.

`streamlit run dashboard/app.py` from another folder never reads the project's .streamlit/config.toml: the
server then listens on every interface, takes 200 MB uploads and accepts a websocket for any Host header
(DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 talks to the lab as if it were
local). Streamlit reads `server.maxUploadSize` and `server.allowedHosts` on every request, so setting them
from app.py holds for every upload and every websocket opened after the first script run. That first run
itself is checked here too: a session whose Host is not the lab's is stopped before any page draws.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import streamlit as st
from streamlit import config

from mnist_core import preprocess

MAX_UPLOAD_MB = preprocess.MAX_BYTES // (1024 * 1024)  # the largest file any page of the lab reads
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
EXTRA_HOSTS_ENV = "MNIST_ALLOWED_HOSTS"  # comma-separated names a proxy or a LAN uses to reach the lab


def served_address() -> str:
    """The address the server was started for ('' means every interface, Streamlit's default)."""
    return (config.get_option("server.address") or "").strip()


def is_loopback(address: str) -> bool:
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def exposed_address() -> str | None:
    """The address when the lab listens beyond this machine (the Home page warns), else None."""
    address = served_address()
    if is_loopback(address):
        return None
    return address or "0.0.0.0 (every interface)"


def allowed_hosts() -> list[str]:
    """The host names a browser may use to reach this server: loopback, plus (when bound wider) the address
    itself, this machine's name and its addresses, and any names in MNIST_ALLOWED_HOSTS."""
    hosts = list(LOOPBACK_NAMES)
    extra = [h.strip().lower() for h in os.environ.get(EXTRA_HOSTS_ENV, "").split(",") if h.strip()]
    address = served_address()
    if not is_loopback(address):
        if address and address not in ("0.0.0.0", "::"):
            hosts.append(address.strip("[]"))
        else:
            hosts += _machine_names()
    return list(dict.fromkeys(h.lower() for h in hosts + extra))


def _machine_names() -> list[str]:
    names = [socket.gethostname(), socket.getfqdn()]
    try:
        names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        pass  # a machine whose own name does not resolve: reach it by a name in MNIST_ALLOWED_HOSTS
    return [n for n in names if n]


def host_of(header: str | None) -> str:
    """'Example.COM:8501' -> 'example.com'; '[::1]:8501' -> '::1'."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(header: str | None, hosts: list[str]) -> bool:
    host = host_of(header).rstrip(".")
    return any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in hosts)


def install() -> None:
    """Set the server's upload and Host limits (kept if config.toml set stricter ones), then stop this session
    if its Host is foreign. Called from app.py before any page."""
    if config.get_option("server.maxUploadSize") > MAX_UPLOAD_MB:
        config.set_option("server.maxUploadSize", MAX_UPLOAD_MB, "dashboard/host_guard.py")
    hosts = config.get_option("server.allowedHosts") or []
    if not hosts:  # an operator's own list (config.toml or --server.allowedHosts) is respected as given
        hosts = allowed_hosts()
        config.set_option("server.allowedHosts", hosts, "dashboard/host_guard.py")
    if "*" in hosts:
        return
    try:
        header = st.context.headers.get("Host")
    except Exception:  # no request behind this run (AppTest, bare mode): nothing to check
        return
    if header is not None and not host_allowed(header, hosts):
        st.error("This address is not the lab's: open it by the address it was started for.")
        st.stop()
