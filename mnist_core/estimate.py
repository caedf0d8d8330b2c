"""How long a whole training job takes, in parts: start-up, epochs (training steps and validation) and the
final evaluation and save, measured on a few real steps through the path the job itself takes.

`time_steps` builds the model, the tf.data pipeline with the config's augmentation and, when
adversarial_eps > 0, the AdversarialTrainer, exactly as train.fit does, and times a few steps of
Keras's own fit loop, then two validation passes of the batch size the job validates with. It runs in the
caller's process (the dashboard), so it refuses what cost.too_costly_to_time refuses, before building
anything. `job_estimate` turns that into the parts a job costs; for a spec too heavy to time it falls back
to FLOPs (cost.flops_epoch_seconds) and says so.

What cannot be timed in a warm process is a fresh process's own start (Python, TensorFlow and Keras
imports, the MNIST load) and the save: those are constants, measured by benchmarks/job_eta.py.
"""

from __future__ import annotations

import gc
import math
import time

from mnist_core import cost
from mnist_core.errors import LabError
from mnist_core.spec import TRAIN_SIZE, ModelSpec, TrainConfig

TIMED_STEPS = 8  # at least this many steps are timed after the traced first one
# ... and more, up to MAX_TIMED_STEPS, until they span MIN_TIMED_SECONDS: eight steps of a small MLP last
# 25 ms, far too short to average over what else the shared cores are doing.
MIN_TIMED_SECONDS = 1.0
MAX_TIMED_STEPS = 400
VALIDATION_BATCH = 1000  # train.fit validates in batches of this size
TEST_IMAGES = 10_000
# The final evaluation: one pass over the test set (it also gives the metadata its images per second).
EVALUATION_IMAGES = TEST_IMAGES
# `python -m mnist_core train` from launch until fit starts building its model: interpreter, TensorFlow and
# Keras imports, the verified MNIST load and the split. benchmarks/estimate.py measures it from each job's
# events ("process_start_seconds"): 8-16 s at load averages of 8-12 on the 2 shared cores, about 5 s at
# load 1.6 (benchmarks/job_eta.py's first curve point, which includes the first step):
#   nice -n 5 .venv/bin/python benchmarks/estimate.py --repeats 2
PROCESS_START_SECONDS = 8.0
# After the last epoch, besides the forward passes the estimate counts: the metrics and the registry's atomic
# save with its sha256 (the same benchmark's "finish_seconds": 0.0-0.4 s).
SAVE_SECONDS = 0.5
PARTS = ("startup_seconds", "epoch_seconds", "evaluation_seconds")


def train_images(config: TrainConfig) -> int:
    return int(TRAIN_SIZE * (1 - config.validation_split))


def steps_per_epoch(config: TrainConfig) -> int:
    return math.ceil(train_images(config) / config.batch_size)


def validation_images(config: TrainConfig) -> int:
    return TRAIN_SIZE - train_images(config)


def most_steps(spec: ModelSpec, config: TrainConfig, steps: int) -> int:
    """How many steps time_steps may time to reach MIN_TIMED_SECONDS: at most MAX_TIMED_STEPS, within
    cost.MAX_TIMED_FLOPS and the training split, and never fewer than `steps`."""
    per_step = max(1, cost.timing_flops(spec, config, 0))
    by_flops = cost.MAX_TIMED_FLOPS // per_step - 1
    by_images = train_images(config) // config.batch_size - 1
    return max(steps, min(MAX_TIMED_STEPS, by_flops, by_images))


def time_steps(spec: ModelSpec, config: TrainConfig, mnist, steps: int = TIMED_STEPS) -> dict:
    """Time at least `steps` training steps (after one traced warm-up step; more, up to most_steps, until they
    span MIN_TIMED_SECONDS) and two validation passes, built as train.fit builds them. Returns seconds:
    "step" (the median warm step), "step_mean", "setup" (pipeline, model, compile and the first step beyond
    a warm one), "build" (pipeline, model and compile alone), "validation_trace" (the
    first validation pass beyond a warm one), "forward_1000" (a warm validation pass of 1,000 images) and
    "evaluate_1000" (the same through evaluate.probabilities, as the final evaluation runs). Raises LabError
    for a spec over the lab's limits or too heavy to time here, before anything is built."""
    cost.check(spec, config)
    too_costly = cost.too_costly_to_time(spec, config, steps)
    if too_costly:
        raise LabError(f"not timed: {too_costly}")

    # The caller's garbage (a dashboard holds many models' graphs) is collected now, not during the timing:
    # a job's fresh process does not pay for it. benchmarks/estimate.py saw a 75 s set-up in a long-lived
    # process without this.
    gc.collect()
    gc.disable()
    try:
        return _timed(spec, config, mnist, steps)
    finally:
        gc.enable()


