"""Hyperparameter search (mnist_core.explore, `explore` CLI) on the embedded SQLite storage.

Trials train on real MNIST: the first 2,000 training images (or the small fixture), tiny MLPs, 1-2 epochs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from mnist_core import registry
from mnist_core.errors import LabError
from mnist_core.explore import runner
from mnist_core.explore import space as spaces
from mnist_core.explore import study as studies

ROOT = Path(__file__).resolve().parent.parent
TINY = {"blocks": [0], "layers": [1], "dense": [16, 32], "rate": [0.003, 0.01]}  # 4 points
# 8 points, so two runs of 4 trials each find new parameters
TINY_FLAGS = ["--blocks", "0", "--layers", "1", "--dense", "8,16,32,64", "--rate", "0.003,0.01",
              "--train-limit", "2000"]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def explore(*args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_core", "explore", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


def load(name: str) -> optuna.Study:
    return studies.load_study(name, studies.open_storage())


def trained(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if studies.DUPLICATE_OF not in t.user_attrs]


# ---------- search space ----------


def test_flags_parse_to_typed_values():
    assert spaces.parse_values("rate", "0.001, 1e-2") == [0.001, 0.01]
    assert spaces.parse_values("dense", "64,128") == [64, 128]
    assert spaces.parse_values("optimizer", "adam,sgd") == ["adam", "sgd"]
    with pytest.raises(LabError, match="'x' is not a number"):
        spaces.parse_values("batch", "64,x")
    with pytest.raises(LabError, match="whole number"):
        spaces.parse_values("dense", "64.5")
    with pytest.raises(LabError, match="unknown dimension 'momentum'"):
        spaces.parse_values("momentum", "0.9")


@pytest.mark.parametrize("space, message", [
    ({"dropout": [0.1, 1.5]}, r"dropout=1.5: .*dropout must be a number in \[0, 1\)"),
    ({"optimizer": ["adam", "lion"]}, "optimizer='lion'.*must be one of"),
    ({"rate": {"low": 0.1, "high": 0.01}}, "low must be below high"),
    ({"rate": {"low": 0, "high": 0.1, "log": True}}, "log range needs low > 0"),
    ({"pool": {"low": 1, "high": 2}}, "takes a list of names"),
    ({"blocks": [9]}, "blocks=9"),
    ({"colour": [1]}, "unknown dimension 'colour'"),
    ({}, "at least one dimension"),
])
def test_bad_spaces_are_refused_with_the_dimension_named(space, message):
    with pytest.raises(LabError, match=message):
        spaces.validate(space)


def test_space_forms_points_and_grid_needs_lists():
    checked = spaces.validate({"rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dense": [64, 64, 128]})
    assert checked.dims == {"rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dense": {"choices": [64, 128]}}
    assert checked.grid_size() is None and not checked.finite
    assert spaces.validate(spaces.DEFAULT_SPACE).grid_size() == 36
    with pytest.raises(LabError, match="grid sampler needs lists"):
        studies.make_sampler("grid", checked, seed=0)
    tiny = spaces.validate(TINY)
    assert list(tiny.points()) == [{"blocks": 0, "layers": 1, "dense": d, "rate": r}
                                   for d in (16, 32) for r in (0.003, 0.01)]
    with pytest.raises(TypeError, match="SearchSpace"):  # an unchecked dict cannot slip past validate
        studies.create_or_resume("raw", studies.open_storage(), dict(TINY), 2000)


def test_trial_parameters_reshape_the_base_model():
    from mnist_core import spec as specs

    base_spec, base_config = spaces.build_trial({})
    preset_spec, _ = specs.preset("fast-cnn").copy()
    assert base_spec == preset_spec and base_config.epochs == spaces.DEFAULT_EPOCHS
    spec, config = spaces.build_trial({"blocks": 3, "conv": 16, "kernel": 3, "layers": 2, "dense": 64,
                                       "dropout": 0.1, "rate": 0.01, "batch": 64, "optimizer": "sgd"})
    assert [b.filters for b in spec.conv_blocks] == [16, 32, 64]
    assert {b.kernel for b in spec.conv_blocks} == {3}
    assert [(d.units, d.dropout) for d in spec.dense_layers] == [(64, 0.1), (64, 0.1)]
    assert (config.learning_rate, config.batch_size, config.optimizer) == (0.01, 64, "sgd")
    mlp, _ = spaces.build_trial({"blocks": 0, "layers": 1, "dense": 16})
    assert mlp.kind == "mlp" and not mlp.conv_blocks and mlp.dense_layers[0].units == 16
    with pytest.raises(LabError, match="shrinks below 1x1"):
        spaces.build_trial({"blocks": 6})  # each value alone is fine; the combination is not


def test_too_small_warning_counts_training_steps():
    # 2,000 images, 1 epoch: 1,800 train images / 128 = 15 steps (measured: 10-13% validation accuracy)
    warning = spaces.too_small_warning(2000, 1)
    assert warning.startswith("too small to learn: 2,000 images for 1 epoch is 15 training steps")
    assert "\n" not in warning
    assert spaces.too_small_warning(2000, 3) is None  # 45 steps
    assert spaces.too_small_warning(2000, 1, batch_size=32) is None  # 57 steps
    assert spaces.too_small_warning(spaces.DEFAULT_TRAIN_LIMIT, spaces.DEFAULT_EPOCHS) is None
    assert spaces.too_small_warning(0, 1) is None  # all 60,000
    # a study warns for its smallest trial: the fewest searched epochs, the largest searched batch
    assert spaces.too_small_for(spaces.validate({"epochs": [1, 3]}), 2000, 3) is not None
    assert spaces.too_small_for(spaces.validate({"batch": [32, 512]}), 10000, 1) is not None
    assert spaces.too_small_for(spaces.validate({"batch": [32, 40]}), 2000, 1) is None  # 1,800 / 40 = 45 steps


# ---------- studies in this process ----------


def test_pruner_cuts_a_trial_that_falls_behind_and_resume_keeps_every_trial():
    study, _, _ = studies.create_or_resume("prune", studies.open_storage(), spaces.validate(TINY), 2000)
    good = {"blocks": 0, "layers": 1, "dense": 32, "rate": 0.01}
    study.enqueue_trial(good)
    study.enqueue_trial({**good, "dense": 16})
    study.enqueue_trial({**good, "rate": 0.003, "dense": 16})  # clearly slower to learn on 1,800 images
    runner.work("prune", None, 3, say=lambda line: None)
    study = load("prune")
    t = study.trials
    assert [x.state for x in t[:2]] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(len(x.intermediate_values) == spaces.DEFAULT_EPOCHS for x in t[:2])
    assert t[0].value == t[0].intermediate_values[spaces.DEFAULT_EPOCHS]  # the objective is the last val accuracy
    assert 0.5 < t[0].value <= 1 and t[0].user_attrs["history"][-1]["val_accuracy"] == t[0].value
    assert t[2].state == optuna.trial.TrialState.PRUNED
    assert list(t[2].intermediate_values) == [1]  # cut after epoch 1, never trained epoch 2
    assert t[2].intermediate_values[1] < min(t[0].intermediate_values[1], t[1].intermediate_values[1])

    said = []
    result = runner.run("prune", n_trials=3, say=said.append)  # resume: no flags, the stored space; 1 point left
    assert [r["trial"] for r in result.rows] == list(range(len(result.rows)))
    assert len([r for r in result.rows if r["state"] != "skipped"]) == 4  # the last point, and no more
    assert result.exhausted and any("every combination of the search space has been tried" in s for s in said)
    assert sum(r["best"] == "*" for r in result.rows) == 1
    with pytest.raises(LabError, match="created with another search space"):
        runner.run("prune", search_space=spaces.validate({"dense": [8]}), n_trials=1)
    with pytest.raises(LabError, match="created with train_limit 2000"):
        runner.run("prune", n_trials=1, train_limit=500)


def test_a_study_never_trains_the_same_parameters_twice(small_mnist):
    """A 2x1 grid, 4 trials asked for, on the small fixture: a sampled repeat is skipped, not trained; an
    untried point is queued instead; once both points are tried the study stops and says so."""
    two_points = spaces.validate({"blocks": [0], "layers": [1], "dense": [8, 16]})
    study, _, _ = studies.create_or_resume("twice", studies.open_storage(), two_points, 2000, epochs=1)
    study.enqueue_trial({"blocks": 0, "layers": 1, "dense": 8})
    study.enqueue_trial({"blocks": 0, "layers": 1, "dense": 8})  # as TPE re-samples a seen point
    said = []
    result = runner.run("twice", n_trials=4, seed=0, say=said.append, mnist=small_mnist)

    rows = result.rows
    assert [r["state"] for r in rows] == ["complete", "skipped", "complete"], rows
    assert rows[1]["note"] == "skipped: same parameters as trial 0" and rows[1]["val_accuracy"] is None
    assert [r["p:dense"] for r in rows] == [8, 8, 16]  # the queued untried point came next
    assert result.exhausted
    assert "trial   1 skipped  same parameters as trial 0" in "\n".join(said)
    assert sum("every combination of the search space has been tried (2 points)" in s for s in said) == 1
    assert studies.best_params(result.study)[0] in (0, 2)  # a skipped trial is never the best

    again = []
    resumed = runner.run("twice", n_trials=4, say=again.append, mnist=small_mnist)
    assert len(resumed.rows) == 3  # nothing new was started
    assert any("every combination of the search space has been tried" in s for s in again)


def test_a_running_trial_counts_as_tried():
    study, checked, _ = studies.create_or_resume("busy", studies.open_storage(), spaces.validate(TINY), 2000)
    trial = study.ask()  # what a worker elsewhere has started
    for dim, dom in checked.dims.items():
        trial.suggest_categorical(dim, dom["choices"])
    taken = studies.taken_params(study)
    assert taken == [(0, trial.params)]
    assert trial.params not in studies.untried_points(study, checked)
    assert len(studies.untried_points(study, checked)) == 3


def test_pruner_cuts_only_trials_behind_three_quarters_of_the_finished_ones():
    study = optuna.create_study(direction="maximize", pruner=studies.make_pruner())
    for value in (0.90, 0.92, 0.94, 0.96, 0.98):  # finished trials' validation accuracy after epoch 1
        study.add_trial(optuna.trial.create_trial(value=value, intermediate_values={1: value}))

    def pruned_at(value: float) -> bool:
        trial = study.ask()
        trial.report(value, step=1)
        return trial.should_prune()

    # the 25th percentile of 0.90..0.98 is 0.92: below the median but above it survives, below it is cut
    assert [pruned_at(v) for v in (0.91, 0.93, 0.95, 0.99)] == [True, False, False, False]


def test_save_best_retrains_on_train_plus_validation_and_tests_once():
    keep_space = spaces.validate({"blocks": [0], "layers": [1], "dense": [16, 32]})
    studies.create_or_resume("keep", studies.open_storage(), keep_space, 2000, epochs=1)
    runner.work("keep", None, 2, sampler="grid", say=lambda line: None)
    number, value, params = studies.best_params(load("keep"))
    meta = runner.save_best("keep", "from-study")
    assert registry.exists("from-study") and registry.inspect("from-study").ok
    assert meta["explore"] == {"study": "keep", "trial": number, "val_accuracy": value, "params": params,
                               "train_images": 2000}
    assert meta["config"]["validation_split"] == 0.0 and meta["spec"]["dense_layers"][0]["units"] == params["dense"]
    assert len(meta["history"]) == 1 and "val_accuracy" not in meta["history"][0]  # no validation held out
    assert 0.5 < meta["test"]["accuracy"] <= 1 and meta["test"]["n"] == 10000
    with pytest.raises(LabError, match="already exists"):
        runner.save_best("keep", "from-study")
    studies.create_or_resume("empty", studies.open_storage(), spaces.validate(TINY), 2000)
    with pytest.raises(LabError, match="no completed trial"):
        runner.save_best("empty", "nothing")


def test_studies_are_listed_and_deleted():
    storage = studies.open_storage()
    studies.create_or_resume("one", storage, spaces.validate(TINY), 2000)
    studies.create_or_resume("two", storage, spaces.validate(TINY), 2000)
    assert [r["study"] for r in studies.list_studies(storage)] == ["one", "two"]
    studies.delete_study("one", storage)
    assert [r["study"] for r in studies.list_studies(storage)] == ["two"]
    with pytest.raises(LabError, match="no study named 'one'"):
        studies.delete_study("one", storage)
    with pytest.raises(LabError, match="bad study name"):
        studies.create_or_resume("../x", storage, None, None)
    # the default 2 epochs on 2,000 images: 2 x 15 steps, too few to learn
    assert studies.too_small(load("two")).startswith("too small to learn: 2,000 images for 2 epochs is 30 training")


# ---------- the CLI, worker processes, faults ----------


def test_cli_two_workers_share_the_embedded_study_and_a_rerun_continues_it():
    first = explore("--study", "duo", "--trials", "4", "--workers", "2", *TINY_FLAGS, "--train-epochs", "3")
    assert first.returncode == 0, first.stderr
    assert "first 2,000 training images (1,800 train / 200 validation)" in first.stdout
    assert "trial  best  state" in first.stdout and "best: trial" in first.stdout
    assert "warning: too small" not in first.stdout  # 3 x 15 steps is enough
    study = load("duo")
    assert len(trained(study)) == 4 and all(t.state in FINISHED for t in trained(study))
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2  # both processes took trials
    so_far = len(study.trials)  # skipped repeats included

    again = explore("--study", "duo", "--trials", "4", "--workers", "2")  # same study, no flags: resume
    assert again.returncode == 0, again.stderr
    assert f"{so_far} trials so far" in again.stdout
    done = trained(load("duo"))
    assert len(done) == 8 and len({json.dumps(t.params, sort_keys=True) for t in done}) == 8  # 8 points, no repeat


def test_cli_warns_when_trials_are_too_small_to_learn(capsys, monkeypatch):
    from mnist_core.cli import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # in-process: keep pytest's own Ctrl-C handling
    monkeypatch.setattr(runner, "work", lambda *a, **k: None)  # the warning comes before any training
    assert main(["explore", "--study", "small", *TINY_FLAGS, "--train-epochs", "1", "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "warning: too small to learn: 2,000 images for 1 epoch is 15 training steps" in out


def test_cli_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path):
    from mnist_core.cli import main

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # in-process: keep pytest's own Ctrl-C handling
    range_file = str(tmp_path / "range.json")
    Path(range_file).write_text(json.dumps({"rate": {"low": 0.001, "high": 0.01}}))
    for args, message in [(["--study", "x", "--dropout", "0.2,2"], "dropout=2.0"),
                          (["--study", "x", "--space", "/nope.json"], "no such file"),
                          (["--study", "x", "--sampler", "grid", "--space", "/dev/null"], "not valid JSON"),
                          (["--study", "x", "--sampler", "grid", "--rate", "0.001", "--dense", "-4"], "dense=-4"),
                          (["--study", "x", "--sampler", "grid", "--space", range_file], "grid sampler needs lists"),
                          (["--trials", "3"], "say which study"),
                          (["--study", "missing", "--save-best", "m"], "no study named 'missing'"),
                          (["--study", "x", "--storage", "postgresql://u:secret@127.0.0.1:1/db"], "cannot open")]:
        code = main(["explore", *args])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and message in err, err
        assert "secret" not in err and "Traceback" not in err
    assert studies.list_studies(studies.open_storage()) == []  # nothing half-created


def test_killed_worker_trial_ends_failed_and_the_study_goes_on():
    proc = subprocess.Popen([sys.executable, "-m", "mnist_core", "explore", "--study", "kill", "--trials", "6",
                             "--workers", "2", "--heartbeat", "1", "--train-epochs", "2", *TINY_FLAGS],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim, deadline = None, time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            running = [t for t in load("kill").trials if t.state == optuna.trial.TrialState.RUNNING
                       and "worker" in t.user_attrs]
        except LabError:
            continue  # the study is not created yet
        if running:
            victim = running[0]
            os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
            killed_at = time.time()
    assert victim is not None, "no trial was ever seen running"
    out, _ = proc.communicate(timeout=420)
    assert proc.returncode == 1 and "ended with exit code -9" in out, out
    trials = load("kill").trials
    assert trials[victim.number].state == optuna.trial.TrialState.FAIL  # by the heartbeat, not left RUNNING
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    later = [t for t in trials if t.state in FINISHED and t.datetime_complete.timestamp() > killed_at + 0.5]
    assert later, "the surviving worker finished no trial after the kill"
    assert "best: trial" in out


def test_the_command_lines_jobs_launch_run_a_study_and_save_its_best(tmp_path):
    """The exact explore command lines jobs.py builds for the page, with its job flags."""
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(TINY))
    events = tmp_path / "events.jsonl"
    job = ["--name", "explore:bg", "--events", str(events), "--stop-file", str(tmp_path / "stop"), "--job-id", "j1"]
    study = explore("--study", "bg", "--trials", "2", "--workers", "1", "--sampler", "tpe", "--train-limit", "2000",
                    "--train-epochs", "1", "--space", str(space_file), *job)
    assert study.returncode == 0, study.stderr
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["start", "done"]
    skipped = len(load("bg").trials) - 2  # TPE may draw a repeat of the 4 points: skipped, not counted
    assert len(trained(load("bg"))) == 2
    assert lines[-1] == {"event": "done", "study": "bg", "message": "2 trials in the study"
                         + (f" ({skipped} more skipped as repeats)" if skipped else "")}

    saved = tmp_path / "save.jsonl"
    best = explore("--study", "bg", "--save-best", "bg-best", "--train-limit", "2000", "--name", "bg-best",
                   "--events", str(saved), "--stop-file", str(tmp_path / "stop2"), "--job-id", "j2")
    assert best.returncode == 0, best.stderr
    kinds = [json.loads(line)["event"] for line in saved.read_text().splitlines()]
    assert kinds[0] == "start" and "epoch" in kinds and kinds[-1] == "done"
    assert json.loads((registry.model_path("bg-best") / "metadata.json").read_text())["explore"]["study"] == "bg"


# ---------- worker processes: bounded, and never orphaned ----------


def test_worker_count_is_bounded_before_anything_starts(capsys, monkeypatch):
    from mnist_core.cli import main
    from mnist_core.explore import workers

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # in-process: keep pytest's own Ctrl-C handling
    monkeypatch.setattr(runner, "work", lambda *a, **k: pytest.fail("a worker ran"))
    monkeypatch.setattr(runner, "_worker_processes", lambda *a, **k: pytest.fail("worker processes started"))
    most = workers.max_workers()
    assert most == min(workers.MAX_WORKERS, os.cpu_count())
    for args, message in [(["--workers", "12", "--trials", "1"], f"--workers 12: at most {most} on this machine"),
                          (["--workers", str(most + 1), "--trials", "50"], f"at most {most} on this machine"),
                          (["--workers", "2", "--trials", "1"], "--workers 2 with --trials 1: a worker would have "
                                                                "no trial")]:
        code = main(["explore", "--study", "capped", *TINY_FLAGS, *args])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, (args, err)
    assert studies.list_studies(studies.open_storage()) == []  # refused before the study was created
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert workers.max_workers() == workers.MAX_WORKERS == 4  # a big machine still gets at most 4
    with pytest.raises(LabError, match="at most 4"):
        runner.run("capped", n_trials=10, workers=5)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[1] == str(pid) and fields[0] != "Z":  # fields[0] is the state, fields[1] the parent pid
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def test_workers_die_when_the_run_is_killed():
    proc = subprocess.Popen([sys.executable, "-m", "mnist_core", "explore", "--study", "orphans", "--trials", "8",
                             "--workers", "2", "--train-epochs", "3", *TINY_FLAGS],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker_pids: list[int] = []
    try:
        deadline = time.monotonic() + 300
        training = False
        while not training and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
            worker_pids = _children(proc.pid)
            try:
                running = [t for t in load("orphans").trials if t.state == optuna.trial.TrialState.RUNNING]
            except LabError:
                continue  # the study is not created yet
            training = len(worker_pids) == 2 and len(running) == 2  # both workers are past start-up, training
        assert training, "the two workers were never seen training"
        proc.kill()  # SIGKILL: the run gets no chance to stop its workers itself
        proc.wait()
        gone_by = time.monotonic() + 5
        while any(_alive(p) for p in worker_pids) and time.monotonic() < gone_by:
            time.sleep(0.1)
        assert not [p for p in worker_pids if _alive(p)], "workers outlived the killed run"
    finally:
        for pid in [proc.pid, *worker_pids]:  # only the processes this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
