"""The user's own handwriting: a SQLite store of drawings, their 28x28 inputs and labels.

Every write runs in one transaction, so a crash mid-write leaves the database as it was before the write.
Reads open the file read-only and write nothing, so they work on a full disk or a read-only file. Every
failure is a DatabaseError that says in words which of busy, full, read-only or damaged it is; only real
damage may be moved aside. Nothing else in the lab depends on this file, so the rest of the app keeps working.
"""

from __future__ import annotations

import errno
import io
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_core import my_digits_zip
from mnist_core.errors import LabError
from mnist_core.my_digits_zip import PNG_MAGIC
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
COLUMNS = {"id", "label", "png", "input", "created"}
COMPANIONS = ("-journal", "-wal", "-shm")  # SQLite finds these by the database's name: they move with it
BUSY_TIMEOUT_SECONDS = 5.0  # how long a read or write waits for another process's write before saying "busy"
MOVE_ASIDE_WAIT_SECONDS = 2.0  # how long moving aside waits for the write lock that proves no writer is alive


class DatabaseError(LabError):
    """The my-digits database cannot be used right now. `kind` is "busy", "full", "read-only", "damaged",
    "foreign", "newer" or "unavailable"; the message names the file and says what is wrong in words."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    @property
    def can_move_aside(self) -> bool:
        """Only a damaged file, or one that is not a my-digits database, may be moved aside. A busy, full or
        read-only database is sound: moving it would hide the user's digits for nothing."""
        return self.kind in ("damaged", "foreign")


@dataclass
class Digit:
    id: int
    label: int
    png: bytes
    input: np.ndarray  # uint8 (28, 28)
    created: str


def db_path() -> Path:
    return Path(os.environ.get("MNIST_MY_DIGITS_DB") or cache_dir() / DB_NAME)


def _damaged(path: Path, what: str) -> DatabaseError:
    return DatabaseError("damaged", f"the my-digits database {path} is damaged ({what}); move it aside to start a new one")


def _problem(path: Path, exc: BaseException) -> DatabaseError:
    """Which kind of trouble a SQLite or OS failure is: busy, full, read-only and damaged are told apart."""
    if isinstance(exc, DatabaseError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    os_errno = exc.errno if isinstance(exc, OSError) else None
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return DatabaseError("busy", f"the my-digits database {path} is busy: another process is writing to it "
                             "(an import in another tab?); nothing was changed, try again in a moment")
    if primary == sqlite3.SQLITE_FULL or os_errno in (errno.ENOSPC, errno.EDQUOT):
        return DatabaseError("full", f"the disk holding the my-digits database {path} is full, so nothing was "
                             "written (your saved digits are intact); free some space and try again")
    if (primary in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM) or os_errno in (errno.EROFS, errno.EACCES, errno.EPERM)
            or (primary == sqlite3.SQLITE_CANTOPEN and not os.access(path.parent, os.W_OK))):
        why = ("a crashed write left a journal that needs write access to roll back; "
               if code == sqlite3.SQLITE_READONLY_ROLLBACK else "")
        return DatabaseError("read-only", f"the my-digits database {path} is read-only ({why}{_why_read_only(path)}); "
                             "saving needs write access to the file and its folder")
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return _damaged(path, str(exc))
    if primary == sqlite3.SQLITE_IOERR:
        return DatabaseError("unavailable", f"the my-digits database {path} cannot be used: the disk reported an "
                             f"input/output error ({exc})")
    return DatabaseError("unavailable", f"the my-digits database {path} cannot be used ({exc})")


def _why_read_only(path: Path) -> str:
    try:
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return "its file system is mounted read-only"
    except OSError:
        pass
    if path.exists() and not os.access(path, os.W_OK):
        return "no write permission on the file"
    if not os.access(path.parent, os.W_OK):
        return "no write permission on its folder"
    return "it was opened read-only"


