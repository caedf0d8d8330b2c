"""How honest is a job's ETA, and how soon does the first curve point show?

For an MLP preset (mlp-2x128) and a CNN preset (fast-cnn), interleaved, `--repeats` times each:
  1. the estimate the Train page makes (estimate.job_estimate: real steps through the job's own pipeline,
     timed in this process, with start-up, validation and evaluation parts),
  2. jobs.start_train with that estimate, polled every 0.1 s as the page's panel polls its job,
  3. the ETA shown at the first poll, and at the first poll at or past 10% of the run's steps, against
     the time the job actually took from then until its "done" event (the moment the page shows the result),
  4. Start to the first live curve point (the first batch event the panel can draw).

Error = (ETA - actual remaining) / actual remaining; goal: within ±25% at 10% of the run.
Usage: .venv/bin/python benchmarks/job_eta.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import scratch_lab, target, write

PRESETS = ("mlp-2x128", "fast-cnn")
GOAL = 0.25


def one_run(preset: str, mnist, index: int) -> dict:
    from mnist_core import estimate as estimates
    from mnist_core import jobs
    from mnist_core import spec as specs

    spec, config = specs.preset(preset).copy()
    estimate = estimates.recorded(estimates.job_estimate(spec, config, mnist))
    t0 = time.monotonic()
    job = jobs.start_train(spec, config, f"eta-{preset}-{index}", estimate=estimate)
    samples, first_point = [], None
    while True:
        st = jobs.status(job.id)
        now = time.monotonic() - t0
        if first_point is None and st.curve_points():
            first_point = now
        if st.state == "done" or not st.running:
            break
        p = st.progress()
        samples.append({"t": now, "fraction": p["fraction"], "eta": p["eta"]})
        time.sleep(0.1)
    if st.state != "done":
        raise SystemExit(f"{preset}: job {st.state}: {st.message}")
    done_at = now

    def error(sample):
        actual = done_at - sample["t"]
        return None if sample["eta"] is None else (sample["eta"] - actual) / actual

    at_start = samples[0]
    at_tenth = next(s for s in samples if s["fraction"] >= 0.1)
    return {"preset": preset, "estimate_epoch_seconds": estimate["epoch_seconds"], "total_seconds": done_at,
            "first_curve_point_seconds": first_point, "eta_error_at_start": error(at_start),
            "eta_error_at_10_percent": error(at_tenth), "at_10_percent": at_tenth,
            "eta_max_step_ratio": _max_jump([s["eta"] for s in samples if s["eta"]])}


def _max_jump(etas: list[float]) -> float | None:
    """The largest factor between consecutive ETAs (a sane ETA never jumps by 50x)."""
    ratios = [max(a, b) / min(a, b) for a, b in zip(etas, etas[1:], strict=False) if min(a, b) > 0]
    return max(ratios) if ratios else None


def summarize(runs: list[dict], quick: bool) -> None:
    """The targets, from every run: medians and ranges per preset (the machine is shared, so single runs
    swing with its load; the goal is on the median)."""
    targets = []
    for preset in PRESETS:
        mine = [r for r in runs if r["preset"] == preset]
        errors = [100 * r["eta_error_at_10_percent"] for r in mine if r["eta_error_at_10_percent"] is not None]
        met = len(errors) == len(mine) and abs(statistics.median(errors)) <= 100 * GOAL
        targets.append(target(f"{preset}: ETA error at 10% of the run", errors, f"median within ±{GOAL:.0%}", "%", met))
        targets.append(target(f"{preset}: Start to first curve point", [r["first_curve_point_seconds"] for r in mine],
                              "as short as start-up allows", "s", None))
        targets.append(target(f"{preset}: largest step between consecutive ETAs",
                              [r["eta_max_step_ratio"] for r in mine], "< 2x (never a 50x jump)", "x",
                              all((r["eta_max_step_ratio"] or 1) < 2 for r in mine)))
    write("job_eta", targets, {"runs": runs, "median_total_seconds": {
        p: statistics.median(r["total_seconds"] for r in runs if r["preset"] == p) for p in PRESETS}}, quick)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run per preset")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    from mnist_core import data

    mnist = data.load()
    runs = []
    with scratch_lab():
        for i in range(repeats):
            for preset in PRESETS:  # interleaved, so both see the same machine load
                runs.append(one_run(preset, mnist, i))
                print({k: v for k, v in runs[-1].items() if k != "at_10_percent"}, flush=True)
    summarize(runs, args.quick)

if __name__ == "__main__":
    main()
