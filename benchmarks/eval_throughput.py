"""Evaluation throughput: images/s when scoring the 10,000 test images, per preset.

Usage: .venv/bin/python benchmarks/eval_throughput.py [--quick]

Uses mnist_core.evaluate.probabilities, the very code that computes the test metrics stored at
save time (and the 'eval_images_per_second' the Compare table shows). Models are built at random
initialisation: throughput does not depend on the weights. Each preset is timed 3 times after a
warm-up pass; the table shows the median images/s per preset.
"""

from __future__ import annotations

import argparse
import statistics
import time

import common

from mnist_core import data as mnist_data  # noqa: E402
from mnist_core import evaluate  # noqa: E402
from mnist_core.build import build  # noqa: E402
from mnist_core.presets import PRESETS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 timed pass per preset")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
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
    common.write("eval_throughput", targets, {"presets": per_preset, "images": len(x), "default_model": shipped},
                 args.quick)


if __name__ == "__main__":
    main()
