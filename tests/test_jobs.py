"""mnist_core.jobs: real training subprocesses on the full (checksum-verified) data, kept tiny and short.

The job process verifies MNIST like any run, so it reads the real cache; a 16-unit MLP with big batches
keeps each job to a few seconds beyond TensorFlow's start-up.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mnist_core import fsutil, job_events, jobs, registry
from mnist_core.errors import LabError
from mnist_core.spec import DenseLayer, ModelSpec, TrainConfig

TINY = ModelSpec(kind="mlp", dense_layers=[DenseLayer(16)])
QUICK = TrainConfig(epochs=1, batch_size=1000, learning_rate=3e-3, seed=0)
LONG = TrainConfig(epochs=50, batch_size=32, seed=0)  # far longer than any test waits


def _wait_for(job_id: str, kind: str, timeout: float = 120) -> jobs.JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = jobs.status(job_id)
        if st.last(kind) or not st.running:
            return st
        time.sleep(0.2)
    raise AssertionError(f"no {kind!r} event within {timeout} s")


@pytest.fixture
def cleanup():
    """Kill any job a failing test left running (by its own pid only)."""
    started = []
    yield started
    for job_id in started:
        st = jobs.status(job_id)
        if st.running:
            os.killpg(_pid(job_id), signal.SIGKILL)


def _pid(job_id: str) -> int:
    return json.loads((jobs.job_dir(job_id) / jobs.INFO).read_text())["pid"]


def test_job_runs_to_done_and_saves_the_model(isolated_dirs, cleanup):
    st = jobs.start_train(TINY, QUICK, "from-job")
    cleanup.append(st.id)
    assert st.running and st.name == "from-job" and jobs.current().id == st.id
    final = jobs.wait(st.id, timeout=180)
    assert final.state == "done", (final.message, (jobs.job_dir(st.id) / "log.txt").read_text()[-2000:])
    kinds = [e["event"] for e in final.events]
    assert kinds[0] == "start" and kinds[-2:] == ["evaluating", "done"] and "epoch" in kinds
    assert final.events[0]["steps_per_epoch"] == 54 and final.events[0]["train_size"] == 54000
    assert final.progress()["fraction"] == 1.0 and len(final.history) == 1
    entry = registry.inspect("from-job")
    assert entry.ok and entry.metadata["test"]["n"] == 10000
    assert entry.metadata["test"]["accuracy"] == pytest.approx(final.last("done")["test_accuracy"])
    assert entry.metadata["test"]["accuracy"] > 0.6  # 54 steps of learning on real digits
    assert jobs.current() is None and jobs.latest().id == st.id
    with pytest.raises(LabError, match=r"^a model named 'from-job' already exists; pick another name$"):
        jobs.start_train(TINY, QUICK, "from-job")


def test_second_start_is_refused_and_stop_saves_nothing(isolated_dirs, cleanup):
    st = jobs.start_train(TINY, LONG, "long")
    cleanup.append(st.id)
    with pytest.raises(LabError, match=r"^a job is already running \(training 'long'\); stop it or wait for it$"):
        jobs.start_train(TINY, QUICK, "another")
    assert [j.name for j in jobs.all_jobs()] == ["long"]  # the refused start left no job behind
    running = _wait_for(st.id, "batch")
    assert running.running and running.progress()["fraction"] < 0.5
    jobs.stop(st.id)
    final = jobs.wait(st.id, timeout=60)
    assert final.state == "stopped" and final.message == "stopped by request; nothing was saved"
    assert not any(e["event"] == "epoch" and e["epoch"] > 1 for e in final.events)
    assert not (isolated_dirs / "long").exists() and registry.list_models() == []
    assert [p.name for p in isolated_dirs.iterdir() if not p.name.startswith(".")] == []
    with pytest.raises(LabError, match=r"^no job 'nope'$"):
        jobs.stop("nope")


def test_killed_job_is_failed_not_running_forever(isolated_dirs, cleanup):
    st = jobs.start_train(TINY, LONG, "doomed")
    cleanup.append(st.id)
    _wait_for(st.id, "start")
    os.killpg(_pid(st.id), signal.SIGKILL)  # the job runs in its own session: its group is just itself
    deadline = time.monotonic() + 10
    while jobs.status(st.id).running and time.monotonic() < deadline:
        time.sleep(0.1)
    final = jobs.status(st.id)
    assert final.state == "failed"
    assert final.message == "the process ended without finishing (killed or crashed)"
    assert jobs.current() is None and not (isolated_dirs / "doomed").exists()
    # a new job may start once the dead one is recognised as dead
    again = jobs.start_train(TINY, LONG, "next")
    cleanup.append(again.id)
    assert again.running


def test_bad_requests_are_refused_before_anything_starts(isolated_dirs):
    (isolated_dirs / "taken").mkdir()
    with pytest.raises(LabError, match=r"^bad model name '\.\./x'"):
        jobs.start_train(TINY, QUICK, "../x")
    with pytest.raises(LabError, match=r"^a model named 'taken' already exists"):
        jobs.start_train(TINY, QUICK, "taken")
    with pytest.raises(LabError, match=r"^epochs must be a whole number in \[1, 1000\], got 0$"):
        jobs.start_train(TINY, TrainConfig(epochs=0), "fine")
    assert jobs.all_jobs() == [] and jobs.latest() is None
    with pytest.raises(LabError, match=r"^no job 'missing'$"):
        jobs.status("missing")


def test_a_just_started_job_is_never_reported_failed(isolated_dirs, cleanup):
    # Regression: polled while the child was still inside exec(), its /proc cmdline was empty and the
    # job read 'failed' for a moment (about 1 start in 5 here), which ends a UI's polling for good.
    for i in range(8):
        st = jobs.start_train(TINY, LONG, f"quick-{i}")
        cleanup.append(st.id)
        assert st.state == "running", (i, st.message)
        os.killpg(_pid(st.id), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while jobs.status(st.id).running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert jobs.status(st.id).state == "failed"


def test_simultaneous_starts_launch_exactly_one_job(isolated_dirs, cleanup):
    # Regression: two sessions pressing Train together both saw no running job and both launched.
    import threading

    barrier, results = threading.Barrier(3), []

    def press_train(i: int) -> None:
        barrier.wait()
        try:
            results.append(jobs.start_train(TINY, LONG, f"race-{i}"))
        except LabError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=press_train, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [r for r in results if isinstance(r, jobs.JobStatus)]
    cleanup.extend(r.id for r in started)
    assert len(started) == 1 and started[0].running
    refusals = [r for r in results if isinstance(r, str)]
    assert refusals == [f"a job is already running (training {started[0].name!r}); stop it or wait for it"] * 2
    assert [j.id for j in jobs.all_jobs()] == [started[0].id]


def test_a_job_records_its_kind_owner_subject_and_outcome(isolated_dirs, cleanup):
    st = jobs.start_train(TINY, QUICK, "owned", session="tab-a", estimate={"epoch_seconds": 2.0})
    cleanup.append(st.id)
    assert (st.kind, st.session, st.estimate["epoch_seconds"]) == ("train", "tab-a", 2.0)
    assert 0.5 < st.estimate["eval_seconds"] < 2.0  # from the model's speed: 19,000 images at a third of a step
    assert st.subject["spec"]["dense_layers"][0]["units"] == 16 and st.subject["config"]["epochs"] == 1
    assert st.outcome == {}  # nothing produced yet
    assert jobs.latest(session="tab-a").id == st.id
    assert jobs.latest(session="tab-b") is None and jobs.latest() is None  # not another session's "last run"
    assert [j.id for j in jobs.others_running("tab-b")] == [st.id] and jobs.others_running("tab-a") == []
    final = jobs.wait(st.id, timeout=180)
    assert final.state == "done" and final.outcome == {"model": "owned", "stopped_early": False}
    assert jobs.others_running("tab-b") == []


def test_sessions_run_side_by_side_up_to_the_machine_limit(isolated_dirs, cleanup):
    a = jobs.start_train(TINY, LONG, "a", session="tab-a")
    cleanup.append(a.id)
    with pytest.raises(LabError, match=r"^a job is already running \(training 'a'\); stop it or wait for it$"):
        jobs.start_train(TINY, LONG, "a2", session="tab-a")
    b = jobs.start_train(TINY, LONG, "b", session="tab-b")
    cleanup.append(b.id)
    with pytest.raises(LabError, match=rf"^2 jobs are already running on this machine \(at most {jobs.MAX_RUNNING}"):
        jobs.start_train(TINY, LONG, "c", session="tab-c")
    for job in (a, b):
        jobs.stop(job.id)
        assert (jobs.job_dir(job.id) / jobs.STOP).read_text() == "discard"
    assert {jobs.wait(j.id, timeout=120).state for j in (a, b)} == {"stopped"}


def test_stop_and_keep_is_written_for_the_job_to_read(isolated_dirs):
    folder = jobs.job_dir("20260101-000000-abcdef")
    folder.mkdir(parents=True)
    jobs.stop(folder.name, keep=True)
    assert (folder / jobs.STOP).read_text() == "keep" and jobs.stop_requested(folder.name)


def test_a_huge_event_file_is_read_in_bounded_memory(isolated_dirs):
    folder = jobs.job_dir("20260101-000000-big000")
    folder.mkdir(parents=True)
    (folder / jobs.INFO).write_text('{"pid": 1, "name": "big", "started": 1.0, "kind": "train"}')
    line = '{"event": "batch", "epoch": 1, "batch": 1, "steps": 9, "loss": 1.0, "accuracy": 0.5, "elapsed": 1.0}\n'
    with open(folder / jobs.EVENTS, "w") as fh:
        fh.write(line * (job_events.MAX_EVENT_BYTES // len(line) + 1000))
        fh.write('{"event": "failed", "message": "boom"}\n')
    listed = jobs.all_jobs()
    assert [(j.name, j.state, j.message) for j in listed] == [("big", "failed", "boom")]
    assert len(listed[0].events) <= job_events.LIST_EVENT_BYTES // len(line) + 1
    full = jobs.status(folder.name)
    assert len(full.events) <= job_events.MAX_EVENT_BYTES // len(line) + 1 and full.events[-1]["event"] == "failed"


def test_a_job_record_with_wrong_types_is_damaged_not_a_crash(isolated_dirs):
    folder = jobs.job_dir("20260101-000000-bad000")
    folder.mkdir(parents=True)
    (folder / jobs.INFO).write_text('{"pid": 1, "name": "x", "started": "yesterday"}')
    with pytest.raises(LabError, match=r"is damaged \(job.json has a bad name or start time\)$"):
        jobs.status(folder.name)
    assert jobs.all_jobs() == []


def test_events_and_estimates_of_the_wrong_type_are_skipped_not_a_crash(isolated_dirs, request):
    """A hand-edited or damaged job folder: the panel's progress and curves still compute from what is sound."""
    import subprocess
    import sys

    folder = jobs.job_dir("20260101-000000-typ000")
    folder.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", folder.name])  # the job's process
    request.addfinalizer(lambda: (proc.kill(), proc.wait()))
    (folder / jobs.INFO).write_text(json.dumps({
        "pid": proc.pid, "name": "t", "started": time.time() - 5, "kind": "train",
        "started_ticks": fsutil.process_start_ticks(proc.pid),
        "subject": {"config": {"epochs": "three"}}, "estimate": {"epoch_seconds": "abc", "startup_seconds": 2.0}}))
    good = {"event": "batch", "epoch": 1, "batch": 1, "steps": 10, "loss": 1.0, "accuracy": 0.5, "elapsed": 1.0}
    lines = [{"event": "start", "epochs": "x", "steps_per_epoch": 10}, good, {**good, "batch": "2"},
             {**good, "loss": None}, {"event": "epoch", "epoch": [1]}, {"event": "batch"}]
    (folder / jobs.EVENTS).write_text("".join(json.dumps(e) + "\n" for e in lines))
    st = jobs.status(folder.name, 10**6)
    assert st.running and st.events == [good]
    assert st.estimate == {"startup_seconds": 2.0}
    p = st.progress()
    assert (p["epochs"], p["batch"], p["steps"]) == (1, 1, 1)  # the damaged start event is skipped whole
    assert p["eta"] is None or p["eta"] >= 0
    assert [pt["loss"] for pt in st.curve_points()] == [1.0]


