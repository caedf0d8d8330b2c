"""mnist_core.evaluate: metrics checked by hand, McNemar against scipy, misclassified ordering."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mnist_core import data, evaluate, registry

LABELS = np.tile(np.arange(10), 2)  # 20 images, two of each digit
PREDICTED = LABELS.copy()
PREDICTED[3] = 5    # one 3 taken for a 5
PREDICTED[18] = 3   # one 8 taken for a 3


def _probs(predicted: np.ndarray, top: float = 0.73) -> np.ndarray:
    """Each row puts `top` on the predicted digit and spreads the rest evenly."""
    probs = np.full((len(predicted), 10), (1 - top) / 9, dtype=np.float32)
    probs[np.arange(len(predicted)), predicted] = top
    return probs


def test_metrics_by_hand():
    m = evaluate.metrics(_probs(PREDICTED), LABELS)
    assert m["n"] == 20 and m["accuracy"] == pytest.approx(18 / 20)
    expected = np.diag([2] * 10)
    expected[3, 3], expected[3, 5] = 1, 1
    expected[8, 8], expected[8, 3] = 1, 1
    assert m["confusion_matrix"] == expected.tolist()
    # column 3 holds one right 3 and one wrong 8; column 5 two right 5s and one wrong 3
    precision = [1, 1, 1, 1 / 2, 1, 2 / 3, 1, 1, 1, 1]
    recall = [1, 1, 1, 1 / 2, 1, 1, 1, 1, 1 / 2, 1]
    assert m["precision"] == pytest.approx(precision, abs=1e-6)
    assert m["recall"] == pytest.approx(recall, abs=1e-6)
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall, strict=True)]
    assert m["f1"] == pytest.approx(f1, abs=1e-6) and m["macro_f1"] == pytest.approx(np.mean(f1), abs=1e-6)
    # cross-entropy: 18 images with 0.73 on the truth, 2 with 0.03 on it
    assert m["loss"] == pytest.approx(-(18 * math.log(0.73) + 2 * math.log(0.27 / 9)) / 20, rel=1e-5)


def test_metrics_loss_is_finite_for_a_zero_probability():
    probs = np.zeros((2, 10), np.float32)
    probs[0, 1] = probs[1, 1] = 1.0
    m = evaluate.metrics(probs, np.array([1, 2]))
    assert m["accuracy"] == 0.5 and m["loss"] == pytest.approx(-math.log(1e-7) / 2)
    assert m["precision"][2] == 0.0 and m["recall"][2] == 0.0  # no division by zero


def test_misclassified_most_confidently_wrong_first():
    labels = np.array([0, 1, 2, 3, 4, 5])
    probs = _probs(labels)  # all right ...
    for i, (wrong, confidence) in {1: (7, 0.6), 2: (9, 0.95), 4: (0, 0.8)}.items():  # ... except three
        probs[i] = (1 - confidence) / 9
        probs[i, wrong] = confidence
    assert evaluate.misclassified(probs, labels).tolist() == [2, 4, 1]
    assert evaluate.misclassified(_probs(labels), labels).tolist() == []


def test_mcnemar_counts_and_exact_p_value():
    labels = np.zeros(30, dtype=int)
    a_right = np.array([1] * 7 + [0] * 2 + [1] * 15 + [0] * 6, dtype=bool)   # 7 only A, 2 only B,
    b_right = np.array([0] * 7 + [1] * 2 + [1] * 15 + [0] * 6, dtype=bool)   # 15 both, 6 neither
    pred_a, pred_b = np.where(a_right, 0, 1), np.where(b_right, 0, 2)
    result = evaluate.mcnemar(pred_a, pred_b, labels)
    assert (result["only_a_right"], result["only_b_right"]) == (7, 2)
    # exact two-sided binomial test on the 9 discordant images: 2 * P(X <= 2), X ~ Bin(9, 1/2) = 2 * 46 / 512
    assert result["p_value"] == pytest.approx(92 / 512, rel=1e-12)
    assert result["p_value"] == pytest.approx(2 * stats.binom.cdf(2, 9, 0.5), rel=1e-12)
    swapped = evaluate.mcnemar(pred_b, pred_a, labels)
    assert (swapped["only_a_right"], swapped["only_b_right"]) == (2, 7) and swapped["p_value"] == result["p_value"]
    same = evaluate.mcnemar(pred_a, pred_a, labels)
    assert same == {"only_a_right": 0, "only_b_right": 0, "p_value": 1.0}


def test_mcnemar_on_two_real_models(registry_with, small_mnist):
    registry_with("tiny", default=True)
    x, y = small_mnist.x_test, small_mnist.y_test
    pa = evaluate.probabilities(registry.load("default"), x).argmax(1)
    pb = evaluate.probabilities(registry.load("tiny"), x).argmax(1)
    result = evaluate.mcnemar(pa, pb, y)
    only_a, only_b = int(((pa == y) & (pb != y)).sum()), int(((pa != y) & (pb == y)).sum())
    assert (result["only_a_right"], result["only_b_right"]) == (only_a, only_b)
    assert result["p_value"] == pytest.approx(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue, rel=1e-12)
    assert only_a > only_b and result["p_value"] < 1e-6  # the 99% CNN beats a 1-epoch MLP on real digits


def test_probabilities_in_batches_equal_one_call(registry_with, small_mnist):
    registry_with("tiny")
    model = registry.load("tiny")
    x = small_mnist.x_test[:25]
    batched = evaluate.probabilities(model, x, batch_size=10)
    whole = np.asarray(model(data.normalise(x), training=False))
    assert batched.shape == (25, 10) and np.allclose(batched, whole, atol=1e-6)
    assert evaluate.probabilities(model, x[:0]).shape == (0, 10)
    metrics, probs = evaluate.evaluate(model, x, small_mnist.y_test[:25])
    assert np.allclose(probs, whole, atol=1e-6) and metrics["n"] == 25
