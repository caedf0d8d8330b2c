"""Calibration measures, temperature scaling, the validation split it is fitted on, the cached report, and
the Predictor's temperature."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mnist_core import calibration, calibration_report, evaluate, registry
from mnist_core import data as mnist_data
from mnist_core.errors import LabError


def synthetic(confidence: np.ndarray, right: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities whose top label (a random digit) has `confidence`, the rest split evenly; the true label
    is the top one where `right`, another digit elsewhere."""
    n = len(confidence)
    top = rng.integers(0, 10, n)
    probs = np.repeat(((1 - confidence) / 9)[:, None], 10, axis=1)
    probs[np.arange(n), top] = confidence
    labels = np.where(right, top, (top + rng.integers(1, 10, n)) % 10)
    return probs, labels


def test_ece_of_a_calibrated_set_is_near_zero_and_of_an_overconfident_one_large():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 40_000)
    probs, labels = synthetic(confidence, rng.random(40_000) < confidence, rng)
    assert calibration.ece(probs, labels) < 0.01
    # Same answers, but right only 60% of the time whatever the confidence says.
    over, over_labels = synthetic(np.full(40_000, 0.99), rng.random(40_000) < 0.6, rng)
    assert calibration.ece(over, over_labels) == pytest.approx(0.39, abs=0.01)


def test_reliability_bins_by_hand():
    probs = np.full((4, 10), 0.0)
    probs[0, 3], probs[0, 4] = 0.95, 0.05  # bin (0.9, 1.0], right
    probs[1, 3], probs[1, 4] = 0.91, 0.09  # bin (0.9, 1.0], wrong
    probs[2, 1], probs[2, 2] = 0.55, 0.45  # bin (0.5, 0.6], right
    probs[3, 7], probs[3, 8] = 0.6, 0.4  # exactly 0.6: bin (0.5, 0.6], wrong
    labels = np.array([3, 4, 1, 8])
    table = calibration.reliability(probs, labels, bins=10)
    high, mid = table["bins"][9], table["bins"][5]
    assert (high["count"], mid["count"]) == (2, 2)
    assert high["confidence"] == pytest.approx(0.93) and high["accuracy"] == 0.5
    assert mid["confidence"] == pytest.approx(0.575) and mid["accuracy"] == 0.5
    assert sum(b["count"] for b in table["bins"]) == 4 and table["bins"][0]["accuracy"] is None
    assert table["ece"] == pytest.approx(0.5 * abs(0.5 - 0.93) + 0.5 * abs(0.5 - 0.575))


def test_nll_and_brier_by_hand():
    probs = np.zeros((2, 10))
    probs[0, :3] = [0.7, 0.2, 0.1]
    probs[1, :3] = [0.1, 0.6, 0.3]
    labels = np.array([0, 2])
    assert calibration.nll(probs, labels) == pytest.approx(-(math.log(0.7) + math.log(0.3)) / 2)
    first = 0.3**2 + 0.2**2 + 0.1**2
    second = 0.1**2 + 0.6**2 + 0.7**2
    assert calibration.brier(probs, labels) == pytest.approx((first + second) / 2)
    assert calibration.brier(np.eye(10)[[1, 2]], np.array([2, 2])) == pytest.approx(1.0)  # 2 per wrong answer


def test_confidence_histograms_split_right_from_wrong():
    probs, labels = synthetic(np.array([0.97, 0.98, 0.42]), np.array([True, False, True]), np.random.default_rng(1))
    hist = calibration.confidence_histograms(probs, labels, bins=10)
    assert hist["right"][9] == 1 and hist["wrong"][9] == 1 and hist["right"][4] == 1
    assert sum(hist["right"]) == 2 and sum(hist["wrong"]) == 1 and len(hist["edges"]) == 11


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fitted_temperature_recovers_the_one_that_made_the_labels(true_t):
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (20_000, 10))
    scaled = calibration.softmax(logits / true_t)
    labels = (scaled.cumsum(axis=1) > rng.random((20_000, 1))).argmax(axis=1)
    assert calibration.fit_temperature(logits, labels, kind="logits") == pytest.approx(true_t, rel=0.05)
    # log-probabilities are logits shifted per image, so probabilities give the same fit
    assert calibration.fit_temperature(calibration.softmax(logits), labels) == pytest.approx(true_t, rel=0.05)