def _check_schema(conn: sqlite3.Connection, path: Path) -> bool:
    """True if the digits table is there, False for a database without it yet (a new, empty one)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise DatabaseError("newer", f"{path} was written by a newer version of the lab (schema {version})")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(digits)")}
    if columns and columns != COLUMNS:
        raise DatabaseError("foreign", f"{path} is not a my-digits database (unexpected columns); "
                            "move it aside to start a new one")
    return bool(columns)


def _connect(path: Path, *, write: bool) -> sqlite3.Connection | None:
    """A connection to a database with the digits table, or None when reading one that has no digits yet.

    A read opens the file read-only (mode=ro) and writes nothing, not even a pragma, so it works on a full
    disk or a read-only file. A write takes the write lock when its transaction begins (BEGIN IMMEDIATE), so
    another writer makes it wait, then say "busy", instead of failing halfway.
    """
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level="IMMEDIATE")
    elif not path.exists():
        return None
    else:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        if not _check_schema(conn, path):
            if not write:
                conn.close()
                return None
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.commit()
    except BaseException:
        conn.close()
        raise
    return conn


class _Session:
    """`with _Session(path, write=...) as conn:` one connection; every failure becomes a DatabaseError in words."""

    def __init__(self, path: Path | None, *, write: bool):
        self.path, self.write, self.conn = Path(path or db_path()), write, None

    def __enter__(self) -> sqlite3.Connection | None:
        try:
            self.conn = _connect(self.path, write=self.write)
        except (sqlite3.Error, OSError) as exc:
            if self.write or (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF != sqlite3.SQLITE_READONLY:
                raise _problem(self.path, exc) from None
            # A writer crashed mid-write (SQLITE_READONLY_ROLLBACK), or a WAL file needs recovery: rolling back
            # or recovering is the one write a read may need, and it needs a read-write connection.
            try:
                self.conn = _connect(self.path, write=True)
            except (sqlite3.Error, OSError):
                raise _problem(self.path, exc) from None
        return self.conn

    def __exit__(self, kind, exc, tb):
        if self.conn is not None:
            self.conn.close()
        if isinstance(exc, sqlite3.IntegrityError):
            raise LabError(f"refused: {exc}") from None
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise _problem(self.path, exc) from None
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


def _digit(path: Path, digit_id, label, png, raw, created) -> Digit:
    """A stored row, checked: a row edited outside the lab that breaks the schema is damage, not a crash."""
    if type(label) is not int or not 0 <= label <= 9:
        raise _damaged(path, f"digit {digit_id} has the label {str(label)[:20]!r}, not 0-9")
    if not isinstance(raw, bytes) or len(raw) != 784 or not isinstance(png, bytes):
        raise _damaged(path, f"digit {digit_id} breaks the schema (its image is missing or not 28x28)")
    return Digit(digit_id, label, png, np.frombuffer(raw, np.uint8).reshape(28, 28), str(created))


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
    with _Session(path, write=True) as conn, conn:
        return int(conn.execute("INSERT INTO digits (label, png, input, created) VALUES (?, ?, ?, ?)", row).lastrowid)


def add_many(items: Iterable[tuple[bytes, np.ndarray, int]], path: Path | None = None) -> int:
    """Store many drawings all-or-nothing; returns how many."""
    with _Session(path, write=True) as conn, conn:
        cursor = conn.executemany("INSERT INTO digits (label, png, input, created) VALUES (?, ?, ?, ?)",
                                  (_row(*item) for item in items))
        return cursor.rowcount


def relabel(digit_id: int, label: int, path: Path | None = None) -> None:
    label = _check_label(label)
    with _Session(path, write=True) as conn, conn:
        if conn.execute("UPDATE digits SET label = ? WHERE id = ?", (label, int(digit_id))).rowcount != 1:
            raise LabError(f"no saved digit with id {digit_id}")


def delete(digit_id: int, path: Path | None = None) -> None:
    with _Session(path, write=True) as conn, conn:
        if conn.execute("DELETE FROM digits WHERE id = ?", (int(digit_id),)).rowcount != 1:
            raise LabError(f"no saved digit with id {digit_id}")


SELECT_ALL = "SELECT id, label, png, input, created FROM digits ORDER BY id"


def all_digits(path: Path | None = None) -> list[Digit]:
    """Every saved digit, oldest first; [] when none was ever saved. Reads only, so it works on a full disk."""
    path = Path(path or db_path())
    with _Session(path, write=False) as conn:
        rows = conn.execute(SELECT_ALL).fetchall() if conn is not None else []
    return [_digit(path, *row) for row in rows]


def arrays(path: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs uint8 (N, 28, 28), labels uint8 (N,), ids (N,)): the "my digits" test set."""
    digits = all_digits(path)
    x = np.stack([d.input for d in digits]) if digits else np.zeros((0, 28, 28), np.uint8)
    return x, np.array([d.label for d in digits], np.uint8), np.array([d.id for d in digits], np.int64)


def _damage_in(conn: sqlite3.Connection, path: Path) -> DatabaseError | None:
    """What is wrong with the database behind `conn`, or None if it reads fine: schema, pages, rows."""
    try:
        if _check_schema(conn, path):
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if verdict != "ok":
                return _damaged(path, f"integrity check: {verdict}")
            for row in conn.execute(SELECT_ALL):
                _digit(path, *row)
    except DatabaseError as exc:
        return exc
    except sqlite3.Error as exc:
        return _problem(path, exc)
    return None


def move_aside(path: Path | None = None) -> Path:
    """Rename a damaged database, with its -journal, -wal and -shm files, out of the way (kept, never deleted)
    so a new one can start; returns where the database went.

    Refused while another process writes to it (it is busy, not damaged: moving it would strand the writer's
    journal and lose its rows) and when it turns out not to be damaged. The exclusive lock taken to prove no
    writer is alive is held until the files have moved.
    """
    path = Path(path or db_path())
    if not path.exists():
        raise LabError(f"there is no my-digits database at {path} to move aside")
    conn = sqlite3.connect(path, timeout=MOVE_ASIDE_WAIT_SECONDS, isolation_level=None)
    try:
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.Error as exc:
            problem = _problem(path, exc)  # not a database at all: no SQLite writer can be working on it
        else:
            problem = _damage_in(conn, path)
        if problem is None:
            raise LabError(f"the my-digits database {path} is not damaged (it reads fine now), so it stays in place")
        if not problem.can_move_aside:
            raise problem
        target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        # Companions first: until the database itself moves, the page still sees it and can try again, and a
        # new database never starts beside a stale journal that SQLite would play back into it.
        for suffix in COMPANIONS:
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                os.replace(companion, target.with_name(target.name + suffix))
        os.replace(path, target)
    except OSError as exc:
        raise _problem(path, exc) from None
    finally:
        conn.close()
    return target


# ---------- zip export / import (bounded: see my_digits_zip) ----------


def export_zip(path: Path | None = None) -> bytes:
    """A zip of the drawings as PNGs plus labels.csv (file, label, created)."""
    return my_digits_zip.export_zip(all_digits(path))


def import_zip(blob: bytes, path: Path | None = None) -> int:
    """Add every drawing of a zip, all or nothing, within my_digits_zip's bounds; returns how many."""
    return add_many(my_digits_zip.read_zip(blob), path)


# ---------- measuring models on my digits ----------
