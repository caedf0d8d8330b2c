"""mnist_core.fsutil, with real processes: atomic JSON writes, the exclusive lock, the pid identity check and
bounded reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_core import fsutil
from mnist_core.errors import LabError

ROOT = Path(__file__).resolve().parent.parent


def python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# ---------- write_json_atomic ----------


WRITER = """
import sys
from pathlib import Path
from mnist_core.fsutil import write_json_atomic
path, rounds = Path(sys.argv[1]), int(sys.argv[2])
for i in range(rounds):
    # Two versions of very different sizes: a torn write would show as bad JSON or a mix of both.
    write_json_atomic(path, {"version": i % 2, "payload": ["x" * 100] * (5000 if i % 2 else 5)})
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    """A folder of its own (tmp_path also holds conftest's registry and jobs folders)."""
    (tmp_path / "here").mkdir()
    return tmp_path / "here"


def test_a_reader_sees_the_old_file_or_the_new_one_never_half(folder):
    path = folder / "state.json"
    fsutil.write_json_atomic(path, {"version": 0, "payload": ["x" * 100] * 5})
    writer = python(WRITER, str(path), "400")
    seen, reads = set(), 0
    while writer.poll() is None or reads == 0:
        text = path.read_text()  # os.replace swaps the whole file in: never empty, never cut short
        obj = json.loads(text)
        assert len(obj["payload"]) == (5000 if obj["version"] else 5)
        seen.add(obj["version"])
        reads += 1
    assert writer.returncode == 0, writer.stderr.read()
    assert seen == {0, 1} and reads > 10  # the reader really overlapped the writer
    assert sorted(p.name for p in folder.iterdir()) == ["state.json"]  # no temp file left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(folder):
    path = folder / "state.json"
    fsutil.write_json_atomic(path, {"kept": True})
    with pytest.raises(TypeError):
        fsutil.write_json_atomic(path, {"not json": object()})
    assert json.loads(path.read_text()) == {"kept": True}
    assert sorted(p.name for p in folder.iterdir()) == ["state.json"]


# ---------- exclusive_lock ----------


LOCKER = """
import sys, time
from pathlib import Path
from mnist_core.fsutil import exclusive_lock
lock, marker, hold = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
with exclusive_lock(lock):
    marker.write_text(str(time.monotonic()))
    time.sleep(hold)
"""


def test_the_lock_keeps_a_second_process_out_until_it_is_released(tmp_path):
    lock, marker = tmp_path / "sub" / ".lock", tmp_path / "got-it"
    with fsutil.exclusive_lock(lock):  # creates the folder and the file
        other = python(LOCKER, str(lock), str(marker), "0")
        time.sleep(1.5)  # long enough for the child to start and block on the lock
        assert other.poll() is None and not marker.exists(), "the second process got in while the lock was held"
        released = time.monotonic()
    assert other.wait(timeout=30) == 0, other.stderr.read()
    assert float(marker.read_text()) >= released  # it got the lock only after we let go


def test_a_killed_holder_does_not_leave_the_lock_behind(tmp_path):
    lock, marker = tmp_path / ".lock", tmp_path / "holding"
    holder = python(LOCKER, str(lock), str(marker), "600")
    wait_for(marker.exists, what="the holder to take the lock")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    got = python(LOCKER, str(lock), str(tmp_path / "after"), "0")
    assert got.wait(timeout=30) == 0, got.stderr.read()  # the kernel dropped the dead holder's lock


# ---------- pid_alive ----------


def test_pid_alive_for_a_running_process_and_its_marker():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "mnist-lab-job-123"])
    try:
        wait_for(lambda: b"mnist-lab-job-123" in Path(f"/proc/{proc.pid}/cmdline").read_bytes(), what="exec")
        assert fsutil.pid_alive(proc.pid)
        assert fsutil.pid_alive(str(proc.pid), marker="mnist-lab-job-123")
        # The same pid held by a process that does not name the job: a recycled pid, not our job.
        assert not fsutil.pid_alive(proc.pid, marker="mnist-lab-job-456")
    finally:
        proc.kill()
        proc.wait()


def test_pid_alive_is_false_for_a_zombie_and_for_a_reaped_process():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_for(lambda: Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z",
             what="the child to exit")  # exited, not yet reaped: /proc still lists it
    assert not fsutil.pid_alive(proc.pid)
    proc.wait()
    assert not fsutil.pid_alive(proc.pid)


@pytest.mark.parametrize("pid", [None, "abc", -1, 0, 2**31])
def test_pid_alive_is_false_for_nonsense(pid):
    assert not fsutil.pid_alive(pid)


def test_start_ticks_tell_a_process_from_a_later_one_with_its_pid():
    """The pid of a process started from a name with ')' and spaces (the stat line's tricky part) keeps its
    start time; any other start time is another process."""
    proc = subprocess.Popen(["/bin/sh", "-c", "exec -a 'x) y (z' sleep 60"])
    try:
        wait_for(lambda: fsutil.process_start_ticks(proc.pid) is not None, what="start")
        ticks = fsutil.process_start_ticks(proc.pid)
        mine = fsutil.process_start_ticks(os.getpid())
        assert mine <= ticks  # ticks since boot: the child cannot have started before its parent
        assert ticks == int(Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[-1].split()[19])
        assert fsutil.pid_alive(proc.pid, started_ticks=ticks)
        assert not fsutil.pid_alive(proc.pid, started_ticks=ticks + 1)
        assert not fsutil.pid_alive(proc.pid, started_ticks=ticks - 1)
    finally:
        proc.kill()
        proc.wait()
    assert fsutil.process_start_ticks(proc.pid) is None
    assert fsutil.process_start_ticks("nonsense") is None


# ---------- bounded reads ----------


def test_a_too_large_file_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(64 * 2**30)  # 64 GB, sparse: reading it first would exhaust memory long before a reply
    t0 = time.perf_counter()
    with pytest.raises(LabError, match=r"^huge.json: the model file is 68,719,476,736 bytes, over the limit of 1,000$"):
        fsutil.read_bytes_bounded(huge, 1000, "model file")
    assert time.perf_counter() - t0 < 1


def test_a_file_within_the_bound_is_read_whole(tmp_path):
    path = tmp_path / "ok.bin"
    path.write_bytes(bytes(range(256)) * 4)
    assert fsutil.read_bytes_bounded(path, 1024) == bytes(range(256)) * 4
    with pytest.raises(LabError, match="over the limit of 1,023"):
        fsutil.read_bytes_bounded(path, 1023)
    with pytest.raises(LabError, match=r"^missing.bin: cannot read \(No such file or directory\)$"):
        fsutil.read_bytes_bounded(tmp_path / "missing.bin", 1024)


def test_tail_lines_reads_only_the_window_and_drops_the_cut_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(f"line {i:03d}\n" for i in range(100)))  # 9 bytes a line
    assert fsutil.read_tail_lines(path, 10**6)[:2] == ["line 000", "line 001"]
    tail = fsutil.read_tail_lines(path, 40)  # the last 40 bytes: 4 whole lines and part of a fifth
    assert tail == ["line 096", "line 097", "line 098", "line 099", ""]
    assert os.path.getsize(path) == 900
