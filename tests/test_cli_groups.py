"""`train --seeds N` / `--vary SETTING=V1,V2`: a group of real runs on the MNIST fixture, through the CLI's own
main(), and the job that launches one (its command line, its refusals, its progress across runs)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest

from mnist_core import cli, data, jobs, registry
from mnist_core.errors import LabError
from mnist_core.spec import DenseLayer, ModelSpec, TrainConfig

TINY = ModelSpec(kind="mlp", dense_layers=[DenseLayer(16)])


def run_main(capfd, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # pytest keeps its own Ctrl-C handling
    capfd.readouterr()
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def events_in(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"kind": "mlp", "dense_layers": [{"units": 16}]}))
    return path


@pytest.fixture
def on_fixture(monkeypatch, small_mnist):
    monkeypatch.setattr(data, "load", lambda *a, **k: small_mnist)


def test_two_seeds_train_two_models_with_group_metadata(tmp_path, capfd, monkeypatch, on_fixture, tiny_spec):
    events = tmp_path / "events.jsonl"
    code, out, err = run_main(capfd, monkeypatch, "train", "--spec", str(tiny_spec), "--epochs", "1",
                              "--batch-size", "64", "--seed", "5", "--seeds", "2", "--name", "pair",
                              "--events", str(events), "--job-id", "J1")
    assert code == 0, err
    names = ["pair-s5", "pair-s6"]
    assert all(registry.inspect(n).ok for n in names)
    records = [registry.read_metadata(n)["group"] for n in names]
    assert records == [{"id": "J1", "name": "pair", "kind": "seeds", "seed": 5 + i, "run": i + 1, "runs": 2}
                       for i in range(2)]
    metas = [registry.read_metadata(n) for n in names]
    assert [m["seed"] for m in metas] == [5, 6] and metas[0]["curve"] != metas[1]["curve"]
    assert "run 1/2: saved pair-s5" in out and "run 2/2: saved pair-s6" in out

    got = events_in(events)
    kinds = [e["event"] for e in got]
    assert kinds.count("done") == 1 and kinds[-1] == "done" and kinds.count("run_done") == 2
    assert kinds.count("run") == 2 and kinds[0] == "run"
    assert got[-1]["models"] == names and got[-1]["name"] == "pair"
    assert all(e["run"] in (1, 2) and e["runs"] == 2 for e in got[:-1])


def test_a_stop_ends_the_group_and_keeps_the_runs_already_saved(tmp_path, capfd, monkeypatch, on_fixture,
                                                                tiny_spec):
    events, stop = tmp_path / "events.jsonl", tmp_path / "stop"

    def stop_in_the_second_run():  # as the job panel's Stop does
        while not any(e["event"] == "run" and e["run"] == 2 for e in events_in(events)):
            time.sleep(0.02)
        stop.write_text("discard")

    watcher = threading.Thread(target=stop_in_the_second_run, daemon=True)
    watcher.start()
    code, _, err = run_main(capfd, monkeypatch, "train", "--spec", str(tiny_spec), "--epochs", "1",
                            "--batch-size", "64", "--vary", "dense_layers[0].units=8,12,16", "--name", "wide",
                            "--events", str(events), "--stop-file", str(stop), "--quiet")
    watcher.join(5)
    assert code == 3, err
    assert registry.exists("wide-units8") and not registry.exists("wide-units12")
    assert not registry.exists("wide-units16")
    meta = registry.read_metadata("wide-units8")
    assert meta["group"]["kind"] == "sweep" and meta["group"]["setting"] == "dense_layers[0].units"
    assert meta["group"]["value"] == 8 and meta["spec"]["dense_layers"][0]["units"] == 8
    final = events_in(events)[-1]
    assert final["event"] == "stopped" and final["models"] == ["wide-units8"]
    assert "after 1 of 3 runs" in final["message"]


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "11"], "seeds must be a whole number from 1 to 10, got 11"),
    (["--seeds", "1"], "a group needs at least 2 runs"),
    (["--vary", "dense_layers[0].dropout"], "--vary needs SETTING=V1,V2"),
    (["--vary", "dense_layers[1].units=8,16"], "this spec has 1 dense layers"),
    (["--vary", "seed=1,2"], "cannot vary 'seed'"),
    (["--vary", "dense_layers[0].dropout=0,1.5"], "dense_layers[0].dropout=1.5: dense_layers[0].dropout must be"),
    (["--vary", "dense_layers[0].units=8,8"], "a value is repeated"),
    (["--vary", "dense_layers[0].units=1,2,3,4,5,6,7,8,9"], "give 2 to 8 values"),
    (["--vary", "dense_layers[0].units=8,16,32", "--seeds", "4"], "12 runs (3 value(s) x 4 seed(s)) is over"),
    (["--vary", "dense_layers[0].units=16,9000000"], "dense_layers[0].units must be a whole number in [1, 8192]"),
])
def test_bad_group_requests_are_one_line_exit_2(tmp_path, capfd, monkeypatch, tiny_spec, args, message):
    events = tmp_path / "events.jsonl"
    code, out, err = run_main(capfd, monkeypatch, "train", "--spec", str(tiny_spec), "--name", "g", *args,
                              "--events", str(events))
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not registry.list_models()


def test_a_taken_run_name_is_refused_before_anything_trains(capfd, monkeypatch, registry_with, tiny_spec):
    registry_with("g-s1")
    code, _, err = run_main(capfd, monkeypatch, "train", "--spec", str(tiny_spec), "--seed", "0", "--seeds", "3",
                            "--name", "g", "--dry-run")
    assert code == 2 and "a model named 'g-s1' already exists" in err


def test_start_train_with_a_group_checks_every_run_and_builds_a_command_line_the_cli_parses(isolated_dirs):
    config = TrainConfig(epochs=1, batch_size=64)
    with pytest.raises(LabError, match=r"units=9000000"):  # the second value is over the lab's limits
        jobs.start_train(TINY, config, "g", group={"vary": "dense_layers[0].units=16,9000000"})
    with pytest.raises(LabError, match="over the limit of 10"):
        jobs.start_train(TINY, config, "g", group={"seeds": 6, "vary": "learning_rate=0.001,0.01"})
    assert jobs.all_jobs() == []  # refused before any job folder was made

    from mnist_core import groups

    record, args = groups.job_plan(TINY, config, "g", {"seeds": 2, "vary": "optimizer=adam,sgd"})
    assert record["runs"] == 4 and record["names"] == ["g-optimizer-adam-s0", "g-optimizer-adam-s1",
                                                       "g-optimizer-sgd-s0", "g-optimizer-sgd-s1"]
    parsed = cli.make_parser().parse_args([*args, "--spec", "s.json", "--name", "g"])
    assert (parsed.seeds, parsed.vary) == (2, "optimizer=adam,sgd") and callable(parsed.run)


def _batch(run: int, epoch: int, batch: int, elapsed: float) -> dict:
    return {"event": "batch", "epoch": epoch, "batch": batch, "steps": 10, "loss": 1.0, "accuracy": 0.5,
            "elapsed": elapsed, "run": run, "runs": 3}


def test_a_group_jobs_progress_runs_over_all_its_runs():
    job = jobs.JobStatus("J", "g", "running", started=time.time() - 30,
                         subject={"config": {"epochs": 1}, "group": {"runs": 3}}, estimate={"epoch_seconds": 10.0})
    job.events = [{"event": "run", "run": 1, "runs": 3, "elapsed": 0.0},
                  {"event": "start", "epochs": 1, "steps_per_epoch": 10, "run": 1, "runs": 3},
                  *[_batch(1, 1, b, b * 1.0) for b in range(1, 11)],
                  {"event": "run_done", "name": "g-s0", "run": 1, "runs": 3},
                  {"event": "run", "run": 2, "runs": 3, "elapsed": 12.0},
                  {"event": "start", "epochs": 1, "steps_per_epoch": 10, "run": 2, "runs": 3},
                  *[_batch(2, 1, b, b * 1.0) for b in range(1, 6)]]
    p = job.progress()
    assert (p["run"], p["runs"], p["batch"], p["steps"]) == (2, 3, 5, 10)
    assert p["fraction"] == pytest.approx((1 + 0.5) / 3)
    # Run 2 has 5 steps of 1 s left (+ evaluation, 3 s by default); run 3 takes as long as run 1 did (12 s).
    assert p["eta"] == pytest.approx(5 * 1.0 + 3.0 + 12.0, abs=0.5)
    single = jobs.JobStatus("K", "s", "running", started=job.started, events=job.events[1:12],
                            subject={"config": {"epochs": 1}}, estimate={"epoch_seconds": 10.0})
    assert single.progress()["fraction"] == 1.0 and "run" not in single.progress()
