"""Timings measured side by side, and a "best" mark only where the difference is larger than the noise.

Timings read from each model's training-time metadata were taken under whatever load the machine had then:
two identical models once showed 707 vs 9,616 images/s. Here every model is timed in the same interleaved
pass (round r times the models in an order rotated by r), so a burst of load lands on all of them alike,
and each model gets one sample per round to judge the spread by.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import stats

ROUNDS = 9  # samples per model; with 9 vs 9 the one-sided Mann-Whitney p can go as low as 2e-5
SINGLE_CALLS = 5  # single-image predictions per round (one canvas stroke each)
BATCH = 256  # images in the throughput call of each round
MAX_MODELS = 12
ALPHA = 0.05


def measure(predictors: dict, images_uint8: np.ndarray, rounds: int = ROUNDS, progress=None) -> dict[str, dict]:
    """{name: {"latency ms": median, "images/s": median, "samples": {...}}} from one interleaved pass.

    `predictors` maps names to objects with `classify(one_image)` and `probabilities(batch)` (predict.Predictor);
    `progress(fraction, text)` is called after every round.
    """
    names = list(predictors)
    if not 1 <= len(names) <= MAX_MODELS:
        raise ValueError(f"time 1 to {MAX_MODELS} models at once, got {len(names)}")
    x = images_uint8[: max(BATCH, SINGLE_CALLS * rounds)].astype(np.float32) / 255.0
    for p in predictors.values():  # the first calls trace the function; they are not what a user waits for
        p.classify(x[0])
        p.probabilities(x[:BATCH])
    samples = {n: {"latency ms": [], "images/s": []} for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            p = predictors[name]
            t0 = time.perf_counter()
            for i in range(SINGLE_CALLS):
                p.classify(x[(r * SINGLE_CALLS + i) % len(x)])
            samples[name]["latency ms"].append((time.perf_counter() - t0) / SINGLE_CALLS * 1000)
            t0 = time.perf_counter()
            p.probabilities(x[:BATCH])
            samples[name]["images/s"].append(BATCH / (time.perf_counter() - t0))
        if progress:
            progress((r + 1) / rounds, f"Timing round {r + 1} of {rounds}")
    return {n: {column: float(np.median(values)) for column, values in s.items()} | {"samples": s}
            for n, s in samples.items()}


def clear_winner(samples: dict[str, list[float]], higher_is_better: bool) -> str | None:
    """The model whose median is best AND whose samples beat every other model's (one-sided Mann-Whitney
    p < ALPHA against each); None when the lead is inside the noise or there is nothing to compare.

    Requiring every comparison to pass (an intersection-union test) needs no multiple-testing correction.
    """
    if len(samples) < 2:
        return None
    medians = {n: float(np.median(v)) for n, v in samples.items()}
    best = (max if higher_is_better else min)(medians, key=medians.get)
    alternative = "greater" if higher_is_better else "less"
    for name, values in samples.items():
        if name != best and stats.mannwhitneyu(samples[best], values, alternative=alternative).pvalue >= ALPHA:
            return None
    return best
