"""Time to 99.0% test accuracy: fast-cnn against keras-convnet, side by side, over 3 seeds.

Usage: .venv/bin/python benchmarks/time_to_accuracy.py [--quick] [--seeds 0,1,2] [--best]

The clock starts before the data are loaded and counts the split, the tf.data pipeline, model
building, compiling and training (with the presets' own validation split). Test accuracy on all
10,000 test images is checked every half epoch, for both models alike; the clock is paused while
the check runs, because it is the benchmark's measurement, not part of training. A run stops at
its first check at or above 99.0%.

Half-epoch checks: a model reaching 99.0% mid-epoch really has reached it then; checking only at
epoch ends would add up to one epoch of waiting to whichever model crosses mid-epoch, which blurs
the ratio (and favours neither model systematically).

It also reports fast-cnn's training throughput as GFLOP/s against a float32 matmul measured in
the same run, and splits the time per image into input pipeline, fixed per-step cost and kernels.

--best trains best-cnn once per seed (--seeds, default 0; about 7 minutes each on an idle 2-core machine)
and writes results/best_cnn.json.
--quick: 1 seed, keras-convnet capped at 3 epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace

import common
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mnist_core import data as mnist_data  # noqa: E402
from mnist_core import evaluate  # noqa: E402
from mnist_core.build import build  # noqa: E402
from mnist_core.presets import preset  # noqa: E402
from mnist_core.train import compile_model, fit, make_dataset, make_optimizer  # noqa: E402

TARGET = 0.99
SPEEDUP_GOAL = 4.0
ROUNDS = 7  # interleaved rounds of the time split (breakdown)


class Clock:
    """Wall time since start, minus the time spent in paused sections (the test-set checks)."""

    def __init__(self):
        self.start, self.paused = time.perf_counter(), 0.0

    def now(self) -> float:
        return time.perf_counter() - self.start - self.paused


class TestProbe(keras.callbacks.Callback):
    """Checks test accuracy `per_epoch` times per epoch; stops training at the first check >= target."""

    def __init__(self, clock: Clock, mnist, steps: int, per_epoch: int = 2, target: float = TARGET,
                 stop_at_target: bool = True, on_check=None):
        super().__init__()
        self.on_check = on_check
        self.clock, self.mnist, self.steps, self.target, self.stop_at_target = clock, mnist, steps, target, stop_at_target
        self.points = {round(steps * k / per_epoch) for k in range(1, per_epoch + 1)}
        self.epoch, self.checks, self.reached = 0, [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 not in self.points:
            return
        seconds = self.clock.now()
        t0 = time.perf_counter()
        probs = evaluate.probabilities(self.model, self.mnist.x_test)
        accuracy = float((probs.argmax(1) == self.mnist.y_test).mean())
        self.clock.paused += time.perf_counter() - t0
        self.checks.append({"epochs": round(self.epoch + (batch + 1) / self.steps, 3), "seconds": round(seconds, 2),
                            "test_accuracy": accuracy})
        print(f"    {self.model.name}: {self.checks[-1]['epochs']:.2f} epochs, {seconds:6.1f} s, "
              f"test accuracy {accuracy:.4f}", flush=True)
        if self.on_check:
            self.on_check(self.checks)
        if accuracy >= self.target and self.reached is None:
            self.reached = self.checks[-1]
            if self.stop_at_target:
                self.model.stop_training = True


def run_to_target(preset_name: str, seed: int, max_epochs: int | None = None, stop_at_target: bool = True,
                  on_check=None) -> dict:
    """Train a preset from scratch (timing data loading and building too) until the test-set target is reached."""
    spec, config = preset(preset_name).copy()
    config = replace(config, seed=seed)
    if max_epochs and config.schedule == "constant":
        config = replace(config, epochs=min(config.epochs, max_epochs))  # a constant LR does not depend on the total
    clock = Clock()
    mnist = mnist_data.load()
    steps = math.ceil(len(mnist.x_train) * (1 - config.validation_split) / config.batch_size)
    probe = TestProbe(clock, mnist, steps, stop_at_target=stop_at_target, on_check=on_check)
    first_batch = {}
    marker = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: first_batch.setdefault("seconds", clock.now()))
    result = fit(spec, config, mnist=mnist, extra_callbacks=[marker, probe])
    return {"preset": preset_name, "seed": seed, "batch_size": config.batch_size, "steps_per_epoch": steps,
            "setup_seconds": round(first_batch.get("seconds", math.nan), 2),
            "seconds_to_target": probe.reached["seconds"] if probe.reached else None,
            "epochs_to_target": probe.reached["epochs"] if probe.reached else None,
            "final_test_accuracy": probe.checks[-1]["test_accuracy"] if probe.checks else None,
            "checks": probe.checks, "model": result.model}


# ---------- how close to the machine ----------


def matmul_peak(n: int = 2048, repeats: int = 7) -> dict:
    """float32 GFLOP/s of a large matmul in TensorFlow: the machine's practical peak right now."""
    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    tf.matmul(a, b).numpy()  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tf.matmul(a, b).numpy()
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return {"n": n, "gflops_best": max(rates), "gflops_median": statistics.median(rates)}


