"""Issue 5, cases 10-12: interrupted training loses nothing and leaves nothing behind, concurrent sessions
share one model safely, and bad numbers are refused with the field name before any training starts."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
from hostile_util import assert_one_line_error, run_cli, temp_leftovers

from mnist_core import jobs, registry
from mnist_core import spec as specs
from mnist_core.errors import LabError

TINY = specs.ModelSpec(kind="mlp", dense_layers=[specs.DenseLayer(16)])


def _wait_for(job_id: str, predicate, timeout: float = 240) -> jobs.JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        st = jobs.status(job_id)
        if predicate(st):
            return st
        assert st.running, f"job ended early: {st.state} {st.message}"
        assert time.monotonic() < deadline, "job never got there"
        time.sleep(0.1)


def _mid_epoch(st: jobs.JobStatus) -> bool:
    return bool(st.batches) and not st.history  # training, first epoch not yet done


def _nothing_saved(models) -> None:
    assert registry.list_models() == []
    assert temp_leftovers(models) == []


# ---------- case 10: interrupted training ----------


def test_case10_stopped_job_is_marked_stopped_and_saves_nothing(isolated_dirs):
    job = jobs.start_train(TINY, specs.TrainConfig(epochs=5, batch_size=256), "stopped-model")
    _wait_for(job.id, _mid_epoch)
    jobs.stop(job.id)
    st = jobs.wait(job.id, timeout=120)
    assert st.state == "stopped" and "nothing was saved" in st.message
    _nothing_saved(isolated_dirs)


def test_case10_killed_job_is_failed_and_the_next_job_starts_normally(isolated_dirs, app_page):
    tab = "0123456789ab"  # the browser tab that started the jobs (its id rides in the URL across reloads)
    job = jobs.start_train(TINY, specs.TrainConfig(epochs=5, batch_size=256), "killed-model", session=tab)
    _wait_for(job.id, _mid_epoch)
    os.kill(json.loads((isolated_dirs.parent / "jobs" / job.id / "job.json").read_text())["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while jobs.status(job.id).running:  # the kernel needs a moment; the page polls the same way
        assert time.monotonic() < deadline
        time.sleep(0.1)
    st = jobs.status(job.id)
    assert st.state == "failed" and "killed or crashed" in st.message
    _nothing_saved(isolated_dirs)
    at = app_page("views/train.py", query={"tab": tab})  # a fresh session, as after a reload: shows as failed
    assert not at.exception
    assert any("killed-model failed" in e.value and "killed or crashed" in e.value for e in at.error), at.error
    # The next job starts normally; the page reruns (reads every job) many times mid-epoch; it finishes.
    nxt = jobs.start_train(TINY, specs.TrainConfig(epochs=2, batch_size=256), "next-model", session=tab)
    assert jobs.current().id == nxt.id
    _wait_for(nxt.id, _mid_epoch)
    for _ in range(20):  # what every rerun of the Train page does
        assert jobs.latest(tab).id == nxt.id
        assert 0 <= jobs.status(nxt.id).progress()["fraction"] <= 1
    at = app_page("views/train.py", query={"tab": tab})
    at.run()  # the Train page itself, rerun mid-epoch
    assert not at.exception and not at.error
    assert jobs.status(nxt.id).state in ("running", "done")  # on a fast machine it may have finished already
    st = jobs.wait(nxt.id, timeout=240)
    assert st.state == "done", (st.state, st.message)
    assert [(e.name, e.status) for e in registry.list_models()] == [("next-model", "ok")]
    assert temp_leftovers(isolated_dirs) == []
    assert {j.id: j.state for j in jobs.all_jobs()} == {job.id: "failed", nxt.id: "done"}


def test_case10_job_that_died_while_the_server_was_down_shows_as_failed(isolated_dirs):
    jobs_root = isolated_dirs.parent / "jobs"
    gone = subprocess.Popen(["true"])
    gone.wait()

    def fake_job(job_id: str, info) -> None:
        (jobs_root / job_id).mkdir()
        (jobs_root / job_id / "job.json").write_text(json.dumps(info))
        (jobs_root / job_id / "events.jsonl").write_text(
            json.dumps({"event": "start", "epochs": 3, "steps_per_epoch": 10}) + "\n"
            + json.dumps({"event": "batch", "epoch": 1, "batch": 4, "steps": 10, "loss": 1.0, "accuracy": 0.5,
                          "elapsed": 1.0}) + "\n" + '{"event": "ba')  # cut mid-line by the crash

    fake_job("dead", {"id": "dead", "name": "m1", "pid": gone.pid, "started": 1.0})
    fake_job("recycled", {"id": "recycled", "name": "m2", "pid": os.getpid(), "started": 2.0})  # pid now ours
    fake_job("damaged", ["not", "a", "job"])
    (jobs_root / "stray.txt").write_text("not a job folder")
    states = {j.id: (j.state, j.message) for j in jobs.all_jobs()}
    assert set(states) == {"dead", "recycled"}
    assert all(state == "failed" and "killed or crashed" in msg for state, msg in states.values())
    assert jobs.current() is None
    with pytest.raises(LabError, match="damaged"):
        jobs.status("damaged")


# ---------- case 11: concurrent sessions ----------


def test_case11_eight_threads_share_one_model(default_predictor, small_mnist):
    images = small_mnist.x_test[:96].astype(np.float32) / 255.0
    sequential = np.stack([default_predictor.probabilities(x)[0] for x in images])
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def session(k: int) -> None:
        try:
            barrier.wait()
            for i in range(k, len(images), 8):
                results[i] = default_predictor.probabilities(images[i])[0]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    threaded = np.stack([results[i] for i in range(len(images))])
    assert np.array_equal(threaded.argmax(1), sequential.argmax(1))
    assert np.allclose(threaded, sequential, atol=1e-6)
    assert (sequential.argmax(1) == small_mnist.y_test[:96]).mean() > 0.95  # real digits, real answers


def test_case11_model_resaved_under_the_same_name_is_served_fresh(registry_with, small_mnist):
    from dashboard import cache

    registry_with("m", default=True)
    cache.clear()
    first = cache.predictor("m")
    x = small_mnist.x_test[:32].astype(np.float32) / 255.0
    assert cache.predictor("m") is first  # cached while the file is unchanged
    registry.save("m", registry.load("default"), registry.read_metadata("default"), overwrite=True)
    fresh = cache.predictor("m")
    assert fresh is not first
    assert np.allclose(fresh.probabilities(x), np.asarray(registry.load("default")(x[..., None])), atol=1e-5)
    assert not np.allclose(fresh.probabilities(x), first.probabilities(x), atol=1e-3)
    cache.clear()


# ---------- case 12: bad numbers in a spec or config ----------

BAD_CONFIGS = {
    "learning-rate-0": ("learning_rate", 0.0),
    "learning-rate-nan": ("learning_rate", math.nan),
    "learning-rate-inf": ("learning_rate", math.inf),
    "batch-size-0": ("batch_size", 0),
    "batch-size-larger-than-data": ("batch_size", 60000),
    "epochs-1e6": ("epochs", 10**6),
    "epochs-400-digits": ("epochs", 10**400),
    "epochs-text": ("epochs", "5"),
    "validation-split-1": ("validation_split", 1.0),
    "seed-negative": ("seed", -1),
}
BAD_SPECS = {
    "units-0": ("dense_layers", [{"units": 0}], "units"),
    "dropout-nan": ("dense_layers", [{"units": 8, "dropout": math.nan}], "dropout"),
    "dropout-1": ("dense_layers", [{"units": 8, "dropout": 1.0}], "dropout"),
    "units-huge": ("dense_layers", [{"units": 10**9}], "units"),
    "layers-not-a-list": ("dense_layers", "dense", "dense_layers"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=BAD_CONFIGS)
def test_case12_bad_config_number_is_refused_with_its_field(capsys, isolated_dirs, tmp_path, case):
    field, value = BAD_CONFIGS[case]
    spec_file, config_file = tmp_path / "spec.json", tmp_path / "config.json"
    spec_file.write_text(json.dumps({"kind": "mlp", "dense_layers": [{"units": 8}]}))
    config_file.write_text(json.dumps({field: value}) if value != 10**400 else f'{{"{field}": {"9" * 400}}}')
    # from a hand-written JSON file
    assert_one_line_error(*run_cli(capsys, "train", "--spec", spec_file, "--config", config_file, "--name", "x")[::2],
                          contains=field)
    # from the command line
    if not isinstance(value, str):
        flag = "--" + field.replace("_", "-")
        assert_one_line_error(*run_cli(capsys, "train", "--preset", "mlp-2x28", flag, str(value), "--name", "x")[::2],
                              contains=field)
    # from session state: the Train page hands a TrainConfig straight to jobs.start
    with pytest.raises(LabError, match=field):
        jobs.start_train(TINY, specs.TrainConfig(**{field: value}), "x")
    assert list((isolated_dirs.parent / "jobs").iterdir()) == []  # no job was started
    assert registry.list_models() == []


@pytest.mark.parametrize("case", BAD_SPECS, ids=BAD_SPECS)
def test_case12_bad_spec_number_is_refused_with_its_field(capsys, isolated_dirs, tmp_path, case):
    key, value, field = BAD_SPECS[case]
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"kind": "mlp", key: value}))
    assert_one_line_error(*run_cli(capsys, "train", "--spec", spec_file, "--name", "x")[::2], contains=field)
    with pytest.raises(LabError, match=field):
        specs.load_spec(spec_file)
    bad = specs.ModelSpec(kind="mlp", dense_layers=[specs.DenseLayer(8)])
    setattr(bad, key, [specs.DenseLayer(**v) for v in value] if isinstance(value, list) else value)
    with pytest.raises(LabError, match=field):
        jobs.start_train(bad, specs.TrainConfig(), "x")
    assert list((isolated_dirs.parent / "jobs").iterdir()) == []


def test_case12_batch_larger_than_the_data_set_is_refused_before_fitting(small_mnist, monkeypatch):
    """The fixture has 2,000 training images: a batch of 1,900 is more than its 90% training split."""
    from mnist_core import train

    monkeypatch.setattr(train, "build", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(LabError, match="batch_size"):
        train.fit(TINY, specs.TrainConfig(batch_size=1900, epochs=1), mnist=small_mnist)


def test_case12_malformed_json_files_are_one_line_errors(capsys, tmp_path):
    files = {"not-json.json": "{epochs: 3", "deep.json": "[" * 100000, "array.json": "[1, 2]",
             "bigint.json": '{"epochs": ' + "9" * 5000 + "}", "latin1.json": b'{"optimizer": "\xe9"}',
             "unknown.json": '{"epochs": 1, "rm_rf": true}'}
    good = tmp_path / "good-spec.json"
    good.write_text(json.dumps({"kind": "mlp"}))
    for name, text in files.items():
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        assert_one_line_error(*run_cli(capsys, "train", "--spec", path, "--name", "x")[::2])
        assert_one_line_error(*run_cli(capsys, "train", "--spec", good, "--config", path, "--name", "x")[::2])
    assert_one_line_error(*run_cli(capsys, "train", "--spec", tmp_path, "--name", "x")[::2], contains="cannot read")
