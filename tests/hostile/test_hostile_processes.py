"""Hostile inputs, round two, group 4: stale processes. A job is alive only while the very process it
launched runs: pid plus start time (field 22 of /proc/PID/stat), not a later process that got the pid.

Each case uses real processes: a live unrelated process whose pid a job.json names (its command line even
carries the job id, as a recycled pid's might), a kernel thread (empty command line), and a real job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnist_core import fsutil, jobs
from mnist_core.spec import DenseLayer, ModelSpec, TrainConfig

TINY = ModelSpec(kind="mlp", dense_layers=[DenseLayer(16)])
LONG = TrainConfig(epochs=50, batch_size=32, seed=0)  # far longer than the test waits


def _record(job_id: str, pid: int, **extra) -> Path:
    folder = jobs.job_dir(job_id)
    folder.mkdir(parents=True)
    info = {"id": job_id, "name": f"job-{job_id[-6:]}", "kind": "train", "pid": pid, "started": time.time(),
            "session": None, **extra}
    (folder / jobs.INFO).write_text(json.dumps(info))
    return folder


@pytest.fixture
def impostor():
    """Start a live process unrelated to any job whose command line names `job_id` (as a recycled pid's
    command line might, by chance or by design); killed afterwards by its own pid."""
    started = []

    def start(job_id: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", job_id])
        started.append(proc)
        deadline = time.monotonic() + 10
        while job_id.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _kernel_thread() -> int | None:
    """A live pid with an empty command line and not a zombie: a kernel thread, if this machine shows one."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if not (entry / "cmdline").read_bytes() and "Z" not in (entry / "stat").read_text().rsplit(")", 1)[1][:3]:
                    return int(entry.name)
            except OSError:
                continue
    return None


def test_a_recycled_pid_is_a_failed_job_stop_works_and_new_jobs_start(impostor):
    ids = ["20260101-000000-recyc1", "20260101-000000-recyc2"]
    for job_id in ids:  # two of them: MAX_RUNNING is 2, so counted as running they would refuse every start
        proc = impostor(job_id)
        ticks = fsutil.process_start_ticks(proc.pid)
        assert ticks is not None
        _record(job_id, proc.pid, started_ticks=ticks - 7)  # the job's process started earlier: another one
        assert fsutil.pid_alive(proc.pid, job_id)  # pid and marker alone would call it alive
    for job_id in ids:
        st = jobs.status(job_id)
        assert (st.state, st.message) == ("failed", "the process ended without finishing (killed or crashed)")
        jobs.stop(job_id)  # Stop on it is harmless
        assert jobs.stop_requested(job_id)
    assert jobs.running_jobs() == [] and jobs.latest(None).state == "failed"

    new = jobs.start_train(TINY, LONG, "after-recycled")  # refused ("already running") while they counted
    pid = json.loads((jobs.job_dir(new.id) / jobs.INFO).read_text())["pid"]
    try:
        info = json.loads((jobs.job_dir(new.id) / jobs.INFO).read_text())
        assert info["started_ticks"] == fsutil.process_start_ticks(pid)  # the real launch records its identity
        assert jobs.status(new.id).running
    finally:
        os.killpg(pid, signal.SIGKILL)  # the job runs in its own session: its group is just itself
    deadline = time.monotonic() + 10
    while jobs.status(new.id).running:
        assert time.monotonic() < deadline, "a killed job still counts as running"
        time.sleep(0.05)
    assert jobs.status(new.id).state == "failed"


def test_an_empty_command_line_does_not_make_an_old_record_alive():
    pid = _kernel_thread()
    if pid is None:
        pytest.skip("no process with an empty command line is visible here")
    job_id = "20260101-000000-kthrd1"
    _record(job_id, pid)  # a record from before start times were kept: pid and marker only
    assert jobs.status(job_id).state == "failed"
    assert jobs.running_jobs() == []


def test_the_right_start_time_vouches_for_a_process_whatever_its_command_line(impostor):
    proc = impostor("20260101-000000-mine01")
    ticks = fsutil.process_start_ticks(proc.pid)
    _record("20260101-000000-mine01", proc.pid, started_ticks=ticks)
    assert jobs.status("20260101-000000-mine01").running
    pid = _kernel_thread()
    if pid is not None:  # identity proven by the start time: an empty command line (mid-exec) is still ours
        assert fsutil.pid_alive(pid, "any-marker", fsutil.process_start_ticks(pid))
        assert not fsutil.pid_alive(pid, "any-marker")
