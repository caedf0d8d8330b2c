"""Exports of the shipped default model: parity with the lab's model and single-image latency, per format.

Usage: .venv/bin/python benchmarks/export_latency.py [--quick]

Each format (keras, onnx, tflite) is exported with mnist_core.interop.export, which checks the written file in
its own runtime (Keras loaded in safe mode, onnxruntime, the LiteRT interpreter) on the 10,000 test images:
the share of identical predicted digits (goal >= 99.9%) and the largest probability difference.
Latency is then timed side by side: ROUNDS interleaved rounds (round r starts at format r mod 3), each
timing CALLS single-image calls per format; the table gives the median, min and max of the per-round medians.
The model is a copy of saved_models/default in a temporary registry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import common
import numpy as np  # noqa: E402

from mnist_core import data as mnist_data  # noqa: E402
from mnist_core import registry  # noqa: E402
from mnist_core.interop import export, runtimes  # noqa: E402

FORMATS = export.FORMATS
ROUNDS = 9
CALLS = 50
SHIPPED_DEFAULT = common.ROOT / "saved_models" / registry.DEFAULT_MODEL


def interleaved_latency(opened: dict, images: np.ndarray, rounds: int, calls: int) -> dict[str, list[float]]:
    """{format: [median ms of each round]}, every round timing every format, in an order rotated by the round."""
    x = mnist_data.normalise(images)
    names = list(opened)
    for name in names:  # warm-up: first calls allocate, trace
        runtimes.single_image_ms(opened[name], x, 5)
    per_round = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times = runtimes.single_image_ms(opened[name], x[(r * calls) % len(x):], calls)
            per_round[name].append(statistics.median(times))
    return per_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="parity on 1,000 images, 3 rounds")
    args = parser.parse_args()
    parity_images, rounds = (1_000, 3) if args.quick else (export.TEST_IMAGES, ROUNDS)
    mnist = mnist_data.load()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        models = Path(tmp) / "models"
        shutil.copytree(SHIPPED_DEFAULT, models / registry.DEFAULT_MODEL)
        os.environ["MNIST_MODELS_DIR"] = str(models)
        results, opened, export_seconds = {}, {}, {}
        for fmt in FORMATS:
            out = Path(tmp) / f"default{runtimes.SUFFIXES[fmt]}"
            t0 = time.perf_counter()
            results[fmt] = export.export(registry.DEFAULT_MODEL, fmt, out, parity_images=parity_images,
                                         latency_calls=CALLS, mnist=mnist)
            export_seconds[fmt] = time.perf_counter() - t0
            opened[fmt] = runtimes.open_runtime(fmt, out)
        latency = interleaved_latency(opened, mnist.x_test[:500], rounds, CALLS)

    targets = []
    for fmt in FORMATS:
        parity = results[fmt]["parity"]
        targets.append(common.target(f"export {fmt}: same digit as the lab's model ({parity['images']:,} test images)",
                                     [100 * parity["agreement"]], f">= {100 * export.MIN_AGREEMENT:g} %", "%",
                                     parity["passed"]))
        targets.append(common.target(f"export {fmt}: max probability difference", [parity["max_abs_prob_diff"]],
                                     "(report)", "", None))
        targets.append(common.target(f"export {fmt}: single-image latency in {runtimes.RUNTIME_NAMES[fmt]}",
                                     latency[fmt], "(report)", "ms", None))
    details = {
        "method": __doc__.split("\n\n", 2)[1].replace("\n", " "),
        "rounds": rounds, "calls_per_round": CALLS, "parity_images": parity_images,
        "model_sha256": results["keras"]["source"]["model_sha256"],
        "per_format": {fmt: {"parity": results[fmt]["parity"], "latency_round_medians_ms": latency[fmt],
                             "file_bytes": results[fmt]["file_bytes"], "export_seconds": export_seconds[fmt],
                             "versions": results[fmt]["lab"]["versions"]} for fmt in FORMATS},
    }
    common.write("export", targets, details, args.quick)


if __name__ == "__main__":
    main()
