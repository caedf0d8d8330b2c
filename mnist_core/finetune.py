"""Fine-tune a copy of a saved model on the user's digits mixed with MNIST, and save it as a new model.

The mix keeps the model general: a seeded sample of MNIST training images plus the user's digits,
repeated so they make up about a tenth of each epoch. Accuracy on my digits and on the MNIST test set
is measured before and after, so the user sees what adapting cost. With enough digits, a seeded quarter
of them is held out of the tuning and scored alone, so "after" is not a score on digits the model saw.
Runs as `python -m mnist_core finetune`, which is what jobs.start_fine_tune launches in the background.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

import keras
import numpy as np
import tensorflow as tf

from mnist_core import data as mnist_data
from mnist_core import evaluate, my_digits, registry
from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.train import EventCallback, compile_model, make_dataset

MNIST_SAMPLE = 6000
MY_SHARE = 0.1  # of each epoch's images
MAX_REPEAT = 50
HOLD_OUT = 0.25  # of my digits, kept out of the tuning to score it honestly
MIN_FOR_HOLD_OUT = 8  # with fewer, every digit is needed for tuning, and the score is on tuned digits


def mix(x_mnist: np.ndarray, y_mnist: np.ndarray, x_mine: np.ndarray, y_mine: np.ndarray, sample: int, seed: int):
    """A seeded MNIST sample plus my digits repeated to ~MY_SHARE of the mix (at most MAX_REPEAT times each)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_mnist), min(sample, len(x_mnist)), replace=False)
    repeat = int(np.clip(round(MY_SHARE * len(idx) / max(1, len(x_mine))), 1, MAX_REPEAT))
    x = np.concatenate([x_mnist[idx], np.repeat(x_mine, repeat, axis=0)])
    y = np.concatenate([y_mnist[idx], np.repeat(y_mine, repeat)])
    return x, y, repeat


def hold_out(x_mine: np.ndarray, y_mine: np.ndarray, seed: int):
    """(tune, held-out) parts of my digits; held-out is empty when there are too few digits to spare any."""
    if len(x_mine) < MIN_FOR_HOLD_OUT:
        return (x_mine, y_mine), (x_mine[:0], y_mine[:0])
    return mnist_data.split(x_mine, y_mine, HOLD_OUT, seed)


def _scores(model, mnist: mnist_data.Mnist, x_mine: np.ndarray, y_mine: np.ndarray) -> tuple[dict, dict, float]:
    """Test-set metrics, my digits' metrics, and the test pass's images per second."""
    test, rate = evaluate.evaluate_with_rate(model, mnist.x_test, mnist.y_test)
    mine, _ = evaluate.evaluate(model, x_mine, y_mine)
    return test, mine, rate


def fine_tune(parent: str, name: str, epochs: int = 1, learning_rate: float = 1e-4, sample: int = MNIST_SAMPLE,
              seed: int = 0, on_event: Callable[[dict], None] | None = None,
              should_stop: Callable[[], bool] | None = None, mnist: mnist_data.Mnist | None = None) -> dict | None:
    """Train a copy of `parent`, save it as `name` with metadata naming its parent. None if stopped (nothing saved)."""
    emit = on_event or (lambda e: None)
    registry.check_name(parent)
    registry.check_free(name)
    config = specs.TrainConfig(optimizer="adam", learning_rate=learning_rate, schedule="constant", batch_size=64,
                               epochs=epochs, validation_split=0.0, seed=seed).validate()
    x_mine, y_mine, _ = my_digits.arrays()
    if len(x_mine) == 0:
        raise LabError("no saved digits yet: draw some on /draw and save them to my digits first")
    model, parent_meta = registry.load_entry(parent)  # a fresh copy read from disk; the parent stays untouched
    mnist = mnist or mnist_data.load()
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)

    (x_tune, y_tune), (x_held, y_held) = hold_out(x_mine, y_mine, seed)
    x_score, y_score = (x_held, y_held) if len(x_held) else (x_tune, y_tune)
    before_test, before_mine, _ = _scores(model, mnist, x_score, y_score)
    x, y, repeat = mix(mnist.x_train, mnist.y_train, x_tune, y_tune, sample, seed)
    steps = math.ceil(len(x) / config.batch_size)
    compile_model(model, config, steps)
    emit({"event": "start", "epochs": epochs, "steps_per_epoch": steps, "params": int(model.count_params()),
          "train_size": len(x), "validation_size": 0, "parent": parent})
    callback = EventCallback(emit, should_stop or (lambda: False), steps, epochs=epochs, train_size=len(x),
                             batch_size=config.batch_size)
    model.fit(make_dataset(x, y, config.batch_size, shuffle_seed=seed), epochs=epochs, verbose=0, shuffle=False,
              callbacks=[callback])
    if callback.stopped:
        emit({"event": "stopped", "message": "stopped by request; nothing was saved"})
        return None
    emit({"event": "evaluating"})
    after_test, after_mine, eval_rate = _scores(model, mnist, x_score, y_score)

    summary = {
        "parent": parent,
        "my_digits": len(x_mine),
        "held_out": len(x_held),
        "my_digits_repeat": repeat,
        "mnist_images": len(x) - repeat * len(x_tune),
        "note": (f"my-digits accuracy is measured on {len(x_held)} digits held out of the fine-tuning" if len(x_held)
                 else f"my-digits accuracy is measured on the digits used for fine-tuning (fewer than "
                      f"{MIN_FOR_HOLD_OUT}, too few to hold any out), so it is optimistic"),
        "before": {"my_digits_accuracy": before_mine["accuracy"], "mnist_test_accuracy": before_test["accuracy"]},
        "after": {"my_digits_accuracy": after_mine["accuracy"], "mnist_test_accuracy": after_test["accuracy"]},
    }
    metadata = {
        "spec": parent_meta.get("spec"),
        "config": specs.to_dict(replace(config)),
        "preset": None,
        "parent": parent,
        "fine_tune": summary,
        "history": callback.history,
        "curve": callback.curve,
        "test": after_test,
        "eval_images_per_second": eval_rate,
        "parameters": int(model.count_params()),
        "train_seconds": round(time.perf_counter() - started, 2),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "data_checksum": mnist.checksum,
        "seed": seed,
    }
    registry.save(name, model, metadata)
    emit({"event": "done", "name": name, "test_accuracy": after_test["accuracy"], "test_loss": after_test["loss"],
          "fine_tune": summary})
    return metadata
