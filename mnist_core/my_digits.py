"""The user's own handwriting: a SQLite store of drawings, their 28x28 inputs and labels.

Every write runs in one transaction (`with connection:`), so a crash mid-write leaves the
database as it was before the write. A damaged file raises one clear LabError; nothing else
in the lab depends on this file, so the rest of the app keeps working.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core.errors import LabError
from mnist_core.paths import cache_dir

DB_NAME = "my_digits.sqlite"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS digits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    png BLOB NOT NULL,                               -- the drawing as the user made it (280x280 on /draw)
    input BLOB NOT NULL CHECK (length(input) = 784), -- the 28x28 model input, uint8, row-major
    created TEXT NOT NULL                            -- UTC, ISO 8601
)
"""
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LABELS_CSV = "labels.csv"
MAX_IMPORT_FILES = 5000
MAX_IMPORT_BYTES = 50 * 1024 * 1024  # uncompressed total: refuses zip bombs


@dataclass
class Digit:
    id: int
    label: int
    png: bytes
    input: np.ndarray  # uint8 (28, 28)
    created: str


def db_path() -> Path:
    return Path(os.environ.get("MNIST_MY_DIGITS_DB") or cache_dir() / DB_NAME)


def _damaged(path: Path, exc: Exception) -> LabError:
    return LabError(f"the my-digits database {path} is damaged ({exc}); move it aside to start a new one")


def _connect(path: Path | None = None) -> sqlite3.Connection:
    path = Path(path or db_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=10)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            conn.close()
            raise LabError(f"{path} was written by a newer version of the lab (schema {version})")
        with conn:
            conn.execute(SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(digits)")}
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    if columns != {"id", "label", "png", "input", "created"}:
        conn.close()
        raise LabError(f"{path} is not a my-digits database (unexpected columns); move it aside to start a new one")
    return conn


class _Session:
    """`with _Session() as conn:` one connection, SQLite errors turned into a clear LabError."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path or db_path())

    def __enter__(self) -> sqlite3.Connection:
        self.conn = _connect(self.path)
        return self.conn

    def __exit__(self, kind, exc, tb):
        self.conn.close()
        if isinstance(exc, sqlite3.IntegrityError):
            raise LabError(f"refused: {exc}") from None
        if isinstance(exc, sqlite3.DatabaseError):
            raise _damaged(self.path, exc) from None
        return False


def _check_label(label) -> int:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise LabError(f"a digit's label must be a whole number from 0 to 9, got {label!r}")
    return int(label)


def _input_bytes(input28) -> bytes:
    a = np.asarray(input28)
    if a.shape != (28, 28):
        raise LabError(f"the model input must be 28x28, got {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(np.round(a.astype(np.float32) * 255), 0, 255).astype(np.uint8)  # floats in [0, 1]
    return a.tobytes()


def _row(png: bytes, input28, label) -> tuple:
    if not isinstance(png, (bytes, bytearray)) or not png.startswith(PNG_MAGIC):
        raise LabError("the drawing must be a PNG image")
    return (_check_label(label), bytes(png), _input_bytes(input28), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def drawing_png(image, size: int = 280) -> bytes:
    """The drawing as stored: grayscale PNG, ink white on black (canvas, photo or scan alike), at most size x size.

    A canvas's transparent background or a scan's white paper would show the ink invisibly or inverted in
    the grid, so the one `to_gray` that prepares model inputs also normalises what is kept.
    """
    from PIL import Image

    from mnist_core import preprocess

    gray = Image.fromarray((preprocess.to_gray(image) * 255).round().astype(np.uint8))
    gray.thumbnail((size, size))
    buf = io.BytesIO()
    gray.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def add(png: bytes, input28, label: int, path: Path | None = None) -> int:
    """Store one drawing; returns its id."""
    row = _row(png, input28, label)
    with _Session(path) as conn, conn:
        return int(conn.execute("INSERT INTO digits (label, png, input, created) VALUES (?, ?, ?, ?)", row).lastrowid)


def add_many(items: Iterable[tuple[bytes, np.ndarray, int]], path: Path | None = None) -> int:
    """Store many drawings all-or-nothing; returns how many."""
    with _Session(path) as conn, conn:
        cursor = conn.executemany("INSERT INTO digits (label, png, input, created) VALUES (?, ?, ?, ?)",
                                  (_row(*item) for item in items))
        return cursor.rowcount


def relabel(digit_id: int, label: int, path: Path | None = None) -> None:
    label = _check_label(label)
    with _Session(path) as conn, conn:
        if conn.execute("UPDATE digits SET label = ? WHERE id = ?", (label, int(digit_id))).rowcount != 1:
            raise LabError(f"no saved digit with id {digit_id}")


def delete(digit_id: int, path: Path | None = None) -> None:
    with _Session(path) as conn, conn:
        if conn.execute("DELETE FROM digits WHERE id = ?", (int(digit_id),)).rowcount != 1:
            raise LabError(f"no saved digit with id {digit_id}")


def all_digits(path: Path | None = None) -> list[Digit]:
    with _Session(path) as conn:
        rows = conn.execute("SELECT id, label, png, input, created FROM digits ORDER BY id").fetchall()
    return [Digit(i, label, png, np.frombuffer(raw, np.uint8).reshape(28, 28), created)
            for i, label, png, raw, created in rows]


def arrays(path: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs uint8 (N, 28, 28), labels uint8 (N,), ids (N,)): the "my digits" test set."""
    digits = all_digits(path)
    x = np.stack([d.input for d in digits]) if digits else np.zeros((0, 28, 28), np.uint8)
    return x, np.array([d.label for d in digits], np.uint8), np.array([d.id for d in digits], np.int64)


def move_aside(path: Path | None = None) -> Path:
    """Rename a damaged database out of the way (kept, never deleted) so a new one can start."""
    path = Path(path or db_path())
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    return target


# ---------- zip export / import ----------


def export_zip(path: Path | None = None) -> bytes:
    """A zip of the drawings as PNGs plus labels.csv (file, label, created)."""
    buf = io.BytesIO()
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["file", "label", "created"])
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in all_digits(path):
            name = f"digit-{d.id:06d}-label{d.label}.png"
            zf.writestr(name, d.png)
            writer.writerow([name, d.label, d.created])
        zf.writestr(LABELS_CSV, table.getvalue())
    return buf.getvalue()


