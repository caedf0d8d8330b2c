"""A saved model's calibration report: its test-set measures before and after temperature scaling, the
temperature fitted on its own validation split (mnist_core.calibration), cached on disk per model file.

Like robustness results: one JSON per model.keras sha256 in cache_dir() (MNIST_CALIBRATION_DIR, else
cache/calibration beside the registry folder, so tests isolate it through MNIST_MODELS_DIR), valid for
REPORT_VERSION, the bins, the data measured on (data_key) and the validation images (split_key).
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mnist_core import data as mnist_data
from mnist_core.calibration import (
    CLASSES,
    DEFAULT_BINS,
    apply_temperature,
    check_bins,
    fit_temperature,
    nll,
    summary,
    validation_indices,
)
from mnist_core.errors import LabError
from mnist_core.fsutil import read_bytes_bounded, write_json_atomic
from mnist_core.paths import models_dir

REPORT_VERSION = "calibration-1"  # bump when the report's content or method changes: old files are recomputed
MIN_VALIDATION_IMAGES = 100  # fewer would fit T to noise
MAX_CACHE_BYTES = 1_000_000  # a report is about 10 KB
PREDICT_CHUNK = 1000
Progress = Callable[[float, str], None]


def trained_on_this_split(metadata: dict, train_size: int) -> bool:
    """False when the model's recorded epochs saw another number of images than its split of these `train_size`
    training images leaves (it was trained on other data, e.g. a cut of MNIST): then the images its split holds
    out here may be ones it trained on. True when nothing is recorded to check against."""
    config, history = metadata.get("config"), metadata.get("history")
    rows = [h for h in history if isinstance(h, dict) and type(h.get("images")) is int and type(h.get("epoch")) is int
            and h["epoch"] > 0] if isinstance(history, list) else []
    if not rows or not isinstance(config, dict) or not isinstance(config.get("validation_split", 0.1), (int, float)):
        return True
    held_out = int(round(train_size * config.get("validation_split", 0.1)))
    return rows[0]["images"] == rows[0]["epoch"] * (train_size - held_out)  # train.py: images = epoch x train size


def training_configs(metadata: dict, train_size: int | None = None) -> list[dict]:
    """The training configs whose validation splits a saved entry's temperature is fitted on: a model's own, or
    an ensemble's members' (the images none of them trained on). Empty (nothing is fitted) when one has no
    config, or (given `train_size`) was trained on other data than these training images."""
    from mnist_core import registry
    from mnist_core.spec import config_from_dict

    if metadata.get("kind") == registry.ENSEMBLE_KIND:
        members = [registry.read_metadata(m["name"]) for m in metadata.get("members") or [] if isinstance(m, dict)]
    else:
        members = [metadata]
    for member in members:
        if isinstance(member.get("config"), dict):
            config_from_dict(member["config"])  # a damaged config is a LabError naming the field, not a quiet "no fit"
    if not members or any(not isinstance(m.get("config"), dict)
                          or (train_size and not trained_on_this_split(m, train_size)) for m in members):
        return []
    return [m["config"] for m in members]


def cache_dir() -> Path:
    return Path(os.environ.get("MNIST_CALIBRATION_DIR") or models_dir().parent / "cache" / "calibration")


def cache_path(model_sha256: str) -> Path:
    if not (isinstance(model_sha256, str) and len(model_sha256) == 64
            and all(c in "0123456789abcdef" for c in model_sha256)):
        raise LabError(f"model_sha256: not a sha256 hex digest: {str(model_sha256)[:80]!r}")
    return cache_dir() / f"{model_sha256}.json"


_data_keys: dict[int, tuple[weakref.ref, str]] = {}  # hashing 8 MB on every Draw rerun would cost ~10 ms


def data_key(mnist: mnist_data.Mnist) -> str:
    """Which data a report was measured on: the test images and labels, and the training set's size (the
    validation split is drawn from it). The fixture and the full set differ; re-running on the same data does not."""
    known = _data_keys.get(id(mnist))
    if known is not None and known[0]() is mnist:
        return known[1]
    digest = hashlib.sha256(np.ascontiguousarray(mnist.x_test).tobytes() + np.ascontiguousarray(mnist.y_test).tobytes())
    digest.update(str(len(mnist.x_train)).encode())
    _data_keys[id(mnist)] = (weakref.ref(mnist), digest.hexdigest()[:16])
    return _data_keys[id(mnist)][1]


def split_key(configs: Sequence, train_size: int) -> str:
    """Which validation images a temperature was fitted on (copies of one model file, or ensembles of them, can
    name different splits)."""
    return hashlib.sha256(validation_indices(configs, train_size).astype(np.int64).tobytes()).hexdigest()[:16]


def cached_report(model_sha256: str, mnist: mnist_data.Mnist | None = None, bins: int = DEFAULT_BINS,
                  configs: Sequence | None = None) -> dict | None:
    """The stored report for this model file, or None if there is none, or it is stale or damaged, or was
    measured with other bins or (when given) on other data or another validation split. Never computes."""
    path = cache_path(model_sha256)
    try:
        stored = json.loads(read_bytes_bounded(path, MAX_CACHE_BYTES, "calibration report"))
    except (OSError, LabError, ValueError, RecursionError):
        return None  # a missing, damaged or oversized file is only a miss: the report is computed again
    if not (isinstance(stored, dict) and stored.get("version") == REPORT_VERSION
            and stored.get("model_sha256") == model_sha256 and stored.get("bins") == bins
            and isinstance(stored.get("temperature"), (int, float))
            and (mnist is None or stored.get("data_key") == data_key(mnist))
            and (mnist is None or configs is None or stored.get("split_key") == split_key(configs, len(mnist.x_train)))):
        return None
    return stored


def stored_temperature(model_sha256: str) -> float | None:
    """The fitted temperature of this model file if its report is on disk (cheap: one small JSON read)."""
    stored = cached_report(model_sha256)
    return None if stored is None else float(stored["temperature"])


def predict_probabilities(model, images_uint8: np.ndarray, on_progress: Progress | None = None,
                          what: str = "images") -> np.ndarray:
    """evaluate.probabilities in chunks, reporting the share done."""
    from mnist_core import evaluate

    say = on_progress or (lambda fraction, text: None)
    out = []
    for start in range(0, len(images_uint8), PREDICT_CHUNK):
        out.append(evaluate.probabilities(model, images_uint8[start : start + PREDICT_CHUNK]))
        say(min(1.0, (start + PREDICT_CHUNK) / len(images_uint8)), f"predicting {len(images_uint8):,} {what}")
    return np.concatenate(out) if out else np.zeros((0, CLASSES), np.float32)


def compute_report(model, mnist: mnist_data.Mnist, configs: Sequence, *, bins: int = DEFAULT_BINS,
                   test_probs: np.ndarray | None = None, on_progress: Progress | None = None) -> dict:
    """The calibration report of a model on the test set, before and after temperature scaling (JSON-ready).

    T is fitted on the validation split of `configs` (validation_indices); without a usable split (none
    recorded, or under MIN_VALIDATION_IMAGES images) T stays 1 and "temperature_note" says why."""
    bins = check_bins(bins)
    say = on_progress or (lambda fraction, text: None)
    val_idx = validation_indices(configs, len(mnist.x_train))
    fit_it = len(val_idx) >= MIN_VALIDATION_IMAGES
    val_share = 0.4 if fit_it else 0.0  # of the progress bar; the test images take the rest up to 0.9
    report = {"version": REPORT_VERSION, "bins": bins, "data_key": data_key(mnist), "test_images": int(len(mnist.y_test)),
              "split_key": split_key(configs, len(mnist.x_train)),
              "validation_images": int(len(val_idx)), "temperature": 1.0, "temperature_fitted": False,
              "validation_nll_before": None, "validation_nll_after": None}
    if fit_it:
        val_probs = predict_probabilities(model, mnist.x_train[val_idx], lambda f, t: say(val_share * f, t),
                                          "validation images")
        val_labels = mnist.y_train[val_idx]
        temperature = fit_temperature(val_probs, val_labels, kind="probabilities")
        report.update(temperature=temperature, temperature_fitted=True,
                      validation_nll_before=nll(val_probs, val_labels),
                      validation_nll_after=nll(apply_temperature(val_probs, temperature), val_labels),
                      temperature_note=f"fitted on the model's own validation split ({len(val_idx):,} training "
                                       "images it never trained on)")
    else:
        report["temperature_note"] = (f"not fitted: {len(val_idx)} images of this data are held out from its "
                                      f"training (no split recorded, or it trained on other images); "
                                      f"{MIN_VALIDATION_IMAGES} are needed")
    if test_probs is None:
        test_probs = predict_probabilities(model, mnist.x_test, lambda f, t: say(val_share + (0.9 - val_share) * f, t),
                                           "test images")
    report["before"] = summary(test_probs, mnist.y_test, bins)
    say(0.95, "measuring calibration")
    report["after"] = summary(apply_temperature(test_probs, report["temperature"]), mnist.y_test, bins)
    say(1.0, "done")
    return report


def report(name: str, mnist: mnist_data.Mnist, *, model=None, metadata: dict | None = None,
           test_probs: np.ndarray | None = None, bins: int = DEFAULT_BINS, on_progress: Progress | None = None) -> dict:
    """A saved model's calibration report, from the disk cache when its model file was measured before.
    `model` and `metadata` default to the registry's; training_configs(metadata) decide the validation split."""
    from mnist_core import registry

    metadata = metadata if metadata is not None else registry.read_metadata(name)
    sha, configs = metadata.get("model_sha256"), training_configs(metadata, len(mnist.x_train))
    stored = cached_report(sha, mnist, bins, configs)
    if stored is not None:
        return stored
    computed = compute_report(model if model is not None else registry.load(name), mnist, configs, bins=bins,
                              test_probs=test_probs, on_progress=on_progress)
    computed["model_sha256"] = sha
    path = cache_path(sha)
    try:  # another process may write the same report meanwhile: both are whole, either is right
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, computed)
    except OSError:
        pass  # a read-only registry still gets its report; it is only computed again next time
    return computed