def _timed(spec: ModelSpec, config: TrainConfig, mnist, steps: int) -> dict:
    import keras
    import numpy as np

    from mnist_core import evaluate, precision
    from mnist_core.adversarial import AdversarialTrainer
    from mnist_core.build import build
    from mnist_core.train import EventCallback, compile_model, make_dataset

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            timed = len(self.ends) - 1
            if timed >= steps and self.ends[-1] - self.ends[0] >= MIN_TIMED_SECONDS:
                self.model.stop_training = True

    keras.utils.set_random_seed(config.seed)
    n = config.batch_size * (most_steps(spec, config, steps) + 1)
    started = time.perf_counter()
    picked = np.arange(n) % len(mnist.x_train)  # a small fixture's images repeat to fill the timed steps
    dataset = make_dataset(mnist.x_train[picked], mnist.y_train[picked], config.batch_size, shuffle_seed=config.seed,
                           augment=config.augment)
    chosen = precision.choose(spec)  # the precision train.fit will pick, so the same kernels are timed
    with precision.policy(chosen):
        model = build(spec)
        trainer = AdversarialTrainer(model, config.adversarial_eps, config.seed) if config.adversarial_eps else model
        compile_model(trainer, config, steps_per_epoch(config))
    clock = StepClock()
    # The job's own progress callback runs on every step, as it does in the job (its events go nowhere here).
    progress = EventCallback(lambda event: None, lambda: False, steps_per_epoch(config), epochs=config.epochs,
                             train_size=train_images(config), batch_size=config.batch_size)
    built = time.perf_counter() - started
    trainer.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[progress, clock])
    # Between consecutive batch ends: the step, the wait for its batch and the callbacks, as in a job.
    # The median of a second's worth of steps: the mean let one stall of this process (seconds, on the
    # shared cores) double an estimate in benchmarks/estimate.py.
    step = float(np.median(np.diff(clock.ends)))
    step_mean = float(np.mean(np.diff(clock.ends)))
    setup = max(0.0, clock.ends[0] - started - step)

    x_val, y_val = mnist.x_train[-VALIDATION_BATCH:], mnist.y_train[-VALIDATION_BATCH:]
    validation = make_dataset(x_val, y_val, VALIDATION_BATCH)
    passes = []
    for _ in range(2):  # the first traces Keras's test function, as a job's first epoch does
        t0 = time.perf_counter()
        trainer.evaluate(validation, verbose=0)
        passes.append(time.perf_counter() - t0)
    # The final evaluation (evaluate.probabilities) runs its own traced function at its own batch size, so it is
    # timed as it runs rather than assumed equal to Keras's validation pass.
    saved = precision.as_float32(model, lambda: build(spec))  # what train_and_save evaluates
    calls = []
    for _ in range(2):
        t0 = time.perf_counter()
        evaluate.probabilities(saved, x_val)
        calls.append(time.perf_counter() - t0)
    return {"step": step, "step_mean": step_mean, "setup": setup, "build": built,
            "validation_trace": max(0.0, passes[0] - passes[1]),
            "forward_1000": passes[1] * 1000 / len(x_val), "evaluate_1000": calls[1] * 1000 / len(x_val),
            "precision": chosen}


def parts_from_timing(config: TrainConfig, timed: dict) -> dict:
    """The job's parts from time_steps' figures: every number a sum of measured pieces and the constants."""
    validation = validation_images(config) / 1000 * timed["forward_1000"]
    epoch = steps_per_epoch(config) * timed["step"] + validation
    startup = PROCESS_START_SECONDS + timed["setup"] + timed["validation_trace"]
    evaluation = SAVE_SECONDS + EVALUATION_IMAGES / 1000 * timed["evaluate_1000"]
    return with_total({"startup_seconds": startup, "epoch_seconds": epoch, "epochs": config.epochs,
                       "evaluation_seconds": evaluation, "validation_seconds": validation})


def parts_from_flops(spec: ModelSpec, config: TrainConfig) -> dict:
    """For a spec too heavy to time: training at cost.ASSUMED_FLOPS_PER_SECOND, a forward pass a third of
    a training step, set-up as one epoch's hundredth on top of the process start."""
    epoch_train = cost.flops_epoch_seconds(spec, config, train_images(config))
    forward_per_image = cost.estimate(spec).forward_flops / cost.ASSUMED_FLOPS_PER_SECOND
    validation = validation_images(config) * forward_per_image
    return with_total({"startup_seconds": PROCESS_START_SECONDS + epoch_train / 100,
                       "epoch_seconds": epoch_train + validation, "epochs": config.epochs,
                       "evaluation_seconds": SAVE_SECONDS + EVALUATION_IMAGES * forward_per_image,
                       "validation_seconds": validation})


def with_total(parts: dict) -> dict:
    """`parts` with "total_seconds": start-up, every epoch, then the evaluation."""
    total = parts["startup_seconds"] + parts["epochs"] * parts["epoch_seconds"] + parts["evaluation_seconds"]
    return {**parts, "total_seconds": total}


def job_estimate(spec: ModelSpec, config: TrainConfig, mnist, steps: int = TIMED_STEPS) -> dict:
    """What a training job of `spec` with `config` will take on an idle machine, in seconds:
    {"startup_seconds", "epoch_seconds" (training steps and validation), "epochs", "evaluation_seconds",
    "validation_seconds" (per epoch, within epoch_seconds), "total_seconds", "measured": bool, "note"}.
    Timed on real steps when cheap enough, otherwise from FLOPs. Raises LabError for a spec over the
    lab's limits (cost.check)."""
    cost.check(spec, config)
    too_costly = cost.too_costly_to_time(spec, config, steps)
    if too_costly:
        return {**parts_from_flops(spec, config), "measured": False,
                "note": f"Estimated from FLOPs at {cost.ASSUMED_FLOPS_PER_SECOND / 1e9:.0f} GFLOP/s, not timed: "
                        f"{too_costly}."}
    what = ["the input pipeline"] + (["augmentation"] if config.augment else [])
    what += ["adversarial examples"] if config.adversarial_eps else []
    return {**parts_from_timing(config, time_steps(spec, config, mnist, steps)), "measured": True,
            "note": f"Timed on {steps} real training steps ({', '.join(what)} included) and a validation pass on "
                    "this machine; the process start and the save are measured constants."}


def recorded(estimate: dict) -> dict:
    """The numeric parts a job records with itself (jobs.start_train's `estimate`)."""
    return {k: float(estimate[k]) for k in (*PARTS, "validation_seconds", "total_seconds") if k in estimate}