def read_zip(blob: bytes) -> list[tuple[bytes, np.ndarray, int]]:
    """Check a zip from export_zip (or made by hand) and prepare every drawing; raises LabError naming the bad entry."""
    from mnist_core import preprocess

    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile:
        raise LabError("not a zip file") from None
    with zf:
        infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        if LABELS_CSV not in infos:
            raise LabError(f"the zip has no {LABELS_CSV} (columns: file, label)")
        if len(infos) > MAX_IMPORT_FILES or sum(i.file_size for i in infos.values()) > MAX_IMPORT_BYTES:
            raise LabError(f"the zip is too large (limit {MAX_IMPORT_FILES} files, {MAX_IMPORT_BYTES // 2**20} MB unpacked)")
        try:
            rows = list(csv.DictReader(io.StringIO(zf.read(LABELS_CSV).decode("utf-8-sig"))))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise LabError(f"{LABELS_CSV} is not readable CSV ({exc})") from None
        items = []
        for n, row in enumerate(rows, start=2):
            name, label = (row.get("file") or "").strip(), (row.get("label") or "").strip()
            if name not in infos:
                raise LabError(f"{LABELS_CSV} line {n}: no file {name!r} in the zip")
            if not label.isdigit() or not 0 <= int(label) <= 9:
                raise LabError(f"{LABELS_CSV} line {n}: label must be 0-9, got {label!r}")
            png = zf.read(infos[name])
            if not png.startswith(PNG_MAGIC):
                raise LabError(f"{name}: not a PNG image")
            prepared = preprocess.image_to_mnist(png, name)
            if prepared.empty:
                raise LabError(f"{name}: {prepared.message}")
            items.append((png, prepared.input, int(label)))
    return items


def import_zip(blob: bytes, path: Path | None = None) -> int:
    """Add every drawing of a zip, all or nothing; returns how many."""
    return add_many(read_zip(blob), path)


# ---------- measuring models on my digits ----------


def measure(probabilities: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Per model: accuracy and confusion matrix on my digits; and the positions every model gets wrong."""
    from mnist_core import evaluate

    labels = np.asarray(labels, dtype=np.int64)
    per_model, wrong_everywhere = {}, np.ones(len(labels), bool)
    for name, probs in probabilities.items():
        per_model[name] = evaluate.metrics(probs, labels)
        wrong_everywhere &= probs.argmax(axis=1) != labels
    return {"models": per_model, "all_wrong": np.flatnonzero(wrong_everywhere) if probabilities else np.array([], int)}


def evaluate_models(models: dict, path: Path | None = None) -> dict | None:
    """Each model's accuracy and confusion matrix on my digits, and the digits every model gets wrong.

    `models` maps names to Keras models. None when no digits are saved. The inputs are in the report
    (`x`, `y`, `ids`) so a page can show the images behind `all_wrong` (positions into them).
    """
    from mnist_core import evaluate

    x, y, ids = arrays(path)
    if not len(x):
        return None
    report = measure({name: evaluate.probabilities(model, x) for name, model in models.items()}, y)
    return {**report, "x": x, "y": y, "ids": ids}
