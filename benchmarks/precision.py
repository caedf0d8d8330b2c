"""bf16 mixed precision against float32, per preset: one training step's time in each, interleaved round by round,
next to both matmul peaks. This is what MNIST_PRECISION=auto's threshold (precision.MIN_FORWARD_FLOPS) rests on.

Usage: .venv/bin/python benchmarks/precision.py [--quick] [--rounds 5]
Writes results/precision.json. Each preset's step is timed on the same real batches in both policies; the
best of each policy's rounds is kept (the least disturbed by other work on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import time

import common
import numpy as np
from time_to_accuracy import peaks

from mnist_core import cost, data, precision
from mnist_core.build import build
from mnist_core.presets import preset
from mnist_core.train import compile_model

PRESETS = ("fast-cnn", "keras-convnet", "best-cnn", "cnn-classic", "mlp-2x512")
STEPS = 10


def step_seconds(preset_name: str, rounds: int) -> dict:
    import keras

    spec, config = preset(preset_name).copy()
    mnist = data.load()
    bs = config.batch_size
    x = data.normalise(mnist.x_train[: bs * (STEPS + 1)])
    y = mnist.y_train[: bs * (STEPS + 1)].astype(np.int32)
    models = {}
    for name in precision.PRECISIONS:
        with precision.policy(name):
            model = build(spec)
            compile_model(model, config, 100)
        model.train_on_batch(x[:bs], y[:bs])  # traces the step
        models[name] = model
    times = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            for i in range(1, STEPS + 1):
                model.train_on_batch(x[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs])
            times[name].append((time.perf_counter() - t0) / STEPS)
    keras.backend.clear_session()
    best = {name: min(t) for name, t in times.items()}
    return {"preset": preset_name, "forward_mflops": cost.estimate(spec).forward_flops / 1e6,
            "chosen": precision.choose(spec), "seconds_per_step": times, "best": best,
            "bf16_speedup": best[precision.FLOAT32] / best[precision.MIXED_BF16]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    os.environ[precision.OVERRIDE_VARIABLE] = precision.AUTO  # "chosen" below is what the auto rule picks
    measured_peaks = peaks()
    results = []
    for name in PRESETS[:2] if args.quick else PRESETS:
        results.append(step_seconds(name, rounds))
        r = results[-1]
        print(f"{name}: {r['forward_mflops']:.1f} MFLOPs/image, bf16 {r['bf16_speedup']:.2f}x, chosen {r['chosen']}",
              flush=True)
    targets = [common.target("float32 matmul peak (precision benchmark)", [measured_peaks["float32"]["gflops_best"]],
                             "(report)", "GFLOP/s", None),
               common.target("bfloat16 matmul peak (precision benchmark)", [measured_peaks["bfloat16"]["gflops_best"]],
                             "(report)", "GFLOP/s", None)]
    for r in results:
        # The auto rule is right when it picks bf16 exactly where bf16 is faster.
        right = (r["chosen"] == precision.MIXED_BF16) == (r["bf16_speedup"] > 1)
        targets.append(common.target(f"{r['preset']} ({r['forward_mflops']:.1f} MFLOPs/image): training step, "
                                     f"bf16 speed-up over float32 (auto picks {r['chosen']})", [r["bf16_speedup"]],
                                     "bf16 chosen where > 1", "x", right))
    common.write("precision", targets, {"peaks": measured_peaks, "presets": results, "rounds": rounds,
                                        "cpu_has_bf16": precision.cpu_has_bf16()}, args.quick)


if __name__ == "__main__":
    main()
