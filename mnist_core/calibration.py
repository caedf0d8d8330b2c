"""Can a model's confidence be trusted? Reliability, ECE, NLL, Brier, and temperature scaling.

Measures are of the top label: a model saying "7 at 90%" should be right on 90% of such answers. Temperature
scaling divides the logits by one T fitted on the model's own validation split (never the test set): T > 1
softens over-confidence, and the predicted digit never changes. The lab's models end in softmax, so log p
serve as logits (softmax is shift-invariant: log p differs from the logits by one constant per image).

A saved model's report, cached per model file, is built in mnist_core.calibration_report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

from mnist_core import data as mnist_data
from mnist_core.errors import LabError

DEFAULT_BINS = 15
MAX_BINS = 100
HISTOGRAM_BINS = 20
MAX_IMAGES = 70_000  # all of MNIST: no caller has more
CLASSES = 10
TEMPERATURE_BOUNDS = (0.05, 20.0)
SMALLEST_PROBABILITY = 1e-30  # float32 softmax underflows to 0; log(0) would be -inf
PROBABILITY_SUM_TOLERANCE = 1e-3


# ---------- input checks ----------


def check_inputs(values, labels, what: str = "probabilities") -> tuple[np.ndarray, np.ndarray]:
    """(N, 10) finite floats and N labels in 0..9, 1 <= N <= MAX_IMAGES; LabError naming what is wrong."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    if values.ndim != 2 or values.shape[1] != CLASSES:
        raise LabError(f"{what}: expected shape (N, {CLASSES}), got {values.shape}")
    if not 1 <= len(values) <= MAX_IMAGES:
        raise LabError(f"{what}: {len(values):,} rows; between 1 and {MAX_IMAGES:,} are accepted")
    if labels.shape != (len(values),):
        raise LabError(f"labels: expected {len(values):,} labels, one per row of {what}, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= CLASSES:
        raise LabError(f"labels: must be whole numbers 0..{CLASSES - 1}")
    if not np.isfinite(values).all():
        raise LabError(f"{what}: contains NaN or infinite values")
    return values, labels.astype(np.int64)


def looks_like_probabilities(values: np.ndarray) -> bool:
    values = np.asarray(values, dtype=np.float64)
    return bool((values >= 0).all() and (values <= 1).all()
                and np.allclose(values.sum(axis=1), 1.0, atol=PROBABILITY_SUM_TOLERANCE))


def _check_probabilities(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = check_inputs(probs, labels)
    if not looks_like_probabilities(probs):
        raise LabError("probabilities: each row must be in [0, 1] and sum to 1 (is the model's last layer a softmax?)")
    return probs, labels


def check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= bins <= MAX_BINS:
        raise LabError(f"bins: must be a whole number from 1 to {MAX_BINS}, got {bins!r}")
    return int(bins)


# ---------- measures ----------


def reliability(probs, labels, bins: int = DEFAULT_BINS) -> dict:
    """Equal-width bins of top-label confidence over [0, 1]; bin i holds confidences in (i/B, (i+1)/B].

    Returns {"bins": [{"lower", "upper", "confidence" (mean top-label confidence), "accuracy", "count"}],
    "ece", "n"}; an empty bin has confidence and accuracy None.
    """
    probs, labels = _check_probabilities(probs, labels)
    bins = check_bins(bins)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    rows, gap = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        mean_conf = float(confidence[inside].mean()) if count else None
        accuracy = float(correct[inside].mean()) if count else None
        if count:
            gap += count * abs(accuracy - mean_conf)
        rows.append({"lower": b / bins, "upper": (b + 1) / bins, "confidence": mean_conf, "accuracy": accuracy,
                     "count": count})
    return {"bins": rows, "ece": gap / len(labels), "n": int(len(labels))}


def ece(probs, labels, bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error: sum over bins of (bin share of images) x |accuracy - mean confidence|."""
    return reliability(probs, labels, bins)["ece"]


def nll(probs, labels) -> float:
    """Mean negative log-likelihood of the true label (natural log; probabilities floored at 1e-30)."""
    probs, labels = _check_probabilities(probs, labels)
    return float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], SMALLEST_PROBABILITY))))


def brier(probs, labels) -> float:
    """Multi-class Brier score: mean over images of sum over the 10 classes of (p - onehot)^2.

    This is the original (Brier 1950) definition: 0 is perfect, 2 is the worst; some libraries divide it by
    the number of classes, or score the top label only, which gives smaller numbers.
    """
    probs, labels = _check_probabilities(probs, labels)
    onehot = np.eye(CLASSES)[labels]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def confidence_histograms(probs, labels, bins: int = HISTOGRAM_BINS) -> dict:
    """Counts of top-label confidence over equal-width bins of [0, 1], for right and for wrong answers:
    {"edges": bins + 1 floats, "right": counts, "wrong": counts}."""
    probs, labels = _check_probabilities(probs, labels)
    bins = check_bins(bins)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {"edges": edges.tolist(),
            "right": np.histogram(confidence[correct], edges)[0].astype(int).tolist(),
            "wrong": np.histogram(confidence[~correct], edges)[0].astype(int).tolist()}


def summary(probs, labels, bins: int = DEFAULT_BINS) -> dict:
    """Everything the Calibration view draws for one set of probabilities (JSON-ready)."""
    probs, labels = _check_probabilities(probs, labels)
    table = reliability(probs, labels, bins)
    return {"accuracy": float((probs.argmax(axis=1) == labels).mean()), "ece": table["ece"], "nll": nll(probs, labels),
            "brier": brier(probs, labels), "reliability": table["bins"],
            "histograms": confidence_histograms(probs, labels)}


# ---------- temperature scaling ----------


def logits_from_probabilities(probs) -> np.ndarray:
    """Valid logits for softmax outputs: log p (floored), equal to the true logits up to a constant per image."""
    return np.log(np.maximum(np.asarray(probs, dtype=np.float64), SMALLEST_PROBABILITY))


def log_softmax(logits) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits) -> np.ndarray:
    return np.exp(log_softmax(logits))


def check_temperature(temperature: float) -> float:
    lo, hi = TEMPERATURE_BOUNDS
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating)) \
            or not lo <= float(temperature) <= hi:
        raise LabError(f"temperature: must be a number from {lo} to {hi}, got {temperature!r}")
    return float(temperature)


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): the probabilities a model would give with its logits divided by T. T = 1 returns p."""
    temperature = check_temperature(temperature)
    if temperature == 1.0:
        return np.asarray(probs)
    return softmax(logits_from_probabilities(probs) / temperature)


def _as_logits(values, labels, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind not in ("auto", "probabilities", "logits"):
        raise LabError(f"kind: must be auto, probabilities or logits, got {kind!r}")
    if kind == "probabilities" or (kind == "auto" and looks_like_probabilities(values)):
        values, labels = _check_probabilities(values, labels)
        return logits_from_probabilities(values), labels
    return check_inputs(values, labels, "logits")


def scaled_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    return float(-np.mean(log_softmax(logits / temperature)[np.arange(len(labels)), labels]))


def fit_temperature(logits_or_probs, labels, kind: str = "auto") -> float:
    """The T in TEMPERATURE_BOUNDS minimising the NLL of softmax(logits / T) on these (validation) images.

    `kind` says what the rows are; "auto" takes rows in [0, 1] that sum to 1 as probabilities.
    NLL is convex in 1/T, so it has one minimum over T and a bounded scalar search finds it.
    """
    logits, labels = _as_logits(logits_or_probs, labels, kind)
    lo, hi = TEMPERATURE_BOUNDS
    found = minimize_scalar(lambda log_t: scaled_nll(logits, labels, math.exp(log_t)),
                            bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-4})
    return float(min(hi, max(lo, math.exp(found.x))))


# ---------- a model's validation split ----------


def validation_indices(configs: Sequence, train_size: int) -> np.ndarray:
    """Indices into the training images that are in the validation split of every config given: for one
    model, its own validation split; for several (an ensemble's members), the images none of them trained on.

    Each config is a spec.TrainConfig or its dict; the split is reproduced by data.split, the function
    training uses, applied to the image indices.
    """
    from mnist_core.spec import config_from_dict

    if not configs:
        return np.zeros(0, np.int64)
    shared = None
    for config in configs:
        config = config_from_dict(config) if isinstance(config, dict) else config
        _, (held_out, _) = mnist_data.split(np.arange(train_size), np.zeros(train_size), config.validation_split,
                                            config.seed)
        shared = held_out if shared is None else np.intersect1d(shared, held_out)
    return np.sort(shared)
