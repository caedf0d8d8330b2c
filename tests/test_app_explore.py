"""AppTest of the Explore page: empty state, a finished study's table and charts, start/save/delete as jobs."""

from __future__ import annotations

import os
import shutil
import sqlite3

import optuna
import pytest

from mnist_core import jobs, registry
from mnist_core.explore import runner
from mnist_core.explore import space as spaces
from mnist_core.explore import study as studies

TINY = {"blocks": [0], "layers": [1], "dense": [16, 32], "rate": [0.003, 0.01]}


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A real 3-trial study (tiny MLPs, 2,000 real training images, 1 epoch), made once; copied per test."""
    folder = tmp_path_factory.mktemp("explore")
    old = os.environ.get("MNIST_EXPLORE_DIR")
    os.environ["MNIST_EXPLORE_DIR"] = str(folder)
    try:
        studies.create_or_resume("finished", studies.open_storage(), spaces.validate(TINY), 2000, epochs=1)
        runner.work("finished", None, 3, sampler="grid", seed=0, say=lambda line: None)
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
    assert at.sidebar.multiselect[0].value == list(spaces.DEFAULT_SPACE)
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
    assert len(best) == 1 and best["validation accuracy"].iloc[0] == done["validation accuracy"].max()
    assert {"dense", "rate"} <= set(table.columns)
    assert "first 2,000 training images" in " ".join(c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 3  # parallel coordinates, history, curves (+ importances when it can)
    assert any(b.label == "Save best as model" for b in at.button)


def test_too_small_settings_are_warned_about_before_starting(app_page):
    at = app_page("views/explore.py")
    assert not at.sidebar.warning  # the defaults (10,000 images, 2 epochs) are big enough to learn
    at.sidebar.number_input(key="explore_limit").set_value(2000)
    at.sidebar.number_input(key="explore_epochs").set_value(1).run()
    assert "too small to learn" in at.sidebar.warning[0].value


def _fill_tiny_study(at, name: str, dense: str):
    at.sidebar.text_input(key="explore_new_name").set_value(name).run()  # a new name: the dimension controls
    at.sidebar.multiselect[0].set_value(["blocks", "layers", "dense"]).run()
    at.sidebar.text_input(key="explore_dim_blocks").set_value("0")
    at.sidebar.text_input(key="explore_dim_layers").set_value("1")
    at.sidebar.text_input(key="explore_dim_dense").set_value(dense)
    at.sidebar.number_input(key="explore_limit").set_value(1000)
    at.sidebar.number_input(key="explore_epochs").set_value(1)
    at.sidebar.number_input(key="explore_trials").set_value(1)
    return at


def test_two_studies_one_after_the_other_each_shown_live_then_done(app_page, with_study):
    at = app_page("views/explore.py")
    _fill_tiny_study(at, "fromui", "8,x")
    at.sidebar.button[0].click().run()
    assert not at.exception
    assert "'x' is not a number" in at.sidebar.error[0].value and jobs.current() is None  # bad value: no job

    session = at.session_state["browser_session"]
    for name in ("fromui", "second"):
        _fill_tiny_study(at, name, "8,16")
        at.sidebar.button[0].click().run()
        assert not at.exception
        job = jobs.latest(session, ("study",))
        assert job is not None and job.running and job.subject["study"] == name
        # The page follows the new study at once, whatever was open before, with its live panel.
        assert f"Study {name}" in [h.value for h in at.subheader] and at.selectbox(key="explore_open").value == name
        assert at.sidebar.button[0].disabled  # one job per session
        assert jobs.wait(job.id, timeout=300).state == "done"
        at.run()
        assert not at.exception
        assert f"Last run: Study {name}" in [h.value for h in at.subheader]
        assert not at.sidebar.button[0].disabled
        study = studies.load_study(name, studies.open_storage())
        assert len(study.trials) == 1 and set(study.user_attrs["space"]) == {"blocks", "layers", "dense"}
        assert study.user_attrs["settings"] == {"train_limit": 1000, "epochs": 1, "base": "fast-cnn"}
        assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert jobs.latest(session) is None  # the Train page shows training jobs only


def test_save_best_reports_its_outcome_and_delete(app_page, with_study):
    at = app_page("views/explore.py")
    at.text_input(key="explore_model_finished").set_value("explored")
    next(b for b in at.button if b.label == "Save best as model").click().run()
    assert not at.exception
    job = jobs.latest(at.session_state["browser_session"], ("save-best",))
    assert job is not None and job.name == "explored" and job.running
    assert "Retraining the best trial of finished as explored" in [h.value for h in at.subheader]
    assert jobs.wait(job.id, timeout=300).state == "done"
    at.run()
    assert "Saved as **explored**." in at.success[0].value
    meta = registry.read_metadata("explored")
    assert meta["explore"]["study"] == "finished" and meta["config"]["validation_split"] == 0.0

    next(b for b in at.button if b.label == "Delete study finished").click().run()
    assert not at.exception
    assert "No studies yet" in at.info[0].value
    assert registry.exists("explored")  # the model outlives the study
