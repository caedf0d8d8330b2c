"""mnist_core.eta: the ETA a job shows, from its prior estimate and its own batch events."""

from __future__ import annotations

import pytest

from mnist_core.eta import EVAL_SECONDS, estimate_remaining


def batch(epoch: int, n: int, elapsed: float, steps: int = 100) -> dict:
    return {"event": "batch", "epoch": epoch, "batch": n, "steps": steps, "elapsed": elapsed}


PRIOR = {"epoch_seconds": 10.0, "startup_seconds": 5.0, "eval_seconds": 2.0}


def test_before_any_batch_the_prior_estimate_counts_down_the_start_up():
    assert estimate_remaining([], [], 2, 100, PRIOR, wall=0.0) == pytest.approx(5 + 20 + 2)
    assert estimate_remaining([], [], 2, 100, PRIOR, wall=3.0) == pytest.approx(2 + 20 + 2)
    assert estimate_remaining([], [], 2, 100, PRIOR, wall=60.0) == pytest.approx(20 + 2)  # a slow start
    assert estimate_remaining([], [], 2, 100, {}, wall=1.0) is None  # nothing to go on


def test_a_traced_first_batch_does_not_blow_up_the_estimate():
    # The first batch took 4 s (graph tracing), the steps after it 0.1 s: 19 s left, not 66 minutes.
    events = [batch(1, 1, 4.0)]
    first = estimate_remaining(events, [], 2, 100, PRIOR, wall=9.5)
    assert first == pytest.approx(199 * 0.1 + 2)  # one event: the prior alone
    events.append(batch(1, 11, 5.0))  # 10 steps in 1 s: measured 0.1 s/step, same as the prior
    assert estimate_remaining(events, [], 2, 100, PRIOR, wall=10.5) == pytest.approx(189 * 0.1 + 2)


def test_measurement_takes_over_gradually_never_with_a_jump():
    # The machine is twice as slow as the prior said: 0.2 s/step. The ETA slides from the prior to it.
    etas, events = [], [batch(1, 1, 4.0)]
    for i in range(1, 60):
        step = 1 + 5 * i
        events.append(batch(1 + (step - 1) // 100, (step - 1) % 100 + 1, 4.0 + i * 1.0))
        etas.append(estimate_remaining(events, [], 4, 100, PRIOR, wall=9 + i))
    ratios = [b / a for a, b in zip(etas, etas[1:], strict=False)]
    assert max(ratios) < 1.5 and min(ratios) > 0.5
    left = 400 - (1 + 5 * 59)
    assert etas[-1] == pytest.approx(left * 0.2 + 2, rel=0.01)  # measured rate fully in charge


def test_without_a_prior_it_waits_for_a_second_of_batches():
    assert estimate_remaining([batch(1, 1, 4.0), batch(1, 3, 4.5)], [], 1, 100, {}, wall=9) is None
    eta = estimate_remaining([batch(1, 1, 4.0), batch(1, 21, 6.0)], [], 1, 100, {}, wall=9)
    assert eta == pytest.approx(79 * 0.1 + EVAL_SECONDS)


def test_validation_is_timed_apart_from_the_steps_and_added_per_epoch_left():
    # Epoch 1's last batch at 10.9 s, its epoch event at 12.9 s: 2 s of validation, not 2 s of steps.
    events = [batch(1, 1, 1.0), batch(1, 100, 10.9), batch(2, 1, 13.0)]
    epoch1 = {"event": "epoch", "epoch": 1, "seconds": 12.0, "elapsed": 12.9}
    eta = estimate_remaining(events, [epoch1], 3, 100, PRIOR, wall=20)
    per_step = (13.0 - 1.0 - 2.0) / 100
    assert eta == pytest.approx(per_step * 199 + 2.0 * 2 + 2, rel=1e-6)


def test_before_the_job_reports_its_plan_the_configs_epochs_count():
    from mnist_core.jobs import JobStatus

    job = JobStatus("j", "m", "running", [], started=100.0, subject={"config": {"epochs": 3}},
                    estimate={"epoch_seconds": 10.0, "startup_seconds": 5.0, "eval_seconds": 2.0})
    assert job.progress(now=101.0)["eta"] == pytest.approx(4 + 3 * 10 + 2)


def test_evaluation_estimate_scales_with_the_models_speed():
    from mnist_core.eta import EVAL_IMAGES, evaluation_seconds

    assert evaluation_seconds(54.0, 54_000) == pytest.approx(0.5 + EVAL_IMAGES * 0.001 / 3)
    assert evaluation_seconds(5.4, 54_000) < evaluation_seconds(54.0, 54_000)


def test_a_recorded_whole_job_estimate_counts_its_validation_and_evaluation_parts():
    # mnist_core.estimate's parts: 12 s epochs of which 2 s validation, 3 s evaluation.
    prior = {"startup_seconds": 5.0, "epoch_seconds": 12.0, "validation_seconds": 2.0, "evaluation_seconds": 3.0}
    assert estimate_remaining([], [], 2, 100, prior, wall=0.0) == pytest.approx(5 + 2 * 12 + 3)
    # Steps measured at 0.1 s over 10 s (full weight); no epoch ended yet, so the prior's validation counts.
    events = [batch(1, 1, 1.0, steps=200), batch(1, 101, 11.0, steps=200)]
    eta = estimate_remaining(events, [], 2, 200, prior, wall=15.0)
    assert eta == pytest.approx(0.1 * 299 + 2 * 2.0 + 3.0)
