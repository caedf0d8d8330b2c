"""How long a training job has left, from the estimate measured before it started and its own batches.

The first batch of a run carries the graph tracing (seconds, for a step of milliseconds), so a rate taken
from it alone predicted "66 min" for a 19 s run. The rate here is measured between batch events after
the first, and it takes over from the prior estimate gradually, as the span it covers grows: the ETA
moves smoothly from the estimate to the measurement, never by a jump of 50x.
"""

from __future__ import annotations

STARTUP_SECONDS = 6.0  # TensorFlow import, MNIST load and model build, measured at about 5-7 s here
EVAL_SECONDS = 3.0  # test-set evaluation and save for the presets, measured at about 1-4 s here
MIN_SPAN_SECONDS = 3.0  # a measured rate gets full weight once it spans this long, or a tenth of the run


def _step(event: dict, steps: int) -> int:
    return (event["epoch"] - 1) * steps + event["batch"]


def estimate_remaining(batches: list[dict], epochs_done: list[dict], epochs: int, steps: int, prior: dict,
                       wall: float) -> float | None:
    """Seconds left for a running job, or None while there is nothing to go on.

    `batches` and `epochs_done` are the job's batch and epoch events, `prior` its recorded estimate
    ({"epoch_seconds", "startup_seconds", "eval_seconds"}, any of them missing), `wall` seconds since launch.
    """
    total = max(1, epochs * steps)
    startup = float(prior.get("startup_seconds") or STARTUP_SECONDS)
    evaluation = float(prior.get("eval_seconds") or EVAL_SECONDS)
    prior_step = float(prior["epoch_seconds"]) / max(1, steps) if prior.get("epoch_seconds") else None
    if not batches:
        if prior_step is None:
            return None
        return max(0.0, startup - wall) + prior_step * total + evaluation
    first, last = batches[0], batches[-1]
    remaining_steps = max(0, total - _step(last, steps))
    span_steps, span_seconds = _step(last, steps) - _step(first, steps), last["elapsed"] - first["elapsed"]
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
    # Batch events stop at each epoch's last batch; validation runs after it. Once an epoch has ended, its
    # measured length (validation included) says how much each remaining epoch adds beyond its steps.
    validation = 0.0
    if epochs_done and measured is not None:
        full = epochs_done[-1].get("seconds", 0.0) - steps * measured
        validation = max(0.0, full) * (epochs - len(epochs_done))
    return per_step * remaining_steps + validation + evaluation