def test_temperature_changes_confidence_not_the_answer():
    probs = calibration.softmax(np.random.default_rng(3).normal(0, 4, (50, 10)))
    softer = calibration.apply_temperature(probs, 3.0)
    assert (softer.argmax(1) == probs.argmax(1)).all()
    assert (softer.max(1) < probs.max(1)).all()
    assert calibration.apply_temperature(probs, 1.0) is probs


@pytest.mark.parametrize("call, words", [
    (lambda: calibration.ece(np.full((3, 9), 1 / 9), [0, 1, 2]), "shape (N, 10)"),
    (lambda: calibration.nll(np.full((2, 10), 0.1), [0, 10]), "labels"),
    (lambda: calibration.brier(np.full((2, 10), 0.5), [0, 1]), "sum to 1"),
    (lambda: calibration.reliability(np.full((2, 10), 0.1), [0, 1], bins=0), "bins"),
    (lambda: calibration.apply_temperature(np.full((1, 10), 0.1), 50), "temperature"),
    (lambda: calibration_report.cache_path("../x"), "sha256"),
])
def test_bad_input_is_one_clear_line(call, words):
    with pytest.raises(LabError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_validation_indices_are_the_split_training_uses(small_mnist, monkeypatch):
    """Spy on data.split while train.fit runs: the images it held out are the ones calibration fits on."""
    from mnist_core import spec as specs
    from mnist_core import train

    seen = {}
    real_split = mnist_data.split

    def spy(x, y, validation_split, seed):
        out = real_split(x, y, validation_split, seed)
        seen["x_val"] = out[1][0]
        return out

    monkeypatch.setattr(mnist_data, "split", spy)
    config = specs.TrainConfig(epochs=1, batch_size=256, validation_split=0.15, seed=7)
    train.fit(specs.ModelSpec(kind="mlp", dense_layers=[specs.DenseLayer(8)]), config, mnist=small_mnist)
    monkeypatch.setattr(mnist_data, "split", real_split)
    idx = calibration.validation_indices([config], len(small_mnist.x_train))
    assert len(idx) == 300
    np.testing.assert_array_equal(np.sort(small_mnist.x_train[idx].reshape(300, -1), axis=0),
                                  np.sort(seen["x_val"].reshape(300, -1), axis=0))
    other_seed = calibration.validation_indices([specs.TrainConfig(validation_split=0.15, seed=8)], 2000)
    assert len(np.intersect1d(idx, other_seed)) < 150  # the seed moves the split
    both = calibration.validation_indices([config, specs.TrainConfig(validation_split=0.15, seed=8)], 2000)
    np.testing.assert_array_equal(both, np.intersect1d(idx, other_seed))
    assert len(calibration.validation_indices([specs.TrainConfig(validation_split=0.0)], 2000)) == 0


def test_report_on_a_real_model_lowers_validation_nll_and_is_cached(registry_with, small_mnist, monkeypatch):
    root = registry_with("tiny")
    meta = registry.read_metadata("tiny")
    model = registry.load("tiny")
    progress = []
    rep = calibration_report.report("tiny", small_mnist, on_progress=lambda f, t: progress.append(f))
    assert rep["temperature_fitted"] and rep["validation_images"] == 200
    assert rep["validation_nll_after"] < rep["validation_nll_before"]
    # Independent check: the NLL on the model's own validation images, recomputed here, at T and at 1.
    _, (x_val, y_val) = mnist_data.split(small_mnist.x_train, small_mnist.y_train, 0.1, meta["config"]["seed"])
    val_probs = evaluate.probabilities(model, x_val)
    assert rep["validation_nll_before"] == pytest.approx(evaluate.metrics(val_probs, y_val)["loss"], rel=1e-3)
    for nearby in (rep["temperature"] * 0.9, rep["temperature"] * 1.1):
        assert rep["validation_nll_after"] < calibration.nll(calibration.apply_temperature(val_probs, nearby), y_val)
    assert rep["before"]["accuracy"] == pytest.approx(meta["test"]["accuracy"])  # same test images, same model
    assert rep["after"]["accuracy"] == rep["before"]["accuracy"]
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)

    stored = root.parent / "cache" / "calibration" / f"{meta['model_sha256']}.json"
    assert json.loads(stored.read_text())["temperature"] == rep["temperature"]
    assert calibration_report.stored_temperature(meta["model_sha256"]) == rep["temperature"]
    assert "tiny" in [e.name for e in registry.list_models()] and len(registry.list_models()) == 1

    def not_again(*args, **kwargs):
        raise AssertionError("computed again despite the cache")

    monkeypatch.setattr(calibration_report, "compute_report", not_again)
    assert calibration_report.report("tiny", small_mnist) == rep
    other_data = mnist_data.Mnist(small_mnist.x_train, small_mnist.y_train, small_mnist.x_test[:500],
                                  small_mnist.y_test[:500], source="half")
    assert calibration_report.cached_report(meta["model_sha256"], other_data) is None  # measured on other images
    stored.write_text("{not json")
    assert calibration_report.cached_report(meta["model_sha256"], small_mnist) is None


