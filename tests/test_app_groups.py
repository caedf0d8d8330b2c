"""AppTests of seed groups and sweeps: the Train page's controls (runs, cost, refusals, the job they start,
the group's outcome) and Compare's group section (rows with mean ± sd, a sweep's values, Welch's t-test)."""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mnist_core import jobs
from mnist_core import spec as specs

TAB = "a1b2c3d4e5f6"


@pytest.fixture
def open_train(app_page):
    return functools.partial(app_page, "views/train.py", clean=True, query={"tab": TAB})


def button(at, starts: str):
    return next(b for b in at.button if b.label.startswith(starts))


def test_train_offers_seeds_and_one_setting_to_vary_with_the_cost_multiplied(open_train):
    at = open_train()
    assert at.number_input(key="train_seeds").value == 1
    vary = at.selectbox(key="train_vary")
    assert vary.value == "nothing" and "dense layer 2 dropout" in vary.options and "learning rate" in vary.options
    assert not [o for o in vary.options if o.startswith("conv block")]  # the default spec is an MLP
    assert button(at, "Start training").label == "Start training"
    per_epoch = next(m for m in at.metric if m.label == "Measured job time")
    assert per_epoch.value != "0 s"

    at.number_input(key="train_seeds").set_value(3).run()
    runs = next(c.value for c in at.caption if " runs (" in c.value)
    assert runs.startswith("3 runs (mlp-d128-d128-s0 ... mlp-d128-d128-s2)")
    assert button(at, "Start 3 runs").label == "Start 3 runs"

    at.selectbox(key="train_vary").set_value("dense_layers[0].dropout").run()
    assert "Values of dense layer 1 dropout (now 0)" in at.text_input(key="train_values").label
    assert not button(at, "Start").label.startswith("Start 3")  # no values yet: refused in one line
    assert any("give 2 to 8 values" in e.value for e in at.error) and button(at, "Start").disabled
    at.text_input(key="train_values").set_value("0, 0.5").run()
    assert button(at, "Start 6 runs").label == "Start 6 runs" and not button(at, "Start 6 runs").disabled
    at.text_input(key="train_values").set_value("0, 0.5, 0.2, 0.3").run()
    assert any("12 runs (4 value(s) x 3 seed(s)) is over the limit of 10 per job" in e.value for e in at.error)
    assert button(at, "Start").disabled


def test_start_launches_one_job_for_the_whole_group(open_train):
    at = open_train()
    at.number_input(key="sb_epochs").set_value(1).run()
    at.selectbox(key="train_vary").set_value("dense_layers[0].units").run()
    at.text_input(key="train_values").set_value("16, 32").run()
    at.text_input(key="train_name").set_value("wide").run()
    button(at, "Start 2 runs").click().run()
    (job,) = jobs.all_jobs()
    try:
        assert job.kind == "train" and job.name == "wide" and job.session == TAB
        assert job.subject["group"]["names"] == ["wide-units16", "wide-units32"]
        assert job.subject["group"]["setting"] == "dense_layers[0].units" and job.subject["group"]["values"] == [16, 32]
        assert "Training group wide (2 runs)" in [s.value for s in at.subheader]
        assert any("varying dense_layers[0].units over 16, 32" in c.value for c in at.caption)
    finally:
        jobs.stop(job.id)
        assert jobs.wait(job.id, timeout=120).state in ("stopped", "failed")


def _with_group(folder: Path, record: dict, accuracy: float) -> None:
    path = folder / "metadata.json"
    meta = json.loads(path.read_text())
    meta["group"], meta["test"]["accuracy"] = record, accuracy
    path.write_text(json.dumps(meta))


SEEDS = {"g-s0": 0.912, "g-s1": 0.921, "g-s2": 0.905}
SWEEP = {"d-0": (0.0, 0.95), "d-1": (0.0, 0.952), "d-2": (0.5, 0.90), "d-3": (0.5, 0.897)}


@pytest.fixture
def grouped(registry_with):
    root = registry_with("lonely", *SEEDS, *SWEEP)
    for i, (name, accuracy) in enumerate(SEEDS.items()):
        _with_group(root / name, {"id": "G1", "name": "g", "kind": "seeds", "seed": i, "run": i + 1, "runs": 3},
                    accuracy)
    for i, (name, (value, accuracy)) in enumerate(SWEEP.items()):
        _with_group(root / name, {"id": "G2", "name": "d", "kind": "sweep", "setting": "dense_layers[0].dropout",
                                  "value": value, "seed": i % 2, "run": i + 1, "runs": 4}, accuracy)
    return root


