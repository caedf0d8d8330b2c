"""The speed work: the in-memory tf.data pipeline, XLA off, batch-norm that is usable within one
epoch, the fast-cnn recipe on real digits, and the benchmark helpers that fill the README table."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest

from mnist_core import data as mnist_data
from mnist_core import evaluate
from mnist_core.build import build
from mnist_core.presets import preset
from mnist_core.spec import REAL_INPUT
from mnist_core.train import compile_model, fit, make_dataset

BENCHMARKS = __import__("pathlib").Path(__file__).resolve().parent.parent / "benchmarks"


def test_pipeline_gives_every_image_once_per_epoch_normalised_and_reshuffled(small_mnist):
    x, y = small_mnist.x_train[:500], small_mnist.y_train[:500]
    ds = make_dataset(x, y, 64, shuffle_seed=3)
    epochs = []
    for _ in range(2):
        images, labels = zip(*[(a.numpy(), b.numpy()) for a, b in ds], strict=True)
        epochs.append((np.concatenate(images), np.concatenate(labels)))
    for images, labels in epochs:
        assert images.shape == (500, 28, 28, 1) and images.dtype == np.float32
        assert 0.0 <= images.min() and images.max() <= 1.0
        # every training image exactly once, with its own label
        flat = {img.tobytes(): lab for img, lab in zip(images, labels, strict=True)}
        expected = {img.tobytes(): lab for img, lab in zip(mnist_data.normalise(x), y, strict=True)}
        assert flat == expected
    assert not np.array_equal(epochs[0][1], epochs[1][1])  # a new order each epoch


def test_unshuffled_pipeline_keeps_order(small_mnist):
    x, y = small_mnist.x_test[:300], small_mnist.y_test[:300]
    images = np.concatenate([a.numpy() for a, _ in make_dataset(x, y, 128)])
    np.testing.assert_array_equal(images, mnist_data.normalise(x))


def test_pipeline_runs_without_the_autotuner(small_mnist):
    # Its model thread stalled fit's end by 11-17 s (benchmarks/fit_stall.py); augmentation adds a map stage.
    for augment in (False, REAL_INPUT):
        ds = make_dataset(small_mnist.x_train[:100], small_mnist.y_train[:100], 50, shuffle_seed=0, augment=augment)
        assert ds.options().autotune.enabled is False


def test_training_runs_without_xla(small_mnist):
    spec, config = preset("fast-cnn").copy()
    model = build(spec)
    compile_model(model, config, 10)
    assert model.jit_compile is False


def test_fast_cnn_learns_real_digits_within_one_short_run(small_mnist):
    """Batch-norm's running statistics must settle within the first epoch, or test accuracy stays near chance."""
    spec, config = preset("fast-cnn").copy()
    config = replace(config, epochs=2, batch_size=64, validation_split=0.0)
    result = fit(spec, config, mnist=small_mnist)
    probs = evaluate.probabilities(result.model, small_mnist.x_test)
    accuracy = float((probs.argmax(1) == small_mnist.y_test).mean())
    assert accuracy >= 0.9, accuracy
    scores, rate = evaluate.evaluate_with_rate(result.model, small_mnist.x_test, small_mnist.y_test)
    assert scores["accuracy"] == accuracy and rate > 0


@pytest.fixture
def bench_common(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("common", None)
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    return common


def test_percentile_matches_numpy(bench_common):
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 50, 95, 100):
        assert bench_common.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_target_row_and_results_table(bench_common):
    row = bench_common.target("p95", [12.0, 20.0, 14.0], "<= 15 ms", "ms", False)
    assert (row["median"], row["min"], row["max"], row["n"]) == (14.0, 12.0, 20.0, 3)
    bench_common.RESULTS.mkdir(parents=True)
    (bench_common.RESULTS / "x.json").write_text(json.dumps({"benchmark": "predict_latency", "quick": False,
                                                             "targets": [row], "machine": {}}))
    (bench_common.RESULTS / "other.json").write_text(json.dumps({"not": "ours"}))
    rows = bench_common.table_rows(bench_common.load_results())
    assert rows == [["p95", "<= 15 ms", "14 ms", "12 - 20", "3", "NO", "predict_latency"]]


def test_report_rewrites_only_its_own_section(bench_common, monkeypatch, tmp_path):
    sys.modules.pop("report", None)
    import report

    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nIntro.\n")
    monkeypatch.setattr(report, "README", readme)
    machine = {"nproc": 2, "cpu": "Test CPU", "ram_gb": 8.0, "load_average_1min": 3.0}
    monkeypatch.setattr(report.common, "load_results", lambda: [{
        "benchmark": "job_overhead", "machine": machine, "details": {},
        "targets": [bench_common.target("job / CLI", [1.01, 1.03], "<= 1.10", "x", True)]}])
    report.main()
    report.main()  # a second run replaces the section instead of adding another
    text = readme.read_text()
    assert text.startswith("# Title\n\nIntro.\n")
    assert text.count("## Performance") == 1 and text.count(report.START) == 1
    assert "| job / CLI | <= 1.10 | 1.02 x | 1.01 - 1.03 | 2 | yes | job_overhead |" in text
    assert "2 CPU cores (Test CPU), 8.0 GB RAM" in text