def test_an_ensemble_is_fitted_on_the_images_none_of_its_members_trained_on(registry_with, small_mnist):
    from mnist_core import ensemble

    root = registry_with("a", "b", "c")
    meta_b = json.loads((root / "b" / "metadata.json").read_text())
    meta_b["config"]["seed"] = 2  # b's metadata now claims another split; its file is a's, so it stays loadable
    (root / "b" / "metadata.json").write_text(json.dumps(meta_b))
    ensemble.save(["a", "b"], "ab", mnist=small_mnist)
    meta = registry.read_metadata("ab")
    shared = calibration.validation_indices([registry.read_metadata(n)["config"] for n in "ab"], 2000)
    assert 0 < len(shared) < 200 and calibration_report.training_configs(meta) == [registry.read_metadata(n)["config"]
                                                                           for n in "ab"]
    rep = calibration_report.report("ab", small_mnist)
    assert rep["validation_images"] == len(shared) and rep["model_sha256"] == meta["model_sha256"]
    assert rep["temperature"] == 1.0 and "100 are needed" in rep["temperature_note"]  # 200 x 10% x 10%
    assert rep["before"]["accuracy"] == pytest.approx(meta["test"]["accuracy"])
    ensemble.save(["a", "c"], "ac", mnist=small_mnist)  # one split for both: all 200 of it
    rep = calibration_report.report("ac", small_mnist)
    assert rep["validation_images"] == 200 and rep["temperature_fitted"]
    assert rep["validation_nll_after"] < rep["validation_nll_before"]


def test_a_model_trained_on_other_images_gets_no_temperature(registry_with, small_mnist, full_mnist):
    """The fixture model trained on 1,800 of the fixture's 2,000 images: on the full set, its split would hold
    out images it trained on, so nothing is fitted there."""
    registry_with("tiny")
    meta = registry.read_metadata("tiny")
    assert calibration_report.trained_on_this_split(meta, len(small_mnist.x_train))
    assert not calibration_report.trained_on_this_split(meta, len(full_mnist.x_train))
    assert calibration_report.training_configs(meta, len(full_mnist.x_train)) == []
    assert calibration_report.training_configs(meta, len(small_mnist.x_train)) == [meta["config"]]
    rep = calibration_report.report("tiny", full_mnist)
    assert not rep["temperature_fitted"] and "trained on other images" in rep["temperature_note"]


def test_no_validation_split_keeps_temperature_one(small_mnist):
    from mnist_core import spec as specs
    from mnist_core.build import build

    model = build(specs.ModelSpec(kind="mlp", dense_layers=[specs.DenseLayer(8)]))
    rep = calibration_report.compute_report(model, small_mnist, [{"validation_split": 0.0}])
    assert rep["temperature"] == 1.0 and not rep["temperature_fitted"] and "not fitted" in rep["temperature_note"]
    assert rep["after"]["ece"] == rep["before"]["ece"]


def test_predictor_at_temperature_one_is_the_old_predictor(registry_with, small_mnist):
    from mnist_core.predict import Predictor

    registry_with("tiny")
    plain = Predictor.load("tiny")
    x = mnist_data.normalise(small_mnist.x_test[:20])[..., 0]
    direct = np.asarray(plain.model(x[..., None], training=False))
    np.testing.assert_allclose(plain.probabilities(x), direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(plain.with_temperature(1.0).probabilities(x), plain.probabilities(x))
    warm = plain.with_temperature(2.0)
    assert warm._forward is plain._forward  # noqa: SLF001  the traced function is shared, not traced again
    np.testing.assert_allclose(warm.probabilities(x), calibration.apply_temperature(direct, 2.0), rtol=1e-4, atol=1e-6)
    assert warm.classify(x[0]).digit == plain.classify(x[0]).digit
    assert warm.classify(x[0]).confidence < plain.classify(x[0]).confidence
    with pytest.raises(LabError, match="temperature"):
        plain.with_temperature(0.0)
