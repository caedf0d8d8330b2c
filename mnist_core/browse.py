"""Looking at the data set: counts, samples and mean images per digit, and selecting test images
by label and by a model's prediction (for the Data page)."""

from __future__ import annotations

import numpy as np


def class_counts(labels: np.ndarray) -> np.ndarray:
    """Images per digit, (10,) ints."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=10)[:10]


def mean_images(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(10, 28, 28) float32 in [0, 1]: the average image of each digit (zeros for a digit with no images)."""
    labels = np.asarray(labels)
    out = np.zeros((10, *images.shape[1:]), np.float32)
    for digit in range(10):
        chosen = images[labels == digit]
        if len(chosen):
            out[digit] = chosen.mean(axis=0, dtype=np.float64) / 255.0
    return out


def samples_per_digit(labels: np.ndarray, per_digit: int, seed: int) -> np.ndarray:
    """(10, per_digit) indices of random images of each digit, reproducible from `seed`.

    A digit with fewer images than asked repeats its images.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    rows = []
    for digit in range(10):
        pool = np.flatnonzero(labels == digit)
        rows.append(rng.choice(pool, per_digit, replace=len(pool) < per_digit) if len(pool) else np.full(per_digit, -1))
    return np.stack(rows)


def select(labels: np.ndarray, digit: int | None = None, predicted: np.ndarray | None = None,
           correct: bool | None = None) -> np.ndarray:
    """Indices of images with label `digit` (None: any) and, given a model's `predicted` digits,
    that it got right (correct=True) or wrong (correct=False)."""
    labels = np.asarray(labels)
    keep = np.ones(len(labels), bool)
    if digit is not None:
        keep &= labels == digit
    if correct is not None:
        if predicted is None:
            raise ValueError("selecting by correct/wrong needs the model's predictions")
        keep &= (np.asarray(predicted) == labels) == correct
    return np.flatnonzero(keep)
