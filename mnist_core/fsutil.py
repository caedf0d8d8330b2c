"""The lab's file helpers, one copy of each: atomic JSON write, exclusive file lock, pid identity check,
bounded reads."""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_core.errors import LabError


def write_json_atomic(path: Path, obj, *, indent: int | None = 1) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of either (temp + os.replace)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(obj, indent=indent))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing). The kernel drops it if the holder dies, so a
    killed process never leaves the lock behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def pid_alive(pid, marker: str | None = None) -> bool:
    """True if `pid` runs and is not a zombie; with `marker`, also that its command line names it, so a
    recycled pid of an unrelated process does not count."""
    try:
        pid = int(pid)
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False  # finished; its parent just has not reaped it yet
        if marker is None:
            return True
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        # Right after Popen returns, the child can still be inside exec() with an empty cmdline
        # (seen here in about 1 start in 5); that is our process starting, not a dead one.
        return not cmdline or marker in cmdline.decode(errors="replace")
    except (OSError, ValueError, TypeError, IndexError):
        return False


def read_bytes_bounded(path: Path, max_bytes: int, what: str = "file") -> bytes:
    """The file's bytes, refused with a one-line LabError if it is larger than `max_bytes` (checked before reading)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise LabError(f"{path.name}: the {what} is {size:,} bytes, over the limit of {max_bytes:,}")
            return fh.read(max_bytes + 1)[: max_bytes + 1]
    except OSError as exc:
        raise LabError(f"{path.name}: cannot read ({exc.strerror or type(exc).__name__})") from None


def read_tail_lines(path: Path, max_bytes: int) -> list[str]:
    """The complete lines in the last `max_bytes` of a file (an append-only log read in bounded memory)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start = max(0, size - max_bytes)
        fh.seek(start)
        chunk = fh.read(max_bytes)
    lines = chunk.decode(errors="replace").split("\n")
    if start > 0:
        lines = lines[1:]  # the first line was cut by the window
    return lines