def train_flops_per_image(model: keras.Model) -> dict:
    """Multiply-add FLOPs of the conv and dense layers (everything else is memory-bound and small).

    Backward costs twice the forward pass (gradients for inputs and weights), except in the first
    layer, which needs no input gradient.
    """
    forward, backward = 0, 0
    first = True
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            flops = 2 * h * w * c_out * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            flops = 2 * layer.input.shape[-1] * layer.units
        else:
            continue
        forward += flops
        backward += flops if first else 2 * flops
        first = False
    return {"forward": forward, "train": forward + backward}


def breakdown(preset_name: str, flops: int) -> dict:
    """Where the time per training image goes: input pipeline, fixed per-step cost, kernels.

    Every part, and the matmul peak it is compared with, is measured here back to back, so a change in
    the background load between the seeds above and this step cannot skew the split. Each kind of step
    is timed in ROUNDS interleaved rounds and its best round is kept. Timings on this shared machine are
    bimodal (about 220 or 330 µs per image, whatever the kind of step), and a part is the difference of
    two timings: with only 3 tries one kind could miss the fast mode entirely, which swung the input
    pipeline's share between 2% and 43% from one run to the next.
    """
    spec, config = preset(preset_name).copy()
    mnist = mnist_data.load()
    bs = config.batch_size
    peak = matmul_peak()["gflops_best"]
    model = build(spec)
    compile_model(model, config, 100)
    steps = 60

    def fit_seconds_per_step(ds) -> float:
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
        return (time.perf_counter() - t0) / steps

    n = bs * steps
    real = make_dataset(mnist.x_train[:n], mnist.y_train[:n], bs, shuffle_seed=0).repeat()
    x, y = mnist_data.normalise(mnist.x_train[:bs]), mnist.y_train[:bs].astype(np.int32)
    resident = tf.data.Dataset.from_tensors((x, y)).repeat()  # one batch already in memory: no pipeline work
    one = tf.data.Dataset.from_tensors((x[:1], y[:1])).repeat()  # a 1-image step is almost all fixed cost
    kinds = {"real": real, "resident": resident, "one": one}
    for ds in kinds.values():
        fit_seconds_per_step(ds)  # warm-up: traces the step for this input shape
    rounds = [{kind: fit_seconds_per_step(ds) for kind, ds in kinds.items()} for _ in range(ROUNDS)]
    step_real, step_full, step_one = (min(r[k] for r in rounds) for k in kinds)
    pipeline_per_image = (step_real - step_full) / bs
    kernels_per_image = max(step_full - step_one, 1e-9) / bs

    def per_step(xb, yb, steps=10) -> float:
        model.train_on_batch(xb, yb)  # trace this shape
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(xb, yb)
            times.append((time.perf_counter() - t0) / steps)
        return min(times)

    step_no_xla = per_step(x, y)
    # The same step with XLA (keras compile(jit_compile=True)), which train.py turns off.
    model = build(spec)
    model.compile(optimizer=make_optimizer(config, 100), loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=["accuracy"], jit_compile=True)
    step_xla = per_step(x, y)
    fit_per_image = step_real / bs
    fixed_per_image = step_one / bs  # a 1-image step is almost all fixed cost: Python, dispatch, optimizer update
    parts = {
        "input pipeline (tf.data gather + shuffle)": pipeline_per_image,
        "fixed per-step cost (Python, dispatch, optimizer)": fixed_per_image,
        "kernels (conv, dense, batch-norm, pooling)": kernels_per_image,
    }
    total = sum(parts.values())
    return {
        "batch_size": bs,
        "matmul_peak_gflops": peak,
        "fit_images_per_second": 1 / fit_per_image,
        "fit_gflops": flops / fit_per_image / 1e9,
        "fit_fraction_of_peak": flops / fit_per_image / 1e9 / peak,
        "rounds_seconds_per_step": rounds,
        "seconds_per_step_full_batch": step_full,
        "seconds_per_step_one_image": step_one,
        "seconds_per_train_on_batch_with_xla": step_xla,
        "xla_slowdown": step_xla / step_no_xla,
        "microseconds_per_image": {k: v * 1e6 for k, v in parts.items()},
        "share": {k: v / total for k, v in parts.items()},
        "kernel_gflops": flops / kernels_per_image / 1e9,
        "kernel_fraction_of_peak": flops / kernels_per_image / 1e9 / peak,
    }