def test_a_lever_says_when_it_did_not_get_the_precision_it_asked_for(bench_common):
    sys.modules.pop("speed_levers", None)
    sys.modules.pop("report", None)
    import report
    import speed_levers

    def run(seconds, precision="float32"):
        return {"seconds": seconds, "test_accuracy": 0.99, "precision": precision}

    runs = {"plain": [run(40.0), run(36.0)], "bf16 mixed precision forced": [run(38.0), run(36.0)],
            "batch 256": [run(30.0), run(30.0)]}
    names = [t["target"] for t in speed_levers.targets_of(runs)]
    assert "fast-cnn whole process, bf16 mixed precision forced (trained in float32: no bf16 on this CPU)" in names
    assert "fast-cnn whole process, batch 256" in names  # asked for no precision: nothing to say
    runs["bf16 mixed precision forced"] = [run(20.0, "mixed_bfloat16"), run(18.0, "mixed_bfloat16")]
    assert "fast-cnn whole process, bf16 mixed precision forced" in [t["target"] for t in
                                                                     speed_levers.targets_of(runs)]
    # The README's lever table gives the median of two runs as their mean, as the target rows do.
    table = report.levers_table({"details": {"runs": runs, "seeds": [0, 1]}, "machine": {}})
    assert "| plain | float32 | 38.0 s | - | 99.00%, 99.00% |" in table
    assert "| batch 256 | float32 | 30.0 s | 1.27x | 99.00%, 99.00% |" in table
    assert "| bf16 mixed precision forced | mixed_bfloat16 | 19.0 s | 2.00x | 99.00%, 99.00% |" in table


ONEDNN_PROBE = """
import os, sys
sys.path.insert(0, {root!r})
from mnist_core.tf_quiet import use_lab_settings
use_lab_settings()
print("TF_ENABLE_ONEDNN_OPTS=" + str(os.environ.get("TF_ENABLE_ONEDNN_OPTS")), flush=True)
if {train}:
    import tensorflow as tf
    x, w = tf.random.normal([8, 13, 13, 16]), tf.Variable(tf.random.normal([3, 3, 16, 32]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.conv2d(x, w, 1, "SAME") ** 2)
    tape.gradient(loss, w)
"""


def lab_process(env: dict, train: bool) -> str:
    import os
    import subprocess

    code = ONEDNN_PROBE.format(root=str(BENCHMARKS.parent), train=train)
    base = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "MNIST_TENSORFLOW_DEFAULTS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**base, **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_lab_trains_with_onednn_convolutions():
    # Without TF_ENABLE_ONEDNN_OPTS=1 TensorFlow ran convolution gradients through Eigen on an AVX2 CPU.
    out = lab_process({"ONEDNN_VERBOSE": "1"}, train=True)
    assert "TF_ENABLE_ONEDNN_OPTS=1" in out
    assert any(line.startswith("onednn_verbose") and ",convolution," in line and "backward" in line
               for line in out.splitlines())


def test_the_environment_or_the_recipe_switch_wins_over_the_lab_setting():
    assert "TF_ENABLE_ONEDNN_OPTS=0" in lab_process({"TF_ENABLE_ONEDNN_OPTS": "0"}, train=False)
    assert "TF_ENABLE_ONEDNN_OPTS=None" in lab_process({"MNIST_TENSORFLOW_DEFAULTS": "1"}, train=False)


def test_the_keras_recipe_runs_with_tensorflows_own_onednn_default(bench_common, monkeypatch):
    sys.modules.pop("time_to_accuracy", None)
    import time_to_accuracy

    from mnist_core import tf_quiet

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")  # as this process has it from common
    assert time_to_accuracy.child_environment({})["TF_ENABLE_ONEDNN_OPTS"] == "1"  # fast-cnn: the lab's setting
    recipe = time_to_accuracy.child_environment({tf_quiet.TENSORFLOW_DEFAULTS: "1"})
    assert "TF_ENABLE_ONEDNN_OPTS" not in recipe
    chosen = time_to_accuracy.child_environment({tf_quiet.TENSORFLOW_DEFAULTS: "1", "TF_ENABLE_ONEDNN_OPTS": "0"})
    assert chosen["TF_ENABLE_ONEDNN_OPTS"] == "0"  # a lever's own value stays


def test_the_preset_table_marks_a_preset_that_lost_more_than_a_tenth_of_a_point(bench_common, monkeypatch, tmp_path):
    sys.modules.pop("report", None)
    import presets
    import report

    dated = {"machine": {"simd": "AVX2"}, "created": "2026-12-07 23:50 UTC", "precision": "float32", "epochs": 3}
    results = {"mlp-2x128": {**dated, "test_accuracy": 0.9712},  # 0.09 point below 97.21%: kept
               "mlp-2x28": {**dated, "test_accuracy": 0.9600},  # 0.15 point below 96.15%: lost
               "cnn-classic": {"epochs": 12, "test_accuracy": 0.9912},  # measured before rows had a date
               "fast-cnn": {**dated, "test_accuracy": 0.9901, "quick": True}}  # one quick epoch: no claim
    out = tmp_path / "presets.json"
    out.write_text(json.dumps({"benchmark": "presets", "results": results}))
    monkeypatch.setattr(presets, "OUT", out)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in report.presets_table() if line.startswith("| ")}
    assert rows["mlp-2x128"].endswith("| 97.12% | 97.21% | -0.09 | yes | AVX2, 2026-12-07 |")
    assert rows["mlp-2x28"].endswith("| 96.00% | 96.15% | -0.15 | NO | AVX2, 2026-12-07 |")
    assert rows["cnn-classic"].endswith("| - | not recorded |")
    assert "fast-cnn" not in rows
