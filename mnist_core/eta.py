"""How long a training job has left, from the estimate measured before it started and its own batches.

The first batch of a run carries the graph tracing (seconds, for a step of milliseconds), so a rate taken
from it alone predicted "66 min" for a 19 s run. The rate here is measured between batch events after
the first, and it takes over from the prior estimate gradually, as the span it covers grows: the ETA
moves smoothly from the estimate to the measurement, never by a jump of 50x.
"""

from __future__ import annotations

STARTUP_SECONDS = 6.0  # TensorFlow import, MNIST load and model build, measured at about 5-7 s here
EVAL_SECONDS = 3.0  # test-set evaluation and save when nothing better is known
MIN_SPAN_SECONDS = 3.0  # a measured rate gets full weight once it spans this long, or a tenth of the run
EVAL_IMAGES = 10_000  # the test set, in one pass that also gives the metadata its images per second


def evaluation_seconds(epoch_seconds: float, train_images: int) -> float:
    """Evaluation and save after training: a forward pass costs about a third of a training step per image."""
    return 0.5 + EVAL_IMAGES * epoch_seconds / max(1, train_images) / 3


def _step(event: dict, steps: int) -> int:
    return (event["epoch"] - 1) * steps + event["batch"]


def _validation_seconds(batches: list[dict], epochs_done: list[dict]) -> list[float]:
    """Each finished epoch's validation pass: from its last batch event (always sent) to its epoch event."""
    last_batch = {b["epoch"]: b["elapsed"] for b in batches if b["batch"] == b["steps"]}
    return [max(0.0, e["elapsed"] - last_batch[e["epoch"]]) for e in epochs_done
            if e.get("elapsed") is not None and e["epoch"] in last_batch]


def estimate_remaining(batches: list[dict], epochs_done: list[dict], epochs: int, steps: int, prior: dict,
                       wall: float) -> float | None:
    """Seconds left for a running job, or None while there is nothing to go on.

    `batches` and `epochs_done` are the job's batch and epoch events, `prior` its recorded estimate
    (mnist_core.estimate's parts: {"epoch_seconds", "validation_seconds" (per epoch, within epoch_seconds),
    "startup_seconds", "evaluation_seconds"}, any of them missing; older records say "eval_seconds"),
    `wall` seconds since launch.
    """
    total = max(1, epochs * steps)
    startup = float(prior.get("startup_seconds") or STARTUP_SECONDS)
    evaluation = float(prior.get("evaluation_seconds") or prior.get("eval_seconds") or EVAL_SECONDS)
    prior_validation = float(prior.get("validation_seconds") or 0.0)
    prior_step = None
    if prior.get("epoch_seconds"):
        prior_step = max(0.0, float(prior["epoch_seconds"]) - prior_validation) / max(1, steps)
    if not batches:
        if prior_step is None:
            return None
        return max(0.0, startup - wall) + (prior_step * steps + prior_validation) * epochs + evaluation
    first, last = batches[0], batches[-1]
    remaining_steps = max(0, total - _step(last, steps))
    # Validation passes are timed apart: they are not steps, and the first epoch's is not known in advance.
    validations = _validation_seconds(batches, [e for e in epochs_done if e["epoch"] >= first["epoch"]])
    span_steps = _step(last, steps) - _step(first, steps)
    span_seconds = last["elapsed"] - first["elapsed"] - sum(validations)
    measured = span_seconds / span_steps if span_steps > 0 and span_seconds > 0 else None
    if measured is None:
        per_step = prior_step
    elif prior_step is None:
        per_step = measured if span_seconds >= 1.0 else None
    else:
        weight = min(1.0, span_seconds / max(MIN_SPAN_SECONDS, 0.1 * prior_step * total))
        per_step = weight * measured + (1 - weight) * prior_step
    if per_step is None:
        return None
    validation = (validations[-1] if validations else prior_validation) * (epochs - len(epochs_done))
    return per_step * remaining_steps + validation + evaluation