def test_latest_is_none_once_the_job_folder_is_removed(isolated_dirs):
    import shutil

    folder = jobs.job_dir("20260101-000000-gone00")
    folder.mkdir(parents=True)
    (folder / jobs.INFO).write_text(json.dumps({"pid": 1, "name": "g", "started": 1.0, "kind": "train"}))
    assert jobs.latest(None).id == folder.name
    shutil.rmtree(folder)
    assert jobs.latest(None) is None
    with pytest.raises(LabError, match="no job"):
        jobs.status(folder.name)


def test_a_batch_over_the_memory_limit_is_refused_before_a_job_starts(isolated_dirs):
    from mnist_core import cost
    from mnist_core.spec import ConvBlock

    wide = ModelSpec(kind="cnn", conv_blocks=[ConvBlock(256, 3, padding="same", pooling="none"),
                                              ConvBlock(256, 3, padding="same", pooling="max")],
                     dense_layers=[DenseLayer(16)])  # 1.4 M parameters, but 7 MB of activations per image
    batch = cost.MAX_ACTIVATION_BYTES_PER_BATCH // (cost.estimate(wide).activation_bytes(1)) + 1
    with pytest.raises(LabError, match=r"GiB of activations, over the lab's limit"):
        jobs.start_train(wide, TrainConfig(epochs=1, batch_size=int(batch)), "too-wide")
    assert jobs.all_jobs() == []
