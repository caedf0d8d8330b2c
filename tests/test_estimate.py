"""mnist_core.estimate: a whole job's estimate in parts, timed through the job's own training path."""

from __future__ import annotations

import math

import pytest

from mnist_core import cost, estimate
from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.spec import DenseLayer, ModelSpec, TrainConfig

SMALL_MLP = ModelSpec(kind="mlp", dense_layers=[DenseLayer(16)])
TIMED = {"step": 0.01, "step_mean": 0.01, "setup": 1.0, "build": 0.2, "validation_trace": 0.25,
         "forward_1000": 0.1, "evaluate_1000": 0.3}


@pytest.fixture
def quick_timing(monkeypatch):
    """Time only the minimum number of steps: these tests check what is timed, not how long it takes."""
    monkeypatch.setattr(estimate, "MIN_TIMED_SECONDS", 0.0)


def test_the_parts_add_up_to_the_total():
    config = TrainConfig(batch_size=128, epochs=3, validation_split=0.1)
    parts = estimate.parts_from_timing(config, TIMED)
    steps = math.ceil(54_000 / 128)
    assert parts["epoch_seconds"] == pytest.approx(steps * 0.01 + 6 * 0.1)  # 6,000 validation images
    assert parts["startup_seconds"] == pytest.approx(estimate.PROCESS_START_SECONDS + 1.0 + 0.25)
    assert parts["evaluation_seconds"] == pytest.approx(estimate.SAVE_SECONDS + 10 * 0.3)  # the 10,000 test images
    assert parts["total_seconds"] == pytest.approx(
        parts["startup_seconds"] + 3 * parts["epoch_seconds"] + parts["evaluation_seconds"])


def test_no_validation_split_means_no_validation_time():
    parts = estimate.parts_from_timing(TrainConfig(validation_split=0.0, epochs=1), TIMED)
    assert parts["validation_seconds"] == 0
    assert parts["epoch_seconds"] == pytest.approx(math.ceil(60_000 / 128) * 0.01)


def test_more_epochs_cost_more_epochs_only():
    one = estimate.parts_from_timing(TrainConfig(epochs=1), TIMED)
    five = estimate.parts_from_timing(TrainConfig(epochs=5), TIMED)
    assert five["total_seconds"] - one["total_seconds"] == pytest.approx(4 * one["epoch_seconds"])


def test_a_spec_too_heavy_to_time_is_estimated_from_flops_in_the_same_parts(monkeypatch, small_mnist):
    monkeypatch.setattr("keras.Model", lambda *a, **k: pytest.fail("a model was built"))
    spec, _ = specs.preset("cnn-classic").copy()
    config = TrainConfig(batch_size=1024, epochs=2)
    found = estimate.job_estimate(spec, config, small_mnist)
    assert not found["measured"] and "not timed" in found["note"]
    epoch_train = cost.flops_epoch_seconds(spec, config, 54_000)
    assert found["epoch_seconds"] > epoch_train  # validation on top
    assert found["total_seconds"] == pytest.approx(
        found["startup_seconds"] + 2 * found["epoch_seconds"] + found["evaluation_seconds"])
    with pytest.raises(LabError, match="not timed: timing 9 batches"):
        estimate.time_steps(spec, config, small_mnist)
    with pytest.raises(LabError, match="batch_size 4096 needs about"):
        estimate.job_estimate(spec, TrainConfig(batch_size=4096), small_mnist)


def test_timing_takes_more_steps_only_within_the_bounds():
    spec, config = specs.preset("cnn-classic").copy()
    most = estimate.most_steps(spec, config, 8)
    assert most >= 8 and cost.timing_flops(spec, config, most) <= cost.MAX_TIMED_FLOPS
    assert cost.timing_flops(spec, config, most + 1) > cost.MAX_TIMED_FLOPS or most == estimate.MAX_TIMED_STEPS
    assert estimate.most_steps(SMALL_MLP, TrainConfig(), 8) == estimate.MAX_TIMED_STEPS
    assert estimate.most_steps(SMALL_MLP, TrainConfig(batch_size=20_000), 8) == 8  # 54,000 images: 2 batches


def test_timing_runs_the_configs_augmentation_in_the_pipeline(monkeypatch, small_mnist, quick_timing):
    from mnist_core import train

    levels, calls = [], []
    real = train.make_augmenter

    def spy(level, seed):
        levels.append(level)
        augmenter = real(level, seed)
        return None if augmenter is None else (lambda images: calls.append(1) or augmenter(images))

    monkeypatch.setattr(train, "make_augmenter", spy)
    timed = estimate.time_steps(SMALL_MLP, TrainConfig(batch_size=64, augment="real-input"), small_mnist)
    assert levels[0] == "real-input" and calls  # the augmenter is part of the timed pipeline
    assert timed["step"] > 0 and timed["forward_1000"] > 0 and timed["evaluate_1000"] > 0


def test_timing_trains_adversarially_when_the_config_does(monkeypatch, small_mnist, quick_timing):
    from mnist_core import adversarial

    traced = []
    real = adversarial.AdversarialTrainer.train_step
    monkeypatch.setattr(adversarial.AdversarialTrainer, "train_step",
                        lambda self, data: traced.append(self.eps) or real(self, data))
    estimate.time_steps(SMALL_MLP, TrainConfig(batch_size=64), small_mnist)
    assert traced == []
    estimate.time_steps(SMALL_MLP, TrainConfig(batch_size=64, adversarial_eps=0.1), small_mnist)
    assert traced and traced[0] == pytest.approx(0.1)


def test_a_measured_estimate_is_a_sum_of_measured_parts(small_mnist, quick_timing):
    found = estimate.job_estimate(SMALL_MLP, TrainConfig(batch_size=64, epochs=2), small_mnist)
    assert found["measured"] and "real training steps" in found["note"]
    assert found["startup_seconds"] > estimate.PROCESS_START_SECONDS
    assert found["evaluation_seconds"] > estimate.SAVE_SECONDS
    assert found["total_seconds"] == pytest.approx(
        found["startup_seconds"] + 2 * found["epoch_seconds"] + found["evaluation_seconds"])
    assert set(estimate.recorded(found)) == {"startup_seconds", "epoch_seconds", "evaluation_seconds",
                                             "validation_seconds", "total_seconds"}
