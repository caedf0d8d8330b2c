"""How long does Compare's robustness view take for a model, cold and cached?

For each model folder given (default: saved_models/default), copied into a throwaway registry with an empty
robustness cache: the cold time of everything the view computes (load the model, every perturbation ladder on
the seeded subset of the test set, the example strip), then the same call again, now served from the cache.
The cold time is reported as wall time (the goal: <= 30 s on 2 cores) and as the CPU time of all threads, which
the machine's other load does not inflate (the load average is recorded with each run), with how far the cold
run raised the process's peak memory (the dashboard's server runs it, and keeps what oneDNN pools).
Each model's full ladder results are kept, keyed by name and model sha256, so the README can show one model
file against another (e.g. the old default against a retrained one): a run merges its models into
benchmarks/results/robustness.json and keeps the other models already there.

Usage: .venv/bin/python benchmarks/robustness.py [--models PATH ...] [--subset 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import REFERENCE_SIMD, RESULTS, ROOT, instruction_set, proc_kb, reset_peak, target, write

GOAL_SECONDS = 30.0
CACHED_GOAL_SECONDS = 0.5


def measure(folder: Path, mnist, subset: int, seed: int) -> dict:
    from mnist_core import registry, robustness

    name = folder.name
    with tempfile.TemporaryDirectory() as root:
        os.environ["MNIST_MODELS_DIR"] = str(Path(root) / "models")
        os.environ["MNIST_ROBUSTNESS_DIR"] = str(Path(root) / "cache")
        shutil.copytree(folder, Path(root) / "models" / name)
        rss_before = reset_peak()
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = robustness.for_model(name, mnist, subset=subset, seed=seed)
        i = robustness.example_index(mnist, seed)
        robustness.examples(mnist.x_test[i], int(mnist.y_test[i]), model=registry.load(name), seed=seed)
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        cold_peak_rise = proc_kb("self", "VmHWM") / 1024 - rss_before  # what the dashboard's server holds on to after it
        t1 = time.perf_counter()
        again = robustness.for_model(name, mnist, subset=subset, seed=seed)
        cached = time.perf_counter() - t1
        assert again == result
        meta = registry.read_metadata(name)
    return {"name": name, "path": str(folder.resolve().relative_to(ROOT)) if folder.resolve().is_relative_to(ROOT)
            else str(folder), "model_sha256": result["model_sha256"], "created": meta.get("created"),
            "preset": meta.get("preset"), "test_accuracy": (meta.get("test") or {}).get("accuracy"),
            "cold_seconds": cold, "cold_cpu_seconds": cold_cpu, "evaluate_seconds": result["seconds"], "cached_seconds": cached,
            "cold_peak_rise_mb": cold_peak_rise, "load_average_1min": os.getloadavg()[0], "simd": instruction_set(), "result": result}


def merged(runs: list[dict]) -> tuple[list[dict], dict]:
    """This run's models merged into the stored ones (same key replaced, other models kept)."""
    path = RESULTS / "robustness.json"
    try:
        stored = json.loads(path.read_text())["details"]["models"]
    except (OSError, ValueError, KeyError, TypeError):
        stored = {}
    for run in runs:
        stored[f"{run['name']}@{run['model_sha256'][:12]}"] = run
    targets = []
    for name, run in stored.items():
        # Models measured on different machines share this file: a row says when its CPU was not the reference.
        simd = run.get("simd", REFERENCE_SIMD)
        key = name if simd == REFERENCE_SIMD else f"{name} (on {simd})"
        targets.append(target(f"robustness view, cold, {key}", [run["cold_seconds"]], f"<= {GOAL_SECONDS:g} s", "s",
                              run["cold_seconds"] <= GOAL_SECONDS))
        if "cold_cpu_seconds" in run:  # CPU time is what the machine's other load does not inflate
            targets.append(target(f"robustness view, cold, CPU time of all threads, {key}", [run["cold_cpu_seconds"]],
                                  "(report: the wall time on an idle 2-core machine is at least half of it)",
                                  "CPU s", None))
        if "cold_peak_rise_mb" in run:
            targets.append(target(f"robustness view, cold, peak memory rise, {key}", [run["cold_peak_rise_mb"]],
                                  "(report)", "MB", None))
        targets.append(target(f"robustness view, cached, {key}", [run["cached_seconds"]],
                              f"< {CACHED_GOAL_SECONDS:g} s", "s", run["cached_seconds"] < CACHED_GOAL_SECONDS))
    return targets, {"models": stored}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", type=Path, default=[ROOT / "saved_models" / "default"])
    parser.add_argument("--subset", type=int, default=None, help="test images (default: the lab's 2,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run on 200 images (run_all --quick)")
    args = parser.parse_args()
    if args.quick and args.subset is None:
        args.subset = 200
    from mnist_core.tf_quiet import import_tensorflow

    import_tensorflow()
    from mnist_core import data

    mnist = data.load()
    runs = []
    for folder in args.models:
        runs.append(measure(folder, mnist, args.subset, args.seed))
        print({k: v for k, v in runs[-1].items() if k != "result"}, flush=True)
    targets, details = merged(runs)
    write("robustness", targets, details, quick=args.quick)


if __name__ == "__main__":
    main()