def throughput(run: dict) -> float | None:
    """Training images/s between the first and the last check (after tracing and warm-up)."""
    checks = run["checks"]
    if len(checks) < 2:
        return None
    images = (checks[-1]["epochs"] - checks[0]["epochs"]) * run["steps_per_epoch"] * run["batch_size"]
    return images / (checks[-1]["seconds"] - checks[0]["seconds"])


# ---------- best-cnn ----------


def best_cnn(seeds: list[int]) -> None:
    """Train best-cnn's full schedule once per seed, checking test accuracy every half epoch.

    The result file is rewritten after every check (marked partial until the last seed ends), so a run
    cut short on a busy machine still leaves its curves behind.
    """
    _, config = preset("best-cnn").copy()
    print(f"best-cnn: {config.epochs} epochs, augment={config.augment}, seeds {seeds}", flush=True)
    runs: list[dict] = []

    def record(partial: bool) -> None:
        done = [r for r in runs if r["checks"] and r["checks"][-1]["epochs"] >= config.epochs]
        finals = [r["checks"][-1]["test_accuracy"] for r in done]
        totals = [r["checks"][-1]["seconds"] for r in done]
        name = "best-cnn" + (f" (PARTIAL: {len(done)} of {len(seeds)} seeds done)" if partial else "")
        accuracy = common.target(f"{name} final test accuracy", finals, ">= 0.995", "", None)
        seconds = common.target(f"{name} training time", totals, "<= 600 s", "s", None)
        if not partial:
            accuracy["met"] = accuracy["median"] >= 0.995
            seconds["met"] = seconds["median"] <= 600 and accuracy["met"]
        for r in runs:
            r["first_check_at_99.5"] = next((c for c in r["checks"] if c["test_accuracy"] >= 0.995), None)
        # "checks" is the first seed's curve, which the README prints; "runs" holds every seed's.
        details = {"checks": runs[0]["checks"], "first_check_at_99.5": runs[0]["first_check_at_99.5"],
                   "epochs": config.epochs, "partial": partial, "seeds": seeds, "runs": runs}
        common.write("best_cnn", [accuracy, seconds], details, quick=False)

    for seed in seeds:
        run = {"seed": seed, "checks": []}
        runs.append(run)

        def on_check(checks, run=run):
            run["checks"] = list(checks)
            record(True)

        run_to_target("best-cnn", seed, stop_at_target=False, on_check=on_check)
    record(False)


