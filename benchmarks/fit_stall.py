"""Does Keras's fit stall at its end because of tf.data's autotune thread?

A fast-cnn job sometimes sat 22-24 s after its last epoch (2 of 6 runs, both under load). py-spy showed the
main thread destroying fit's training iterator, which joins tf.data's autotune model thread (`tf_data_model`,
`OptimizeLoop`). This benchmark trains fast-cnn through `train.fit` in a fresh process per run, alternating:
  - "autotune off": the lab's pipeline as it is (`train.pipeline_options()`: AUTOTUNE arguments, autotuner off);
  - "autotune": the same pipeline with the autotuner on, as the lab ran before (`pipeline_options(autotune=True)`).
Each run records fit's time, and the time from Keras's `on_train_end` to fit returning plus a `gc.collect()`
(the stall, when it happens). With --load N, N busy-looping processes run alongside, as on a shared machine.

Usage: .venv/bin/python benchmarks/fit_stall.py [--runs 4] [--load 1] [--epochs 2] [--quick]
Writes results/fit_stall.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import time

import common

VARIANTS = ("autotune", "autotune off")  # the lab ran the first before, runs the second now
STALL_SECONDS = 5.0  # a gap this long after the last epoch is a stall; a normal one is well under a second


def worker(variant: str, epochs: int, seed: int) -> dict:
    """One fast-cnn fit in this process; prints nothing else, returns its timings."""
    import gc

    import keras

    from mnist_core import data, train
    from mnist_core import spec as specs

    if variant == "autotune":
        as_is = train.make_dataset

        def with_autotune(*args, **kwargs):  # later options win over the lab's own
            return as_is(*args, **kwargs).with_options(train.pipeline_options(autotune=True))

        train.make_dataset = with_autotune
    spec, config = specs.preset("fast-cnn").copy()
    config.epochs, config.seed = epochs, seed
    ended = {}

    class TrainEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            ended["at"] = time.perf_counter()

    result = train.fit(spec, config, mnist=data.load(), extra_callbacks=[TrainEnd()])
    returned = time.perf_counter()
    gc.collect()
    collected = time.perf_counter()
    return {"variant": variant, "seed": seed, "fit_seconds": result.seconds,
            "end_to_return_seconds": returned - ended["at"], "end_to_collected_seconds": collected - ended["at"]}


def spin() -> None:
    while True:
        pass


def one_run(variant: str, epochs: int, seed: int) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(common.ROOT / 'benchmarks')!r}); import json, fit_stall; "
            f"print(json.dumps(fit_stall.worker({variant!r}, {epochs}, {seed})))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=common.ROOT, capture_output=True, text=True, check=True)
    run = json.loads(done.stdout.strip().splitlines()[-1])
    run["process_seconds"] = time.perf_counter() - started
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs of each variant (alternating)")
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes alongside (0-4)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one run of each variant, one epoch")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.epochs = 1, 1
    if not (1 <= args.runs <= 20 and 0 <= args.load <= 4 and 1 <= args.epochs <= 10):
        parser.error("--runs 1-20, --load 0-4, --epochs 1-10")
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.load)]
    for p in spinners:
        p.start()
    runs = {v: [] for v in VARIANTS}
    try:
        for i in range(args.runs):
            for variant in VARIANTS:
                run = one_run(variant, args.epochs, seed=i)
                print(f"  run {i} {variant}: fit {run['fit_seconds']:.1f} s, "
                      f"after the last epoch {run['end_to_collected_seconds']:.2f} s", flush=True)
                runs[variant].append(run)
    finally:
        for p in spinners:
            p.terminate()
    common.write("fit_stall", targets(runs, args.epochs, args.load), {"runs": runs, "load": args.load,
                 "epochs": args.epochs}, quick=args.quick)


def targets(runs: dict[str, list[dict]], epochs: int, load: int) -> list[dict]:
    """Fit time and the gap after the last epoch per variant; only the lab's own variant has a goal."""
    rows = []
    for variant, found in runs.items():
        stalls = sum(r["end_to_collected_seconds"] >= STALL_SECONDS for r in found)
        lab = variant == VARIANTS[1]
        rows.append(common.target(f"fast-cnn fit, {epochs} epochs, {variant} (load {load})",
                                  [r["fit_seconds"] for r in found], "(lever)", "s", None))
        rows.append(common.target(f"  after the last epoch, {variant}: {stalls} of {len(found)} runs stalled "
                                  f">= {STALL_SECONDS:.0f} s", [r["end_to_collected_seconds"] for r in found],
                                  "no stall" if lab else "(as the lab ran before)", "s", stalls == 0 if lab else None))
    return rows


if __name__ == "__main__":
    main()
