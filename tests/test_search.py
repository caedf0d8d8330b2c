"""Hyperparameter search (mnist_core.search, `explore` CLI) on the embedded SQLite storage.

Trials train on real MNIST: the first 2,000 training images, tiny MLPs, 1-2 epochs."""

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

from mnist_core import registry, search
from mnist_core.errors import LabError

ROOT = Path(__file__).resolve().parent.parent
TINY = {"blocks": [0], "layers": [1], "dense": [16, 32], "rate": [0.003, 0.01]}
TINY_FLAGS = ["--blocks", "0", "--layers", "1", "--dense", "16,32", "--rate", "0.003,0.01", "--train-limit", "2000"]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def explore(*args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_core", "explore", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


def load(name: str) -> optuna.Study:
    return search.load_study(name, search.open_storage())


# ---------- search space ----------


def test_flags_parse_to_typed_values():
    assert search.parse_values("rate", "0.001, 1e-2") == [0.001, 0.01]
    assert search.parse_values("dense", "64,128") == [64, 128]
    assert search.parse_values("optimizer", "adam,sgd") == ["adam", "sgd"]
    with pytest.raises(LabError, match="'x' is not a number"):
        search.parse_values("batch", "64,x")
    with pytest.raises(LabError, match="whole number"):
        search.parse_values("dense", "64.5")
    with pytest.raises(LabError, match="unknown dimension 'momentum'"):
        search.parse_values("momentum", "0.9")


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
        search.normalise_space(space)


def test_space_forms_and_grid_needs_lists():
    space = search.normalise_space({"rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dense": [64, 64, 128]})
    assert space == {"rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dense": {"choices": [64, 128]}}
    assert search.grid_size(space) is None
    assert search.grid_size(search.normalise_space(search.DEFAULT_SPACE)) == 36
    with pytest.raises(LabError, match="grid sampler needs lists"):
        search.make_sampler("grid", space, seed=0)


def test_trial_parameters_reshape_the_base_model():
    base_spec, base_config = search.build_trial({})
    preset_spec, _ = search.specs.preset("fast-cnn").copy()
    assert base_spec == preset_spec and base_config.epochs == search.DEFAULT_EPOCHS
    spec, config = search.build_trial({"blocks": 3, "conv": 16, "kernel": 3, "layers": 2, "dense": 64,
                                       "dropout": 0.1, "rate": 0.01, "batch": 64, "optimizer": "sgd"})
    assert [b.filters for b in spec.conv_blocks] == [16, 32, 64]
    assert {b.kernel for b in spec.conv_blocks} == {3}
    assert [(d.units, d.dropout) for d in spec.dense_layers] == [(64, 0.1), (64, 0.1)]
    assert (config.learning_rate, config.batch_size, config.optimizer) == (0.01, 64, "sgd")
    mlp, _ = search.build_trial({"blocks": 0, "layers": 1, "dense": 16})
    assert mlp.kind == "mlp" and not mlp.conv_blocks and mlp.dense_layers[0].units == 16
    with pytest.raises(LabError, match="shrinks below 1x1"):
        search.build_trial({"blocks": 6})  # each value alone is fine; the combination is not


# ---------- studies in this process ----------


def test_pruner_cuts_a_trial_that_falls_behind_and_resume_keeps_every_trial():
    study, space, _ = search.create_or_resume("prune", search.open_storage(), dict(TINY), 2000)
    good = {"blocks": 0, "layers": 1, "dense": 32, "rate": 0.01}
    study.enqueue_trial(good)
    study.enqueue_trial(good)
    study.enqueue_trial({**good, "rate": 0.003, "dense": 16})  # clearly slower to learn on 1,800 images
    search.work("prune", None, 3, say=lambda line: None)
    study = load("prune")
    t = study.trials
    assert [x.state for x in t[:2]] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(len(x.intermediate_values) == search.DEFAULT_EPOCHS for x in t[:2])
    assert t[0].value == t[0].intermediate_values[search.DEFAULT_EPOCHS]  # the objective is the last val accuracy
    assert 0.5 < t[0].value <= 1 and t[0].user_attrs["history"][-1]["val_accuracy"] == t[0].value
    assert t[2].state == optuna.trial.TrialState.PRUNED
    assert list(t[2].intermediate_values) == [1]  # cut after epoch 1, never trained epoch 2
    assert t[2].intermediate_values[1] < t[0].intermediate_values[1]

    result = search.run("prune", n_trials=1, say=lambda line: None)  # resume: no flags, the stored space
    assert [r["trial"] for r in result.rows] == [0, 1, 2, 3]
    assert sum(r["best"] == "*" for r in result.rows) == 1
    with pytest.raises(LabError, match="created with another search space"):
        search.run("prune", space={"dense": [8]}, n_trials=1)
    with pytest.raises(LabError, match="created with train_limit 2000"):
        search.run("prune", n_trials=1, train_limit=500)


def test_pruner_cuts_only_trials_behind_three_quarters_of_the_finished_ones():
    study = optuna.create_study(direction="maximize", pruner=search.make_pruner())
    for value in (0.90, 0.92, 0.94, 0.96, 0.98):  # finished trials' validation accuracy after epoch 1
        study.add_trial(optuna.trial.create_trial(value=value, intermediate_values={1: value}))

    def pruned_at(value: float) -> bool:
        trial = study.ask()
        trial.report(value, step=1)
        return trial.should_prune()

    # the 25th percentile of 0.90..0.98 is 0.92: below the median but above it survives, below it is cut
    assert [pruned_at(v) for v in (0.91, 0.93, 0.95, 0.99)] == [True, False, False, False]


def test_save_best_retrains_on_train_plus_validation_and_tests_once():
    study, _, _ = search.create_or_resume("keep", search.open_storage(), {"blocks": [0], "layers": [1],
                                          "dense": [16, 32]}, 2000, epochs=1)
    search.work("keep", None, 2, sampler="grid", say=lambda line: None)
    number, value, params = search.best_params(load("keep"))
    meta = search.save_best("keep", "from-study")
    assert registry.exists("from-study") and registry.inspect("from-study").ok
    assert meta["explore"] == {"study": "keep", "trial": number, "val_accuracy": value, "params": params,
                               "train_images": 2000}
    assert meta["config"]["validation_split"] == 0.0 and meta["spec"]["dense_layers"][0]["units"] == params["dense"]
    assert len(meta["history"]) == 1 and "val_accuracy" not in meta["history"][0]  # no validation held out
    assert 0.5 < meta["test"]["accuracy"] <= 1 and meta["test"]["n"] == 10000
    with pytest.raises(LabError, match="already exists"):
        search.save_best("keep", "from-study")
    search.create_or_resume("empty", search.open_storage(), dict(TINY), 2000)
    with pytest.raises(LabError, match="no completed trial"):
        search.save_best("empty", "nothing")


def test_studies_are_listed_and_deleted():
    storage = search.open_storage()
    search.create_or_resume("one", storage, dict(TINY), 2000)
    search.create_or_resume("two", storage, dict(TINY), 2000)
    assert [r["study"] for r in search.list_studies(storage)] == ["one", "two"]
    search.delete_study("one", storage)
    assert [r["study"] for r in search.list_studies(storage)] == ["two"]
    with pytest.raises(LabError, match="no study named 'one'"):
        search.delete_study("one", storage)
    with pytest.raises(LabError, match="bad study name"):
        search.create_or_resume("../x", storage, None, None)


# ---------- the CLI, worker processes, faults ----------


def test_cli_two_workers_share_the_embedded_study_and_a_rerun_continues_it():
    first = explore("--study", "duo", "--trials", "4", "--workers", "2", *TINY_FLAGS, "--train-epochs", "1")
    assert first.returncode == 0, first.stderr
    assert "first 2,000 training images (1,800 train / 200 validation)" in first.stdout
    assert "trial  best  state" in first.stdout and "best: trial" in first.stdout
    study = load("duo")
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state in FINISHED for t in study.trials)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2  # both processes took trials

    again = explore("--study", "duo", "--trials", "4", "--workers", "2")  # same study, no flags: resume
    assert again.returncode == 0, again.stderr
    assert "4 trials so far" in again.stdout
    assert sorted(t.number for t in load("duo").trials) == list(range(8))


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
    assert search.list_studies(search.open_storage()) == []  # nothing half-created


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


def test_background_job_runs_a_study_like_the_page_does():
    from mnist_core import jobs

    job = search.start_search_job("bg", dict(TINY), n_trials=2, train_limit=2000, epochs=1)
    with pytest.raises(LabError, match="already running"):
        search.start_search_job("bg2", dict(TINY), n_trials=1)
    final = jobs.wait(job.id, timeout=300)
    assert final.state == "done", (final.message, (Path(os.environ["MNIST_JOBS_DIR"]) / job.id / "log.txt").read_text())
    assert len(load("bg").trials) == 2
    save = search.start_save_job("bg", "bg-best")
    assert jobs.wait(save.id, timeout=300).state == "done"
    assert json.loads((registry.model_path("bg-best") / "metadata.json").read_text())["explore"]["study"] == "bg"
