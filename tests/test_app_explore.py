"""AppTest of the Explore page: empty state, a finished study's table and charts, start/save/delete as jobs."""

from __future__ import annotations

import os
import shutil
import sqlite3

import optuna
import pytest

from mnist_core import jobs, registry, search

TINY = {"blocks": [0], "layers": [1], "dense": [16, 32], "rate": [0.003, 0.01]}


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A real 3-trial study (tiny MLPs, 2,000 real training images, 1 epoch), made once; copied per test."""
    folder = tmp_path_factory.mktemp("explore")
    old = os.environ.get("MNIST_EXPLORE_DIR")
    os.environ["MNIST_EXPLORE_DIR"] = str(folder)
    try:
        search.create_or_resume("finished", search.open_storage(), TINY, 2000, epochs=1)
        search.work("finished", None, 3, sampler="grid", seed=0, say=lambda line: None)
        with sqlite3.connect(folder / "studies.db") as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file, so a copy is whole
    finally:
        os.environ["MNIST_EXPLORE_DIR"] = old or ""
    return folder


@pytest.fixture
def with_study(finished_study):
    shutil.copytree(finished_study, os.environ["MNIST_EXPLORE_DIR"])


def test_empty_page_explains_how_to_start(app_page):
    at = app_page("views/explore.py")
    assert not at.exception
    assert "No studies yet" in at.info[0].value
    assert at.sidebar.multiselect[0].value == list(search.DEFAULT_SPACE)
    assert [b.label for b in at.sidebar.button] == ["Start study"]


def test_finished_study_shows_trials_best_and_charts(app_page, with_study):
    at = app_page("views/explore.py")
    assert not at.exception
    studies = at.dataframe[0].value
    assert list(studies["study"]) == ["finished"] and studies["trials"][0] == 3
    table = at.dataframe[1].value
    assert len(table) == 3 and set(table["state"]) <= {"complete", "pruned"}
    best = table[table["best"] == "★"]
    done = table[table["state"] == "complete"]
    assert len(best) == 1 and best["val_accuracy"].iloc[0] == done["val_accuracy"].max()
    assert {"dense", "rate"} <= set(table.columns)
    assert "first 2,000 training images" in " ".join(c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 3  # parallel coordinates, history, curves (+ importances when it can)
    assert any(b.label == "Save best as model" for b in at.button)


def test_start_a_study_from_the_sidebar_runs_a_background_job(app_page):
    at = app_page("views/explore.py")
    at.sidebar.text_input(key="explore_new_name").set_value("fromui")
    at.sidebar.multiselect[0].set_value(["blocks", "layers", "dense"]).run()
    at.sidebar.text_input(key="explore_dim_blocks").set_value("0")
    at.sidebar.text_input(key="explore_dim_layers").set_value("1")
    at.sidebar.text_input(key="explore_dim_dense").set_value("8,x")
    at.sidebar.number_input(key="explore_limit").set_value(1000)
    at.sidebar.number_input(key="explore_epochs").set_value(1)
    at.sidebar.number_input(key="explore_trials").set_value(1)
    at.sidebar.button[0].click().run()
    assert not at.exception
    assert "'x' is not a number" in at.sidebar.error[0].value and jobs.current() is None  # bad value: no job

    at.sidebar.text_input(key="explore_dim_dense").set_value("8,16")
    at.sidebar.button[0].click().run()
    job = jobs.current()
    assert job is not None and job.name == "explore:fromui"
    assert jobs.wait(job.id, timeout=300).state == "done"
    at.run()
    assert not at.exception
    study = search.load_study("fromui", search.open_storage())
    assert len(study.trials) == 1 and set(study.user_attrs["space"]) == {"blocks", "layers", "dense"}
    assert study.user_attrs["settings"]["train_limit"] == 1000 and study.user_attrs["settings"]["epochs"] == 1
    assert jobs.latest() is None and jobs.latest("explore").id == job.id  # the Train page shows training jobs only
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_save_best_and_delete(app_page, with_study):
    at = app_page("views/explore.py")
    at.text_input(key="explore_model_finished").set_value("explored")
    next(b for b in at.button if b.label == "Save best as model").click().run()
    assert not at.exception
    job = jobs.current()
    assert job is not None and job.name == "explored"
    assert jobs.wait(job.id, timeout=300).state == "done"
    at.run()
    assert "Saved **explored**" in at.success[0].value
    meta = registry.read_metadata("explored")
    assert meta["explore"]["study"] == "finished" and meta["config"]["validation_split"] == 0.0

    next(b for b in at.button if b.label == "Delete study finished").click().run()
    assert not at.exception
    assert "No studies yet" in at.info[0].value
    assert registry.exists("explored")  # the model outlives the study
