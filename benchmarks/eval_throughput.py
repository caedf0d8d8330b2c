"""Evaluation throughput: images/s when scoring the 10,000 test images, per preset.

Usage: .venv/bin/python benchmarks/eval_throughput.py [--quick]

Uses mnist_core.evaluate.probabilities, the very code that computes the test metrics stored at
save time (and the 'eval_images_per_second' the Compare table shows). Models are built at random
initialisation: throughput does not depend on the weights. Each preset is timed 3 times after a
warm-up pass; the table shows the median images/s per preset.

The forward pass's lever (details["forward_pass"]): the shipped default on the 10,000 test images, called
eagerly (as evaluate.probabilities did, at its old 1,000 and the server's old 250 per batch) or through its
traced function (predict.forward, as now, at 250 and at evaluate.EVAL_BATCH's 100), each in a fresh process (2 rounds, interleaved; --quick: 1), with
the time of a warm pass and how far the pass raised the process's peak memory (VmHWM) above the loaded model's.
The dashboard's server runs these passes, so the peak is what its memory goal sees.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import common

from mnist_core import data as mnist_data  # noqa: E402
from mnist_core import evaluate  # noqa: E402
from mnist_core.build import build  # noqa: E402
from mnist_core.presets import PRESETS  # noqa: E402

FORWARD_VARIANTS = {"eager, batch 1000": ("eager", 1000), "eager, batch 250": ("eager", 250),
                    "traced, batch 250": ("traced", 250), "traced, batch 100": ("traced", 100)}


def forward_child(path: str, batch: int) -> None:
    """One variant in this (fresh) process: prints {"seconds": warm passes, "peak_rise_mb": ...} as JSON."""
    import numpy as np

    from mnist_core import registry

    test_images = mnist_data.load().x_test
    model = registry.load("default")
    if path == "traced":
        def run(images):
            return evaluate.probabilities(model, images, batch_size=batch)
        images = test_images
    else:
        def run(images):
            return np.concatenate([np.asarray(model(images[i:i + batch], training=False))
                                   for i in range(0, len(images), batch)])
        images = mnist_data.normalise(test_images)
    run(images[:1])  # load and trace on one image: what the peak is measured from
    before = common.reset_peak()
    seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        run(images)
        seconds.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": seconds[1:], "peak_rise_mb": common.proc_kb("self", "VmHWM") / 1024 - before}))


def forward_pass(rounds: int) -> dict:
    runs = {name: [] for name in FORWARD_VARIANTS}
    for _ in range(rounds):
        for name, (path, batch) in FORWARD_VARIANTS.items():
            done = subprocess.run([sys.executable, __file__, "--forward-child", path, str(batch)], cwd=common.ROOT,
                                  capture_output=True, text=True, check=True)
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    found = {}
    for name, results in runs.items():
        found[name] = {"seconds_median": statistics.median(s for r in results for s in r["seconds"]),
                       "peak_rise_mb_median": statistics.median(r["peak_rise_mb"] for r in results), "runs": results}
        print(f"{name:20} {found[name]['seconds_median']:6.2f} s  peak +{found[name]['peak_rise_mb_median']:.0f} MB",
              flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 timed pass per preset")
    parser.add_argument("--forward-child", nargs=2, metavar=("PATH", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.forward_child:
        return forward_child(args.forward_child[0], int(args.forward_child[1]))
    repeats = 1 if args.quick else 3
    forward = forward_pass(1 if args.quick else 2)
    test_set = mnist_data.load()
    x, y = test_set.x_test, test_set.y_test
    per_preset = {}
    for name, p in PRESETS.items():
        model = build(p.spec)
        evaluate.probabilities(model, x[:2000])  # trace and warm up
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            evaluate.probabilities(model, x)
            rates.append(len(x) / (time.perf_counter() - t0))
        per_preset[name] = {"images_per_second": rates, "parameters": int(model.count_params())}
        print(f"{name:20} {statistics.median(rates):10,.0f} images/s", flush=True)
    targets = [common.target(f"eval throughput: {name}", v["images_per_second"], "(report)", "images/s", None)
               for name, v in per_preset.items()]
    # The value stored at save time (evaluate.evaluate_with_rate on the test set) for the shipped default model,
    # next to the same function run now: they should agree within the noise of a shared machine.
    from mnist_core import registry

    shipped = {"stored_at_save": registry.read_metadata("default").get("eval_images_per_second"),
               "measured_now": [evaluate.evaluate_with_rate(registry.load("default"), x, y)[1] for _ in range(repeats)]}
    targets.append(common.target("eval throughput: shipped default model", shipped["measured_now"], "(report)",
                                 "images/s", None))
    for name, found in forward.items():
        targets.append(common.target(f"10,000 test images, {name}: time", [s for r in found["runs"] for s in r["seconds"]],
                                     "(report)", "s", None))
        targets.append(common.target(f"10,000 test images, {name}: peak memory rise",
                                     [r["peak_rise_mb"] for r in found["runs"]], "(report)", "MB", None))
    common.write("eval_throughput", targets, {"presets": per_preset, "images": len(x), "default_model": shipped,
                                              "forward_pass": forward}, args.quick)


if __name__ == "__main__":
    main()
