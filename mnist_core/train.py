"""Fit a ModelSpec with a TrainConfig, reporting progress as events.

Events are plain dicts, so they can go to a callback, a JSON-lines file or a test:
  {"event": "start", "epochs", "steps_per_epoch", "params"}
  {"event": "batch", "epoch", "batch", "steps", "loss", "accuracy", "elapsed"}
  {"event": "epoch", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "elapsed"}
  {"event": "done" | "stopped" | "failed", ...}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from mnist_core import data as mnist_data
from mnist_core.build import build
from mnist_core.spec import ModelSpec, TrainConfig

Event = dict
BATCH_EVENT_SECONDS = 0.25  # batch events are throttled: enough for a smooth bar, cheap to write


@dataclass
class FitResult:
    model: keras.Model
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    total = max(1, steps_per_epoch * config.epochs)
    lr = config.learning_rate
    if config.schedule == "cosine":
        warmup = int(total * config.warmup_fraction)
        lr = keras.optimizers.schedules.CosineDecay(
            lr if warmup == 0 else lr / 10, total - warmup, alpha=0.01,
            warmup_target=lr if warmup else None, warmup_steps=warmup)
    elif config.schedule == "one-cycle":
        # One-cycle: linear warm-up from lr/10 to lr, then cosine down to almost nothing.
        warmup = max(1, int(total * (config.warmup_fraction or 0.25)))
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate / 10, total - warmup, alpha=0.002,
            warmup_target=config.learning_rate, warmup_steps=warmup)
    optimizers = {
        "adam": lambda: keras.optimizers.Adam(lr),
        "adamw": lambda: keras.optimizers.AdamW(lr),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        "adadelta": lambda: keras.optimizers.Adadelta(lr),
    }
    return optimizers[config.optimizer]()


def compile_model(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    # Keras's default jit_compile="auto" turns XLA on, and on this CPU XLA makes the small convs of
    # these models 2-10x slower per step (measured by benchmarks/time_to_accuracy.py), so it stays off.
    model.compile(optimizer=make_optimizer(config, steps_per_epoch),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"], jit_compile=False)


def _augmenter(seed: int):
    # Small shifts and rotations, as handwriting varies; applied to training batches only.
    return keras.Sequential([
        keras.layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 1),
    ])


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle_seed: int | None = None,
                 augment: bool = False) -> tf.data.Dataset:
    # The whole split stays in memory as one uint8 tensor; each batch is gathered by shuffled index and
    # normalised there. Shuffling 54,000 indices is far cheaper than pushing 54,000 single float images
    # through a shuffle buffer, and a uint8 tensor is 4x cheaper to capture into the pipeline than
    # float32 (measured here: about 2 s instead of 5.5 s to build it and run one epoch through it).
    images, labels = tf.constant(np.asarray(x, np.uint8)), tf.constant(np.asarray(y, np.int32))
    ds = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (mnist_data.normalise(tf.gather(images, i)), tf.gather(labels, i)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        aug = _augmenter(shuffle_seed or 0)
        ds = ds.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


class _EventCallback(keras.callbacks.Callback):
    def __init__(self, on_event: Callable[[Event], None], should_stop: Callable[[], bool], steps: int):
        super().__init__()
        self.on_event, self.should_stop, self.steps = on_event, should_stop, steps
        self.start = time.perf_counter()
        self.epoch_start = self.start
        self.last_batch_event = 0.0
        self.epoch = 0
        self.stopped = False
        self.history: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self.last_batch_event >= BATCH_EVENT_SECONDS or batch + 1 == self.steps:
            self.last_batch_event = now
            logs = logs or {}
            self.on_event({"event": "batch", "epoch": self.epoch, "batch": batch + 1, "steps": self.steps,
                           "loss": float(logs.get("loss", math.nan)), "accuracy": float(logs.get("accuracy", math.nan)),
                           "elapsed": now - self.start})
        if self.should_stop():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.stopped:
            return  # a partial epoch's metrics would mislead the curves
        logs = logs or {}
        now = time.perf_counter()
        row = {"epoch": epoch + 1, "seconds": now - self.epoch_start, "elapsed": now - self.start}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                row[key] = float(logs[key])
        lr = self.model.optimizer.learning_rate
        row["learning_rate"] = float(lr.numpy() if hasattr(lr, "numpy") else lr)
        self.history.append(row)
        self.on_event({"event": "epoch", **row})


def fit(spec: ModelSpec, config: TrainConfig, on_event: Callable[[Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None, mnist: mnist_data.Mnist | None = None,
        extra_callbacks: list | None = None) -> FitResult:
    """Build and train. Data are the official training images, split by config.validation_split.

    The test set is never touched here; evaluate it separately.
    """
    emit = on_event or (lambda e: None)
    stop = should_stop or (lambda: False)
    spec.validate()
    mnist = mnist or mnist_data.load()
    config.validate(len(mnist.x_train))
    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()

    (x_tr, y_tr), (x_val, y_val) = mnist_data.split(mnist.x_train, mnist.y_train, config.validation_split, config.seed)
    train_ds = make_dataset(x_tr, y_tr, config.batch_size, shuffle_seed=config.seed, augment=config.augment)
    val_ds = make_dataset(x_val, y_val, 1000) if len(x_val) else None
    steps = math.ceil(len(x_tr) / config.batch_size)

    model = build(spec)
    compile_model(model, config, steps)
    emit({"event": "start", "epochs": config.epochs, "steps_per_epoch": steps, "params": int(model.count_params()),
          "train_size": len(x_tr), "validation_size": len(x_val)})
    callback = _EventCallback(emit, stop, steps)
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, verbose=0, shuffle=False,
              callbacks=[callback, *(extra_callbacks or [])])
    return FitResult(model, callback.history, time.perf_counter() - started, callback.stopped)


def time_batches(spec: ModelSpec, config: TrainConfig, mnist: mnist_data.Mnist, batches: int = 8) -> float:
    """Measured seconds per epoch: time a few real training steps after one warm-up step."""
    keras.utils.set_random_seed(config.seed)
    model = build(spec)
    steps = math.ceil(len(mnist.x_train) * (1 - config.validation_split) / config.batch_size)
    compile_model(model, config, steps)
    n = config.batch_size * (batches + 1)
    x, y = mnist_data.normalise(mnist.x_train[:n]), mnist.y_train[:n].astype(np.int32)
    model.train_on_batch(x[: config.batch_size], y[: config.batch_size])  # traces the step function
    times = []
    for i in range(1, batches + 1):
        sl = slice(i * config.batch_size, (i + 1) * config.batch_size)
        t0 = time.perf_counter()
        model.train_on_batch(x[sl], y[sl])
        times.append(time.perf_counter() - t0)
    # The median, not the mean: on a shared machine one batch that lost the CPU would skew a mean of eight.
    return float(np.median(times)) * steps


def eval_images_per_second(model: keras.Model, images_uint8: np.ndarray, n: int = 3000) -> float:
    """Warm throughput of batch evaluation (evaluate.probabilities), best of 3 passes over n test images.

    The full evaluation before it has warmed the model up, so this measures the steady state, not
    the first call; the best pass is the least disturbed by other work on a shared machine.
    """
    from mnist_core import evaluate

    x = images_uint8[:n]
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        evaluate.probabilities(model, x)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def train_and_save(spec: ModelSpec, config: TrainConfig, name: str, on_event: Callable[[Event], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, mnist: mnist_data.Mnist | None = None,
                   preset: str | None = None, extra_metadata: dict | None = None) -> dict | None:
    """Train, evaluate once on the 10,000 test images, and save with full metadata.

    `extra_metadata` is merged in (e.g. the study and trial a model came from).
    Returns the metadata, or None if a stop was requested (then nothing is saved).
    """
    from mnist_core import evaluate, registry
    from mnist_core.spec import to_dict

    emit = on_event or (lambda e: None)
    registry.check_free(name)
    mnist = mnist or mnist_data.load()
    result = fit(spec, config, emit, should_stop, mnist)
    if result.stopped:
        emit({"event": "stopped", "message": "stopped by request; nothing was saved"})
        return None
    emit({"event": "evaluating"})
    test, _ = evaluate.evaluate(result.model, mnist.x_test, mnist.y_test)
    eval_rate = eval_images_per_second(result.model, mnist.x_test)

    metadata = {
        "spec": to_dict(spec),
        "config": to_dict(config),
        "preset": preset,
        "history": result.history,
        "test": test,
        "eval_images_per_second": eval_rate,
        "parameters": int(result.model.count_params()),
        "train_seconds": round(result.seconds, 2),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "data_checksum": mnist.checksum,
        "seed": config.seed,
        **(extra_metadata or {}),
    }
    registry.save(name, result.model, metadata)
    emit({"event": "done", "name": name, "test_accuracy": test["accuracy"], "test_loss": test["loss"]})
    return metadata
