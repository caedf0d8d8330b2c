"""Is the Train page's estimate of a whole job honest?

For each preset, interleaved, `--repeats` times:
  1. the estimate the Train page shows (estimate.job_estimate: real steps timed in this process, through the
     job's own input pipeline, plus the start-up and evaluation parts),
  2. jobs.start_train with that estimate, polled every 0.1 s as the page's panel polls its job, from launch to
     its "done" event (the moment the page shows the result).
Error = (estimated total - actual) / actual; goal: the median within ±25% per preset.

The details also hold what the constants in mnist_core/estimate.py stand for, measured from each job's events:
"process_start_seconds" (launch until fit starts building: the job's first batch event, seen in the poll, less
that batch's own elapsed time and the pipeline, model and compile time measured here) and "finish_seconds" (the
last epoch to "done", less the forward passes the estimate counts).
Usage: .venv/bin/python benchmarks/estimate.py [--repeats 2] [--presets mlp-2x128,fast-cnn] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from common import RESULTS, scratch_lab, target, write

PRESETS = ("mlp-2x128", "mlp-784-dropout", "fast-cnn", "cnn-classic")
GOAL = 0.25
POLL_SECONDS = 0.1


def one_run(preset: str, mnist, index: int) -> dict:
    from mnist_core import estimate, jobs
    from mnist_core import spec as specs

    spec, config = specs.preset(preset).copy()
    t0 = time.perf_counter()
    timed = estimate.time_steps(spec, config, mnist)
    parts = estimate.parts_from_timing(config, timed)
    timing_seconds = time.perf_counter() - t0
    launched = time.monotonic()
    job = jobs.start_train(spec, config, f"est-{preset}-{index}", estimate=estimate.recorded(parts))
    first_batch_seen = None
    while True:
        st = jobs.status(job.id)
        now = time.monotonic() - launched
        if first_batch_seen is None and st.batches:
            first_batch_seen = now
        if not st.running:
            break
        time.sleep(POLL_SECONDS)
    if st.state != "done":
        log = (jobs.job_dir(job.id) / "log.txt").read_text(errors="replace")[-2000:]
        return {"preset": preset, "failed": f"{st.state}: {st.message}", "log_tail": log, "estimate": parts,
                "last_event": st.events[-1] if st.events else None, "load_average_1min": os.getloadavg()[0]}
    actual = now
    first_batch, last_epoch = st.batches[0], st.history[-1]
    fit_started = first_batch_seen - first_batch["elapsed"]
    evaluation_forward = parts["evaluation_seconds"] - estimate.SAVE_SECONDS
    return {"preset": preset, "estimate": parts, "timed": timed, "timing_seconds": timing_seconds,
            "actual_seconds": actual, "error": (parts["total_seconds"] - actual) / actual,
            "actual_parts": {"fit_started": fit_started,
                             "startup": fit_started + first_batch["elapsed"] - timed["step"],
                             "epochs": last_epoch["elapsed"] - first_batch["elapsed"] + timed["step"],
                             "finish": actual - fit_started - last_epoch["elapsed"]},
            "process_start_seconds": fit_started - timed["build"],
            "finish_seconds": actual - fit_started - last_epoch["elapsed"] - evaluation_forward,
            "load_average_1min": os.getloadavg()[0]}


def earlier_runs(measuring: list[str]) -> list[dict]:
    """The last results file's runs of the presets not measured now, each marked with the run it came from,
    so a run of some presets (--presets) replaces only their rows."""
    path = RESULTS / "estimate.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    origin = {"measured_in_run": {"created": old["created"], "git_commit": old["machine"]["git_commit"]}}
    return [{**origin, **r} for r in old["details"]["runs"] if r["preset"] not in measuring]


def summarize(all_runs: list[dict], presets: list[str], quick: bool) -> None:
    seen = {r["preset"] for r in all_runs}
    presets = [p for p in PRESETS if p in presets or p in seen] + [p for p in presets if p not in PRESETS]
    runs = [r for r in all_runs if "failed" not in r]
    targets = []
    for preset in presets:
        errors = [100 * r["error"] for r in runs if r["preset"] == preset]
        met = bool(errors) and abs(statistics.median(errors)) <= 100 * GOAL
        targets.append(target(f"{preset}: estimate vs actual job time", errors, f"within ±{GOAL:.0%}", "%", met))
    from mnist_core import estimate

    details = {
        "runs": runs, "failed_runs": [r for r in all_runs if "failed" in r], "constants": {"PROCESS_START_SECONDS": estimate.PROCESS_START_SECONDS,
                                    "SAVE_SECONDS": estimate.SAVE_SECONDS},
        "median_process_start_seconds": statistics.median([r["process_start_seconds"] for r in runs] or [0]),
        "median_finish_seconds": statistics.median([r["finish_seconds"] for r in runs] or [0]),
        "median_actual_seconds": {p: statistics.median(r["actual_seconds"] for r in runs if r["preset"] == p)
                                  for p in presets if any(r["preset"] == p for r in runs)},
        "median_estimated_seconds": {p: statistics.median(r["estimate"]["total_seconds"] for r in runs
                                                          if r["preset"] == p)
                                     for p in presets if any(r["preset"] == p for r in runs)},
        "load_average_1min": [r["load_average_1min"] for r in runs],
        "note": "the estimate is timed in this process just before each job, so both see the same machine load",
    }
    write("estimate", targets, details, quick)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--quick", action="store_true", help="one run per preset")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    from mnist_core import data

    mnist = data.load()
    runs = earlier_runs(presets)
    with scratch_lab():
        for i in range(repeats):
            for preset in presets:  # interleaved, so every preset sees the same spread of machine load
                runs.append(one_run(preset, mnist, i))
                r = runs[-1]
                summarize(runs, presets, args.quick)  # after every run: a crash later keeps what was measured
                if "failed" in r:
                    print(f"{preset}: job {r['failed']}", flush=True)
                    continue
                print(f"{preset}: estimated {r['estimate']['total_seconds']:.1f} s, actual {r['actual_seconds']:.1f} s "
                      f"({100 * r['error']:+.0f}%), process start {r['process_start_seconds']:.2f} s, finish "
                      f"{r['finish_seconds']:.2f} s, load {r['load_average_1min']:.1f}", flush=True)


if __name__ == "__main__":
    main()
