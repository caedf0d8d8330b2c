"""The lab's file helpers, one copy of each: atomic JSON write, exclusive file lock, pid identity check,
bounded reads."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_core.errors import LabError

OS_ERROR_WORDS = {
    errno.ENOSPC: "the disk is full; free some space and try again",
    errno.EDQUOT: "the disk quota is used up; free some space and try again",
    errno.EROFS: "the file system is read-only; point the lab at a writable folder",
    errno.EACCES: "permission denied; check the owner and mode of the file and its folder",
    errno.EPERM: "operation not permitted; check the owner and mode of the file and its folder",
}


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


def _proc_stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (the state) on; the command name before it may hold spaces and ')'."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_start_ticks(pid) -> int | None:
    """When `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat), or None if it is gone.
    With the pid it names one process for good: a recycled pid starts at another time."""
    try:
        return int(_proc_stat_fields(int(pid))[19])
    except (OSError, ValueError, TypeError, IndexError):
        return None


def pid_alive(pid, marker: str | None = None, started_ticks: int | None = None) -> bool:
    """True if `pid` runs and is not a zombie.

    With `started_ticks` (from process_start_ticks at launch), also that it is the same process, not a
    later one that got the pid. With `marker`, also that its command line names it. An empty command line
    (a kernel thread, or our child still inside exec()) counts only when the start time proves identity."""
    try:
        pid = int(pid)
        fields = _proc_stat_fields(pid)
        if fields[0] == "Z":
            return False  # finished; its parent just has not reaped it yet
        if started_ticks is not None and int(fields[19]) != int(started_ticks):
            return False  # the pid now belongs to another process
        if marker is None:
            return True
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if not cmdline:
            return started_ticks is not None
        return marker in cmdline.decode(errors="replace")
    except (OSError, ValueError, TypeError, IndexError):
        return False


def describe_os_error(exc: BaseException) -> str | None:
    """Words for the environment failures a user can fix: a full disk, a read-only file system, a missing
    permission, each naming the file. None for anything else (also searched in the exception's causes,
    since libraries wrap them)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in OS_ERROR_WORDS:
            where = exc.filename if exc.filename is not None else "a file"
            return f"{where}: {OS_ERROR_WORDS[exc.errno]}"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def failure_words(exc: BaseException) -> str:
    """Any failure as one line naming the file where it can: a LabError's words, an OS error's file and
    reason (a full disk or a permission in words), otherwise the kind of failure and its first line."""
    if isinstance(exc, LabError):
        return str(exc).strip().split("\n", 1)[0]
    if isinstance(exc, OSError) and exc.errno in OS_ERROR_WORDS:
        return f"{Path(exc.filename).name if exc.filename else 'a file'}: {OS_ERROR_WORDS[exc.errno]}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{Path(exc.filename).name}: {exc.strerror}" if exc.filename else exc.strerror
    detail = str(exc).strip().split("\n", 1)[0][:200]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


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
