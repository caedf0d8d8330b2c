"""mnist_core.groups (settings, values, plans) and mnist_core.group_stats (statistics), checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mnist_core import group_stats, groups
from mnist_core import spec as specs
from mnist_core.errors import LabError

CNN, CNN_CONFIG = specs.preset("cnn-classic").copy()
MLP, MLP_CONFIG = specs.preset("mlp-2x128").copy()


@pytest.mark.parametrize(("path", "label", "current"), [
    ("dense_layers[0].dropout", "dense layer 1 dropout", 0.5),
    ("conv_blocks[1].filters", "conv block 2 filters", 64),
    ("conv_blocks[0].batch_norm", "conv block 1 batch norm", False),
    ("learning_rate", "learning rate", 0.001),
    ("batch_size", "batch size", 128),
])
def test_documented_settings_are_found_in_the_spec(path, label, current):
    setting = groups.parse_setting(path, CNN)
    assert setting.path == path and setting.label == label
    assert setting.current(CNN, CNN_CONFIG) == current


@pytest.mark.parametrize(("path", "message"), [
    ("seed", "cannot vary 'seed': choose one of"),
    ("validation_split", "cannot vary 'validation_split'"),
    ("dense_layers[0].bias", "cannot vary 'dense_layers[0].bias'"),
    ("dense_layers[1].units", "this spec has 1 dense layers (indices 0 to 0)"),
    ("conv_blocks[2].kernel", "this spec has 2 conv blocks"),
    ("dense_layers[-1].units", "cannot vary"),
    ("dense_layers[0].units; rm -rf", "cannot vary"),
])
def test_other_paths_are_one_line_errors(path, message):
    with pytest.raises(LabError) as err:
        groups.parse_setting(path, CNN)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_mlp_offers_no_conv_settings():
    offered = groups.settings_of(MLP)
    assert "dense_layers[1].units" in offered and "learning_rate" in offered
    assert not [p for p in offered if p.startswith("conv_blocks")]
    assert all(groups.parse_setting(p, MLP).path == p for p in offered)
    with pytest.raises(LabError, match="this spec has no conv blocks"):
        groups.parse_setting("conv_blocks[0].filters", MLP)


@pytest.mark.parametrize(("path", "text", "values"), [
    ("dense_layers[0].dropout", "0, 0.2,0.5", [0.0, 0.2, 0.5]),
    ("dense_layers[0].units", "32,128,512", [32, 128, 512]),
    ("dense_layers[0].units", "32,1e2", [32, 100]),
    ("optimizer", "adam,sgd", ["adam", "sgd"]),
    ("augment", "true, no", [True, False]),
])
def test_values_are_parsed_to_the_settings_type(path, text, values):
    got = groups.parse_values(groups.parse_setting(path, MLP), text)
    assert got == values and [type(v) for v in got] == [type(v) for v in values]


@pytest.mark.parametrize(("path", "text", "message"), [
    ("dense_layers[0].units", "32,12.5", "'12.5' is not a whole number"),
    ("dense_layers[0].dropout", "0,nan", "'nan' is not a number"),
    ("optimizer", "adam,lion", "'lion' is not one of adam"),
    ("augment", "true,maybe", "'maybe' is not true or false"),
    ("learning_rate", "0.1", "give 2 to 8 values"),
    ("learning_rate", "0.1,0.10", "a value is repeated"),
])
def test_bad_values_are_one_line_errors(path, text, message):
    with pytest.raises(LabError, match=message.replace("(", r"\(").replace(".", r"\.")):
        groups.parse_values(groups.parse_setting(path, MLP), text)


def test_apply_returns_a_new_checked_spec_and_leaves_the_old_one():
    setting = groups.parse_setting("dense_layers[0].dropout", CNN)
    new_spec, new_config = groups.apply(CNN, CNN_CONFIG, setting, 0.2)
    assert new_spec.dense_layers[0].dropout == 0.2 and CNN.dense_layers[0].dropout == 0.5
    assert new_spec.conv_blocks == CNN.conv_blocks and new_config == CNN_CONFIG
    lr = groups.parse_setting("learning_rate", CNN)
    assert groups.apply(CNN, CNN_CONFIG, lr, 0.01)[1].learning_rate == 0.01 and CNN_CONFIG.learning_rate == 0.001
    with pytest.raises(LabError, match=r"^conv_blocks\[0\]\.filters=2000: conv_blocks\[0\]\.filters must be a whole"):
        groups.apply(CNN, CNN_CONFIG, groups.parse_setting("conv_blocks[0].filters", CNN), 2000)  # spec's own check


def test_a_plan_names_seeds_and_values_and_checks_the_cost_of_each_run(isolated_dirs):
    setting = groups.parse_setting("dense_layers[0].units", MLP)
    runs = groups.plan(MLP, MLP_CONFIG, "w", seeds=2, setting=setting, values=[32, 512])
    assert [r.name for r in runs] == ["w-units32-s0", "w-units32-s1", "w-units512-s0", "w-units512-s1"]
    assert [(r.spec.dense_layers[0].units, r.config.seed) for r in runs] == [(32, 0), (32, 1), (512, 0), (512, 1)]
    assert runs[2].record("G", "w", setting.path, 4) == {
        "id": "G", "name": "w", "kind": "sweep", "setting": "dense_layers[0].units", "value": 512, "seed": 0,
        "run": 3, "runs": 4}
    with pytest.raises(LabError, match=r"^conv_blocks\[1\]\.filters=1024: .*parameters"):  # over the lab's limits
        groups.plan(CNN, CNN_CONFIG, "w", setting=groups.parse_setting("conv_blocks[1].filters", CNN),
                    values=[64, 1024])
    with pytest.raises(LabError, match="too long"):
        groups.plan(MLP, MLP_CONFIG, "n" * 62, seeds=2)


def test_planned_seconds_scale_with_flops_and_epochs():
    from mnist_core import cost

    setting = groups.parse_setting("epochs", MLP)
    runs = groups.plan(MLP, MLP_CONFIG, "e", setting=setting, values=[1, 4])
    assert groups.planned_seconds(runs, MLP, 10.0) == pytest.approx(50.0)
    wide = groups.plan(MLP, MLP_CONFIG, "u", setting=groups.parse_setting("dense_layers[0].units", MLP),
                       values=[128, 256])
    ratio = cost.estimate(wide[1].spec).training_flops / cost.estimate(MLP).training_flops
    assert ratio > 1.5
    assert groups.planned_seconds(wide, MLP, 10.0) == pytest.approx(10.0 * MLP_CONFIG.epochs * (1 + ratio))


def meta(group: dict, accuracy: float, curve: list[dict] | None = None) -> dict:
    return {"group": group, "test": {"accuracy": accuracy}, "curve": curve or []}


def test_group_rows_against_numpy_by_hand():
    seeds = [0.91, 0.93, 0.92, 0.95]
    low, high = [0.80, 0.84, 0.83], [0.97, 0.96, 0.975]
    entries = [(f"s{i}", meta({"id": "A", "name": "alpha", "kind": "seeds", "seed": i}, a)) for i, a in enumerate(seeds)]
    entries += [(f"d0-{i}", meta({"id": "B", "name": "beta", "kind": "sweep", "setting": "dense_layers[0].dropout",
                                  "value": 0.5, "seed": i}, a)) for i, a in enumerate(low)]
    entries += [(f"d1-{i}", meta({"id": "B", "name": "beta", "kind": "sweep", "setting": "dense_layers[0].dropout",
                                  "value": 0.0, "seed": i}, a)) for i, a in enumerate(high)]
    entries += [("loner", {"test": {"accuracy": 0.5}}), ("odd", meta({"id": 3, "kind": "seeds"}, 0.5)),
                ("odd2", meta({"id": "C", "kind": "other"}, 0.5)), ("odd3", meta({"id": "D", "kind": "seeds"}, "x"))]
    found = group_stats.collect(entries)
    assert [g.id for g in found] == ["A", "B"]
    (a_row,) = group_stats.rows(found[0])
    assert a_row["n"] == 4 and a_row["models"] == ["s0", "s1", "s2", "s3"]
    assert a_row["mean"] == pytest.approx(np.mean(seeds)) and a_row["sd"] == pytest.approx(np.std(seeds, ddof=1))
    assert (a_row["min"], a_row["max"]) == (0.91, 0.95)
    by_value = group_stats.rows(found[1])
    assert [r["value"] for r in by_value] == [0.0, 0.5]  # numbers in increasing order
    assert by_value[0]["mean"] == pytest.approx(sum(high) / 3)
    assert by_value[1]["sd"] == pytest.approx(math.sqrt(sum((x - sum(low) / 3) ** 2 for x in low) / 2))
    assert found[1].label(0.5) == "beta with dense_layers[0].dropout=0.5"
    one = group_stats.describe([0.9])
    assert one["n"] == 1 and math.isnan(one["sd"]) and one["mean"] == 0.9


def test_mean_curve_interpolates_runs_onto_their_common_epochs():
    a = [{"epoch": e, "accuracy": e / 2} for e in (0.1, 0.5, 1.0, 2.0)]
    b = [{"epoch": e, "accuracy": 0.2 + e / 4} for e in (0.2, 1.0, 1.6)]
    curve = group_stats.mean_curve([{"curve": a}, {"curve": b}, {"curve": "junk"}], "accuracy", points=5)
    assert curve["n"] == 2 and curve["epoch"] == pytest.approx(np.linspace(0.2, 1.6, 5))
    ya, yb = np.array(curve["epoch"]) / 2, 0.2 + np.array(curve["epoch"]) / 4  # both straight lines
    assert curve["mean"] == pytest.approx((ya + yb) / 2)
    assert curve["sd"] == pytest.approx(np.std([ya, yb], axis=0, ddof=1))
    assert curve["min"] == pytest.approx(np.minimum(ya, yb)) and curve["max"] == pytest.approx(np.maximum(ya, yb))
    assert group_stats.mean_curve([{"curve": []}]) is None


def test_welch_matches_scipy_and_the_formula_by_hand():
    a, b = [0.981, 0.984, 0.979, 0.983, 0.982], [0.970, 0.972, 0.969]
    result = group_stats.welch(a, b)
    independent = stats.ttest_ind(b, a, equal_var=False)  # the other way round: t flips, p stays
    assert result["p"] == pytest.approx(independent.pvalue) and result["t"] == pytest.approx(-independent.statistic)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert result["t"] == pytest.approx(t) and result["df"] == pytest.approx(df)
    assert result["p"] == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert result["p"] < 0.05
    sentence = group_stats.welch_sentence("A", "B", result)
    assert sentence.startswith("A averages 98.18% over 5 runs, B 97.03% over 3 runs: A is better by 1.15 points")
    assert f"p = {result['p']:.3g} < 0.05" in sentence


def test_welch_says_when_a_difference_is_within_seed_noise_or_cannot_be_tested():
    close = group_stats.welch([0.90, 0.92, 0.91], [0.91, 0.93, 0.90])
    assert close["p"] > 0.5
    assert "within what different seeds give" in group_stats.welch_sentence("A", "B", close)
    with pytest.raises(LabError, match="at least 2 runs on each side, got 1 and 3"):
        group_stats.welch([0.9], [0.9, 0.91, 0.92])
    with pytest.raises(LabError, match="no spread to test"):
        group_stats.welch([0.9, 0.9], [0.9, 0.9])


def test_the_figures_draw_a_band_of_one_sd_and_error_bars_of_one_sd():
    from dashboard import charts_groups

    runs = [{"curve": [{"epoch": e, "loss": 2 - e + k / 10} for e in (0.5, 1.0, 1.5)]} for k in range(3)]
    curve = group_stats.mean_curve(runs, "loss", points=3)
    fig = charts_groups.mean_curves({"g <b>": curve, "empty": None}, "loss").to_dict()
    band, line = fig["data"]
    assert band["fill"] == "toself" and line["name"] == "g &lt;b&gt; (mean of 3)"  # names are inert text
    assert list(band["y"][:3]) == pytest.approx(np.array(curve["mean"]) + 0.1)  # sd of 0, 0.1, 0.2 is 0.1
    assert list(band["y"][3:]) == pytest.approx((np.array(curve["mean"]) - 0.1)[::-1])
    assert "empty" in fig["layout"]["annotations"][0]["text"]

    rows = [{"value": 0.001, "n": 2, "mean": 0.9, "sd": 0.01}, {"value": 0.01, "n": 1, "mean": 0.95, "sd": math.nan}]
    fig = charts_groups.accuracy_vs_value("learning_rate", rows, {0.001: [0.89, 0.91], 0.01: [0.95]}).to_dict()
    dots, means = fig["data"]
    assert list(dots["y"]) == [0.89, 0.91, 0.95] and list(dots["x"]) == [0.001, 0.001, 0.01]
    assert list(means["error_y"]["array"]) == [0.01, 0.0] and fig["layout"]["xaxis"]["type"] == "log"
    words = charts_groups.accuracy_vs_value("optimizer", [{"value": "adam", "n": 1, "mean": 0.9, "sd": math.nan}],
                                            {"adam": [0.9]}).to_dict()
    assert words["layout"]["xaxis"]["type"] == "category"


def test_text_read_from_metadata_is_bounded():
    record = {"id": "X", "name": "n" * 5000, "kind": "sweep", "setting": "s" * 5000, "value": "v" * 5000}
    (group,) = group_stats.collect([("a", meta(record, 0.9)), ("b", meta({**record, "value": 3}, 0.8))])
    assert len(group.name) == len(group.setting) == group_stats.MAX_TEXT
    assert group.values() == ["v" * group_stats.MAX_TEXT, 3]


def test_group_eta_counts_the_recorded_evaluation_for_each_run_to_come():
    from mnist_core.jobs import JobStatus

    def eta(estimate: dict) -> float:
        job = JobStatus(id="j", name="g", state="running", started=0.0, estimate=estimate,
                        subject={"group": {"runs": 3}, "config": {"epochs": 2}},
                        events=[{"event": "run", "run": 1, "elapsed": 0.0}])
        return job.progress(now=1.0)["eta"]

    parts = {"epoch_seconds": 10.0, "startup_seconds": 4.0}
    new_record = eta({**parts, "evaluation_seconds": 5.0})
    old_record = eta({**parts, "eval_seconds": 5.0})
    without = eta(parts)
    # The two runs still to come add 5 s of evaluation each (the current run's ETA counts its own share too).
    assert new_record - without >= 2 * 5.0
    assert old_record == pytest.approx(new_record)
