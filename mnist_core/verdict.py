"""Whether an answer about one image is sure enough to state, or should be given as "not sure".

A model always names a digit, even for two digits side by side or a scribble. The page says "not sure"
instead when the image holds several candidate digits (preprocess found separate marks of similar size),
or when the model's top probability is below UNSURE_BELOW. The decision lives here; the words on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# On the fixture's 1,000 real test digits, both the fast-cnn default and the augmented robust-cnn default
# are below 0.7 on about 1% of their right answers, and on 1 in 5 to 1 in 2 of their few wrong ones.
UNSURE_BELOW = 0.7
CANDIDATE_FROM = 0.1  # a digit with at least this probability is named as a candidate
MAX_CANDIDATES = 3


@dataclass(frozen=True)
class Verdict:
    digit: int  # the model's top answer (for the image's main mark)
    confidence: float  # its probability
    candidates: tuple[tuple[int, float], ...]  # (digit, probability) worth naming, most likely first
    marks: int = 1  # separate marks of similar size in the image

    @property
    def several_marks(self) -> bool:
        return self.marks > 1

    @property
    def low_confidence(self) -> bool:
        return self.confidence < UNSURE_BELOW

    @property
    def sure(self) -> bool:
        return not (self.several_marks or self.low_confidence)


def judge(probabilities, marks: int = 1) -> Verdict:
    """probabilities: (10,) for one image; marks: Prepared.marks (1 for a canvas drawing)."""
    probs = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if probs.shape != (10,) or not np.isfinite(probs).all():
        raise ValueError(f"expected 10 finite probabilities, got shape {probs.shape}")
    order = np.argsort(-probs, kind="stable")
    named = [int(d) for d in order[:MAX_CANDIDATES] if probs[d] >= CANDIDATE_FROM] or [int(order[0])]
    return Verdict(int(order[0]), float(probs[order[0]]), tuple((d, float(probs[d])) for d in named), max(1, marks))