def test_compare_shows_a_group_as_one_row_with_mean_and_sd(grouped, app_page):
    at = app_page("views/compare.py", clean=True)
    at.multiselect(key="compare_pick").set_value(["g-s1", "lonely"]).run()
    assert not at.exception
    assert at.multiselect(key="groups_pick").value == ["G1"]  # the picked model's group
    table = next(d.value for d in at.dataframe if "test accuracy, mean ± sd" in d.value.columns)
    assert len(table) == 1 and table.loc[0, "group"] == "g" and table.loc[0, "n"] == 3
    accs = np.array(list(SEEDS.values()))
    assert table.loc[0, "test accuracy, mean ± sd"] == f"{accs.mean():.2%} ± {accs.std(ddof=1) * 100:.2f}%"
    assert table.loc[0, "range"] == "90.50% – 92.10%"
    assert table.loc[0, "models"] == "g-s0, g-s1, g-s2"

    at.multiselect(key="groups_pick").set_value(["G1", "G2"]).run()
    table = next(d.value for d in at.dataframe if "test accuracy, mean ± sd" in d.value.columns)
    assert list(table["setting"]) == ["seeds only", "dense_layers[0].dropout = 0", "dense_layers[0].dropout = 0.5"]
    assert list(table["n"]) == [3, 2, 2]
    assert any("test accuracy against" in m.value and "dropout" in m.value for m in at.markdown)

    at.selectbox(key="groups_welch_a").set_value("d with dense_layers[0].dropout=0").run()
    at.selectbox(key="groups_welch_b").set_value("d with dense_layers[0].dropout=0.5").run()
    p = stats.ttest_ind([0.95, 0.952], [0.90, 0.897], equal_var=False).pvalue
    sentence = next(m.value for m in at.markdown if "Welch" in m.value)
    assert f"p = {p:.3g}" in sentence and "is better by 5.25 points" in sentence


def test_compare_says_how_to_make_a_group_when_there_is_none(registry_with, app_page):
    registry_with("lonely")
    at = app_page("views/compare.py", clean=True)
    assert any("No seed groups or sweeps saved yet" in c.value for c in at.caption)


def test_a_finished_group_job_shows_its_runs_on_train(grouped, open_train):
    folder = Path(os.environ["MNIST_JOBS_DIR"]) / "20260101-000000-fff000"
    folder.mkdir()
    (folder / jobs.EVENTS).write_text(json.dumps({"event": "done", "name": "g", "models": list(SEEDS)}) + "\n")
    spec, config = specs.preset("mlp-2x128").copy()
    (folder / jobs.INFO).write_text(json.dumps({
        "id": folder.name, "name": "g", "pid": 1, "started": time.time(), "kind": "train", "session": TAB,
        "subject": {"spec": specs.to_dict(spec), "config": specs.to_dict(config),
                    "group": {"seeds": 3, "runs": 3, "names": list(SEEDS)}}}))
    at = open_train()
    assert "Last run: Training group g (3 runs)" in [s.value for s in at.subheader]
    assert "Saved 3 runs of group **g**" in at.success[0].value
    table = next(d.value for d in at.dataframe if "mean" in d.value.columns)
    assert table.loc[0, "runs"] == 3 and table.loc[0, "mean"] == pytest.approx(np.mean(list(SEEDS.values())))


def test_a_groups_suggested_name_leaves_an_earlier_groups_runs_alone(registry_with, open_train):
    registry_with("mlp-d128-d128-s0")  # a run of an earlier group named mlp-d128-d128
    at = open_train()
    assert at.text_input(key="train_name").value == "mlp-d128-d128"  # one run: the name itself is free
    at.number_input(key="train_seeds").set_value(2).run()
    assert at.text_input(key="train_name").value == "mlp-d128-d128-2"
    assert any(c.value.startswith("2 runs (mlp-d128-d128-2-s0 ... mlp-d128-d128-2-s1)") for c in at.caption)
    assert not at.error
