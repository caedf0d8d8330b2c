"""Fit a ModelSpec with a TrainConfig, reporting progress as events.

Events are plain dicts, so they can go to a callback, a JSON-lines file or a test:
  {"event": "start", "epochs", "steps_per_epoch", "params", "train_size", "validation_size"}
  {"event": "batch", "epoch", "batch", "steps", "images", "loss", "accuracy", "elapsed"}
  {"event": "epoch", "epoch", "images", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "elapsed",
   "learning_rate"}
  {"event": "done" | "stopped" | "failed", ...}
Batch events are throttled (BATCH_EVENT_SECONDS); the curve a run keeps is recorded separately, at a
fixed number of points per epoch (see EventCallback).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from mnist_core import cost, precision
from mnist_core import data as mnist_data
from mnist_core.adversarial import AdversarialTrainer
from mnist_core.augment import make_augmenter, with_flagged_ones
from mnist_core.build import build
from mnist_core.spec import REAL_INPUT, ModelSpec, TrainConfig

Event = dict
BATCH_EVENT_SECONDS = 0.25  # batch events are throttled: enough for a smooth bar, cheap to write
CURVE_POINTS_PER_EPOCH = 100  # the stored training curve: smooth at any zoom a page offers
MAX_CURVE_POINTS = 10_000  # over all epochs, so metadata.json stays far below the registry's 4 MB bound
STOPPED_BY_REQUEST = "stopped by request"


@dataclass
class FitResult:
    """What fit returns.

    history: one row per completed epoch (see the "epoch" event). curve: the training loss and accuracy at
    batch resolution (see EventCallback). stopped: a stop was requested. stopped_at_epoch: the epoch that was
    running when it came. best_epoch: with keep_best, the completed epoch whose weights the model now holds.
    early_stopped: {"epoch", "best_epoch"} when TrainConfig.patience ended the run (best weights restored).
    precision: the Keras dtype policy training ran in (mnist_core.precision); the model is float32 either way.
    """

    model: keras.Model
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    curve: list[dict] = field(default_factory=list)
    stopped_at_epoch: int | None = None
    best_epoch: int | None = None
    early_stopped: dict | None = None
    precision: str = precision.FLOAT32


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


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle_seed: int | None = None,
                 augment: bool | str = False) -> tf.data.Dataset:
    # The whole split stays in memory as one uint8 tensor; each batch is gathered by shuffled index and
    # normalised there. Shuffling 54,000 indices is far cheaper than pushing 54,000 single float images
    # through a shuffle buffer, and a uint8 tensor is 4x cheaper to capture into the pipeline than
    # float32 (measured here: about 2 s instead of 5.5 s to build it and run one epoch through it).
    if augment == REAL_INPUT:
        x = with_flagged_ones(x, y, shuffle_seed or 0)
    images, labels = tf.constant(np.asarray(x, np.uint8)), tf.constant(np.asarray(y, np.int32))
    ds = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (mnist_data.normalise(tf.gather(images, i)), tf.gather(labels, i)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    augmenter = make_augmenter(augment, shuffle_seed or 0)  # augment: a level of mnist_core.augment.LEVELS
    if augmenter is not None:
        ds = ds.map(lambda a, b: (augmenter(a), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(pipeline_options())


def pipeline_options(autotune: bool = False) -> tf.data.Options:
    """The pipeline runs without tf.data's autotuner. Its model thread is joined when fit drops its iterator, and
    that join made fit sit 11-17 s after its last epoch in 3 of 4 idle fast-cnn runs, which also trained 20% slower
    with it on (benchmarks/fit_stall.py). With it off, AUTOTUNE fixes each map at one call per core (at most 16)."""
    options = tf.data.Options()
    options.autotune.enabled = autotune
    return options


def curve_stride(steps: int, epochs: int) -> int:
    """Record every n-th batch, so an epoch has at most min(CURVE_POINTS_PER_EPOCH, MAX_CURVE_POINTS // epochs)
    points (at least 1); its last batch is always one of them."""
    per_epoch = max(1, min(CURVE_POINTS_PER_EPOCH, MAX_CURVE_POINTS // max(1, epochs)))
    return math.ceil(steps / per_epoch)


class EventCallback(keras.callbacks.Callback):
    """Reports progress as events, honours stop requests, and records the run's curve.

    The curve holds one point per `curve_stride` batches: {"epoch": fractional epoch (epoch - 1 + batch /
    steps), "images": training images seen so far, "seconds": since training started, "loss", "accuracy"}.
    Loss and accuracy are Keras's running means over the epoch so far. That bounds it at 100 points per
    epoch and MAX_CURVE_POINTS (10,000, about 1.3 MB of metadata) per run, whatever the step count.

    With keep_best, the weights at the end of the best completed epoch so far (lowest val_loss, or the
    latest epoch without validation) are kept in memory, so a stopped run can still be saved at its best.
    """

    def __init__(self, on_event: Callable[[Event], None], should_stop: Callable[[], bool], steps: int, *,
                 epochs: int = 1, train_size: int = 0, batch_size: int = 0, keep_best: bool = False):
        super().__init__()
        self.on_event, self.should_stop, self.steps = on_event, should_stop, steps
        self.train_size, self.batch_size = train_size, batch_size
        self.stride = curve_stride(steps, epochs)
        self.keep_best = keep_best
        self.start = time.perf_counter()
        self.epoch_start = self.start
        self.last_batch_event = 0.0
        self.epoch = 0
        self.stopped = False
        self.history: list[dict] = []
        self.curve: list[dict] = []
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_weights: list | None = None

    def images_seen(self, epoch: int, batches: int) -> int:
        """Training images through the model after `batches` batches of 1-based `epoch` (the last batch may be short)."""
        return (epoch - 1) * self.train_size + min(batches * self.batch_size, self.train_size)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        done = batch + 1
        logs = logs or {}
        if done % self.stride == 0 or done == self.steps:
            self.curve.append({"epoch": round(self.epoch - 1 + done / self.steps, 5),
                               "images": self.images_seen(self.epoch, done), "seconds": round(now - self.start, 3),
                               "loss": float(logs.get("loss", math.nan)),
                               "accuracy": float(logs.get("accuracy", math.nan))})
        if now - self.last_batch_event >= BATCH_EVENT_SECONDS or done == self.steps:
            self.last_batch_event = now
            self.on_event({"event": "batch", "epoch": self.epoch, "batch": done, "steps": self.steps,
                           "images": self.images_seen(self.epoch, done),
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
        row = {"epoch": epoch + 1, "images": self.images_seen(epoch + 1, self.steps),
               "seconds": now - self.epoch_start, "elapsed": now - self.start}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                row[key] = float(logs[key])
        lr = self.model.optimizer.learning_rate
        row["learning_rate"] = float(lr.numpy() if hasattr(lr, "numpy") else lr)
        self.history.append(row)
        self.on_event({"event": "epoch", **row})
        score = row.get("val_loss", -float(epoch))  # without validation, the latest epoch counts as best
        if score < self.best_loss:
            self.best_loss, self.best_epoch = score, epoch + 1
            if self.keep_best:
                self.best_weights = self.model.get_weights()


def fit(spec: ModelSpec, config: TrainConfig, on_event: Callable[[Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None, mnist: mnist_data.Mnist | None = None,
        extra_callbacks: list | None = None, keep_best: bool = False) -> FitResult:
    """Build and train. Data are the official training images, split by config.validation_split.

    With config.patience, training ends once val_loss has not improved for that many epochs and the model
    gets the best epoch's weights back. With keep_best, a run stopped by request after at least one
    completed epoch returns the weights of its best completed epoch (result.best_epoch).
    The test set is never touched here; evaluate it separately.
    """
    emit = on_event or (lambda e: None)
    stop = should_stop or (lambda: False)
    spec.validate()
    cost.check(spec, config)  # the batch's memory too, before any data is loaded or a layer built
    mnist = mnist or mnist_data.load()
    config.validate(len(mnist.x_train))
    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()

    (x_tr, y_tr), (x_val, y_val) = mnist_data.split(mnist.x_train, mnist.y_train, config.validation_split, config.seed)
    train_ds = make_dataset(x_tr, y_tr, config.batch_size, shuffle_seed=config.seed, augment=config.augment)
    val_ds = make_dataset(x_val, y_val, 1000) if len(x_val) else None
    steps = math.ceil(len(x_tr) / config.batch_size)

    chosen = precision.choose(spec)
    with precision.policy(chosen):
        model = build(spec)
        # With adversarial_eps the wrapper only changes how training batches are made; `model` is what is saved.
        trainer = AdversarialTrainer(model, config.adversarial_eps, config.seed) if config.adversarial_eps else model
        compile_model(trainer, config, steps)
    emit({"event": "start", "epochs": config.epochs, "steps_per_epoch": steps, "params": int(model.count_params()),
          "train_size": len(x_tr), "validation_size": len(x_val)})
    callback = EventCallback(emit, stop, steps, epochs=config.epochs, train_size=len(x_tr),
                             batch_size=config.batch_size, keep_best=keep_best)
    callbacks = [callback, *(extra_callbacks or [])]
    early = None
    if config.patience:
        early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
        callbacks.append(early)
    trainer.fit(train_ds, validation_data=val_ds, epochs=config.epochs, verbose=0, shuffle=False, callbacks=callbacks)
    result = FitResult(model, callback.history, time.perf_counter() - started, callback.stopped, callback.curve,
                       precision=chosen)
    if callback.stopped:
        result.stopped_at_epoch = callback.epoch
        if callback.best_weights is not None:
            # After EarlyStopping's own restore, which may have counted the partial epoch's validation.
            trainer.set_weights(callback.best_weights)
            result.best_epoch = callback.best_epoch
    elif early is not None and early.stopped_epoch > 0:
        result.early_stopped = {"epoch": early.stopped_epoch + 1, "best_epoch": early.best_epoch + 1}
    result.model = precision.as_float32(model, lambda: build(spec))
    return result


def train_and_save(spec: ModelSpec, config: TrainConfig, name: str, on_event: Callable[[Event], None] | None = None,
                   should_stop: Callable[[], bool] | None = None, mnist: mnist_data.Mnist | None = None,
                   preset: str | None = None, extra_metadata: dict | None = None,
                   keep_on_stop: Callable[[], bool] | None = None) -> dict | None:
    """Train, evaluate once on the 10,000 test images, and save with full metadata.

    `extra_metadata` is merged in (e.g. the study and trial a model came from). When a stop is requested,
    `keep_on_stop()` is asked: if it says yes and an epoch has completed, the model is saved at its best
    completed epoch so far (lowest val_loss, or the latest without validation) and marked
    metadata["stopped_early"] = {"at_epoch", "best_epoch", "reason"}; the "done" event says "stopped_early".
    Returns the metadata, or None if the run stopped without keeping anything (then nothing is saved).
    """
    from mnist_core import evaluate, registry
    from mnist_core.spec import to_dict

    emit = on_event or (lambda e: None)
    registry.check_free(name)
    mnist = mnist or mnist_data.load()
    result = fit(spec, config, emit, should_stop, mnist, keep_best=keep_on_stop is not None)
    stopped_early = None
    if result.stopped:
        if result.best_epoch is None or not (keep_on_stop and keep_on_stop()):
            emit({"event": "stopped", "message": "stopped by request; nothing was saved"})
            return None
        stopped_early = {"at_epoch": result.stopped_at_epoch, "best_epoch": result.best_epoch,
                         "reason": STOPPED_BY_REQUEST}
    emit({"event": "evaluating"})
    test, eval_rate = evaluate.evaluate_with_rate(result.model, mnist.x_test, mnist.y_test)

    metadata = {
        "spec": to_dict(spec),
        "config": to_dict(config),
        "preset": preset,
        "history": result.history,
        "curve": result.curve,
        "test": test,
        "eval_images_per_second": eval_rate,
        "parameters": int(result.model.count_params()),
        "train_seconds": round(result.seconds, 2),
        "precision": result.precision,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "data_checksum": mnist.checksum,
        "seed": config.seed,
        **(extra_metadata or {}),
    }
    done = {"event": "done", "name": name, "test_accuracy": test["accuracy"], "test_loss": test["loss"]}
    if result.early_stopped:
        metadata["early_stopped"] = done["early_stopped"] = result.early_stopped
    if stopped_early:
        metadata["stopped_early"] = stopped_early
        done["stopped_early"] = True
    registry.save(name, result.model, metadata)
    emit(done)
    return metadata