# ---------- main ----------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; --quick: 0)")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap for keras-convnet (default 8; --quick: 3)")
    parser.add_argument("--best", action="store_true", help="only train best-cnn (about 7 minutes)")
    parser.add_argument("--breakdown-only", action="store_true",
                        help="re-measure only fast-cnn's time split and update results/time_to_accuracy.json")
    args = parser.parse_args()
    if args.best:
        best_cnn([int(s) for s in (args.seeds or "0").split(",")])
        return
    if args.breakdown_only:
        result = json.loads((common.RESULTS / "time_to_accuracy.json").read_text())
        result["details"]["fast_cnn_breakdown"] = breakdown("fast-cnn", result["details"]["fast_cnn_flops_per_image"]["train"])
        common.write("time_to_accuracy", result["targets"], result["details"], result["quick"])
        print_breakdown(result["details"]["fast_cnn_breakdown"])
        return
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    cap = args.max_epochs or (3 if args.quick else 8)

    peaks, runs = [], []
    for seed in seeds:
        # Interleaved, so both models see the same background load on this shared machine.
        peaks.append(matmul_peak())
        for name in ("fast-cnn", "keras-convnet"):
            print(f"seed {seed}: {name}", flush=True)
            runs.append(run_to_target(name, seed, cap))
    fast_model = next(r["model"] for r in runs if r["preset"] == "fast-cnn")
    flops = train_flops_per_image(fast_model)
    for r in runs:
        r.pop("model")

    by = {name: [r for r in runs if r["preset"] == name] for name in ("fast-cnn", "keras-convnet")}
    ratios = []
    for fast, slow in zip(by["fast-cnn"], by["keras-convnet"], strict=True):
        if fast["seconds_to_target"] and slow["seconds_to_target"]:
            ratios.append(slow["seconds_to_target"] / fast["seconds_to_target"])
        elif fast["seconds_to_target"]:
            # keras-convnet missed 99.0% within the cap: its true time is longer, so this ratio is a lower bound
            ratios.append(slow["checks"][-1]["seconds"] / fast["seconds_to_target"])
    fast_ips = [v for v in (throughput(r) for r in by["fast-cnn"]) if v]
    peak = statistics.median(p["gflops_best"] for p in peaks)
    achieved = [ips * flops["train"] / 1e9 for ips in fast_ips]
    print("measuring the breakdown of fast-cnn's time per image", flush=True)
    split = breakdown("fast-cnn", flops["train"])

    all_fast_reached = all(r["seconds_to_target"] for r in by["fast-cnn"])
    slow_missed = [r["seed"] for r in by["keras-convnet"] if not r["seconds_to_target"]]
    targets = [
        common.target("time to 99.0%: fast-cnn", [r["seconds_to_target"] for r in by["fast-cnn"]],
                      "reaches it", "s", all_fast_reached),
        common.target("time to 99.0%: keras-convnet", [r["seconds_to_target"] for r in by["keras-convnet"]],
                      f"(reference, cap {cap} epochs)", "s", None),
        common.target("time to 99.0%: speed-up vs keras-convnet", ratios, f">= {SPEEDUP_GOAL:g}x", "x",
                      bool(ratios) and len(ratios) == len(seeds) and statistics.median(ratios) >= SPEEDUP_GOAL),
        common.target("fast-cnn training GFLOP/s", achieved, "(report)", "GFLOP/s", None),
        common.target("float32 matmul peak GFLOP/s", [p["gflops_best"] for p in peaks], "(report)", "GFLOP/s", None),
        common.target("fast-cnn fraction of matmul peak", [a / peak for a in achieved], "(report)", "", None),
    ]
    details = {
        "target_accuracy": TARGET, "checks_per_epoch": 2, "keras_convnet_epoch_cap": cap,
        "keras_convnet_missed_target_for_seeds": slow_missed,
        "ratio_note": "a seed where keras-convnet missed 99.0% within the cap uses its total time (a lower bound)",
        "runs": runs, "matmul_peak": peaks, "fast_cnn_flops_per_image": flops,
        "fast_cnn_train_images_per_second": fast_ips, "fast_cnn_breakdown": split,
    }
    common.write("time_to_accuracy", targets, details, args.quick)
    if split:
        print_breakdown(split)


def print_breakdown(split: dict) -> None:
    if split:
        for part, share in split["share"].items():
            print(f"  {share:6.1%}  {split['microseconds_per_image'][part]:8.1f} us/image  {part}")
        print(f"  matmul peak {split['matmul_peak_gflops']:.1f} GFLOP/s; training through fit {split['fit_gflops']:.1f} GFLOP/s "
              f"({split['fit_fraction_of_peak']:.0%}); kernels alone {split['kernel_gflops']:.1f} GFLOP/s "
              f"({split['kernel_fraction_of_peak']:.0%})")
        print(f"  a training step with XLA (jit_compile=True) takes {split['xla_slowdown']:.1f}x as long")


if __name__ == "__main__":
    main()
