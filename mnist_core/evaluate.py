"""Test-set metrics from predicted probabilities, and pairwise model comparison."""

from __future__ import annotations

import time

import numpy as np

from mnist_core import data as mnist_data

# Images per forward pass. Through the traced function, 100 took as long as 250 for the 10,000 test images and
# raised the process's peak by ~45 MB instead of ~90 (oneDNN keeps its largest buffers for the process's life,
# and the dashboard's server runs these passes; benchmarks/eval_throughput.py, details["forward_pass"]).
EVAL_BATCH = 100


def probabilities(model, images_uint8: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Softmax outputs of a Keras model for uint8 images, in batches, through its traced forward pass."""
    from mnist_core.predict import forward  # imports TensorFlow, which the statistics here never need

    if not len(images_uint8):
        return np.zeros((0, 10), np.float32)
    run = forward(model)
    # Normalised a batch at a time: the whole test set as float32 would be 31 MB more at the peak.
    return np.concatenate([run(mnist_data.normalise(images_uint8[i : i + batch_size]))
                           for i in range(0, len(images_uint8), batch_size)])


def metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Loss, accuracy, confusion matrix and per-class precision/recall/F1 (all JSON-ready)."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probs.argmax(axis=1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0))))
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    tp = np.diag(confusion).astype(float)
    predicted_counts, true_counts = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted_counts, out=np.zeros(10), where=predicted_counts > 0)
    recall = np.divide(tp, true_counts, out=np.zeros(10), where=true_counts > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(10), where=(precision + recall) > 0)
    return {
        "loss": loss,
        "accuracy": float((predicted == labels).mean()),
        "confusion_matrix": confusion.tolist(),
        "precision": precision.round(6).tolist(),
        "recall": recall.round(6).tolist(),
        "f1": f1.round(6).tolist(),
        "macro_f1": float(f1.mean()),
        "n": int(len(labels)),
    }


def evaluate(model, images_uint8: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray]:
    probs = probabilities(model, images_uint8)
    return metrics(probs, labels), probs


def evaluate_with_rate(model, images_uint8: np.ndarray, labels: np.ndarray) -> tuple[dict, float]:
    """evaluate()'s metrics and the images per second of that same pass, for a model's metadata. Timing the
    pass itself costs nothing more; the figure includes the model's first call, so it reads a little low, and
    Compare measures speed afresh anyway."""
    started = time.perf_counter()
    scores, _ = evaluate(model, images_uint8, labels)
    return scores, len(images_uint8) / max(time.perf_counter() - started, 1e-9)


def misclassified(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of wrong predictions, most confidently wrong first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    return wrong[np.argsort(-probs[wrong, predicted[wrong]])]


def mcnemar(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> dict:
    """McNemar's exact test: do A and B err on different images more than chance would say?"""
    # Imported here: scipy.stats takes about a second to import, and every training process
    # imports this module for its final evaluation but never compares two models.
    from scipy.stats import binomtest

    a_right, b_right = pred_a == labels, pred_b == labels
    only_a = int(np.sum(a_right & ~b_right))
    only_b = int(np.sum(~a_right & b_right))
    n = only_a + only_b
    p_value = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)
    return {"only_a_right": only_a, "only_b_right": only_b, "p_value": p_value}


# ---------- the user's own digits ----------


def my_digits_report(probabilities: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Per model: accuracy and confusion matrix on my digits; and the positions every model gets wrong."""
    labels = np.asarray(labels, dtype=np.int64)
    per_model, wrong_everywhere = {}, np.ones(len(labels), bool)
    for name, probs in probabilities.items():
        per_model[name] = metrics(probs, labels)
        wrong_everywhere &= probs.argmax(axis=1) != labels
    return {"models": per_model, "all_wrong": np.flatnonzero(wrong_everywhere) if probabilities else np.array([], int)}


def on_my_digits(models: dict, path=None) -> dict | None:
    """Each model's accuracy and confusion matrix on my digits, and the digits every model gets wrong.

    `models` maps names to Keras models. None when no digits are saved. The inputs are in the report
    (`x`, `y`, `ids`) so a page can show the images behind `all_wrong` (positions into them).
    """
    from mnist_core import my_digits

    x, y, ids = my_digits.arrays(path)
    if not len(x):
        return None
    report = my_digits_report({name: probabilities(model, x) for name, model in models.items()}, y)
    return {**report, "x": x, "y": y, "ids": ids}
