"""Cached resources shared by every page and session.

Models are cached per file stamp, so a model re-saved under the same name is loaded fresh;
the registry listing is cached on the folders' stat results, so a new or changed model shows
up on the next rerun without re-hashing every model.keras on every rerun.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from mnist_core import browse, data, registry
from mnist_core.errors import LabError
from mnist_core.paths import models_dir

# mnist_core.predict imports TensorFlow (4-5 s, ~500 MB): Home never needs it, so only the functions that predict
# load it. Stamps come from registry.entry_stamp, which predict.model_file_stamp returns too.
if TYPE_CHECKING:
    from mnist_core.predict import Predictor


@st.cache_resource(show_spinner="Loading the model...", max_entries=16)
def _predictor(name: str, stamp: tuple) -> Predictor:
    from mnist_core.predict import Predictor

    loaded = Predictor.load(name)
    loaded.probabilities(np.zeros((1, 28, 28), np.float32))  # trace the graph now, not on the first stroke
    return loaded


def predictor(name: str) -> Predictor:
    """The cached Predictor for a saved model. Raises LabError for a missing or unloadable one."""
    try:
        stamp = registry.entry_stamp(name)
    except OSError:
        raise LabError(f"model {name!r} has no model.keras") from None
    # models_dir is part of the key so tests (and users) pointing MNIST_MODELS_DIR elsewhere get their own models.
    return _predictor(name, (str(models_dir()), *stamp))


@st.cache_resource(show_spinner="Loading MNIST...")
def _mnist(cache_key: str) -> data.Mnist:
    return data.load(allow_fetch=False)


def mnist() -> data.Mnist:
    """The verified MNIST arrays (from MNIST_DATA or the cache; never fetched implicitly). Raises LabError."""
    explicit = os.environ.get("MNIST_DATA")
    path = explicit or str(data.cache_path())
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        if explicit:
            raise LabError(f"MNIST_DATA points to {explicit}, which does not exist: fix or unset it") from None
        raise LabError("MNIST is not downloaded yet: use Fetch MNIST or run `python -m mnist_core download`") from None
    return _mnist(f"{path}:{stamp}")


def _registry_stamp() -> tuple:
    """Cheap stat of every entry: changes when a model is added, removed, renamed or rewritten."""
    root = models_dir()
    if not root.is_dir():
        return (str(root),)
    stamps = [str(root), root.stat().st_mtime_ns]
    for child in sorted(root.iterdir()):
        for f in (child, child / registry.MODEL_FILE, child / registry.METADATA_FILE):
            try:
                s = f.stat()
                stamps.append((f.name, s.st_mtime_ns, s.st_size))
            except OSError:
                stamps.append((f.name, None))
    return tuple(stamps)


@st.cache_data(show_spinner=False, max_entries=8)
def _models(stamp: tuple) -> list[registry.Entry]:
    return registry.list_models()


def models() -> list[registry.Entry]:
    """Every registry entry, newest first, broken ones included (each says why)."""
    return _models(_registry_stamp())


def usable_models() -> list[str]:
    """Names of the models that can be loaded, with the default model first."""
    names = [e.name for e in models() if e.ok]
    if registry.DEFAULT_MODEL in names:
        names.remove(registry.DEFAULT_MODEL)
        names.insert(0, registry.DEFAULT_MODEL)
    return names


@st.cache_resource(show_spinner=False)
def _mean_images(cache_key: str) -> np.ndarray:
    m = mnist()
    return browse.mean_images(m.x_train, m.y_train)


def mean_images() -> np.ndarray:
    """(10, 28, 28) mean training image per digit."""
    return _mean_images(mnist().checksum)


def clear() -> None:
    """Forget every cached resource (used by the tests and after destructive actions)."""
    st.cache_resource.clear()
    st.cache_data.clear()


# ---------- Train and Compare pages ----------


@st.cache_data(show_spinner=False, max_entries=32)
def summary(spec_json: str) -> list[dict]:
    """The layer table of a spec, from arithmetic on the spec (cost.summary_rows): nothing is built, and a
    spec over the lab's limits is refused (LabError) by its validation first."""
    from mnist_core import cost
    from mnist_core import spec as specs

    return cost.summary_rows(specs.parse_bundle(spec_json)[0])


def model_stamp(name: str) -> tuple:
    """A cache key for a saved model's file: changes whenever model.keras is rewritten."""
    try:
        return (str(models_dir()), *registry.entry_stamp(name))
    except OSError:
        raise LabError(f"model {name!r} has no model.keras") from None


@st.cache_data(show_spinner="Predicting the 10,000 test images...", max_entries=16)
def _test_probabilities(name: str, stamp: tuple):
    from mnist_core import evaluate

    return evaluate.probabilities(predictor(name).model, mnist().x_test)


def test_probabilities(name: str):
    """(10000, 10) test-set probabilities of a saved model, computed once per model file."""
    return _test_probabilities(name, model_stamp(name))


@st.cache_resource
def _timing_store() -> dict:
    return {}


TIMING_SETS_KEPT = 32


def timings(names: list[str], progress=None) -> dict[str, dict]:
    """Latency and images/s of the given models, measured together in one interleaved pass (speed.measure) and
    kept per set of model files, so the page times a set once and shows it instantly afterwards."""
    from mnist_core import speed

    key = tuple(sorted((n, model_stamp(n)) for n in names))
    store = _timing_store()
    if key not in store:
        measured = speed.measure({n: predictor(n) for n in names}, mnist().x_test, progress=progress)
        while len(store) >= TIMING_SETS_KEPT:
            store.pop(next(iter(store)))
        store[key] = measured
    return store[key]


def timings_cached(names: list[str]) -> bool:
    return tuple(sorted((n, model_stamp(n)) for n in names)) in _timing_store()


# ---------- Calibration: Compare's section and Draw's calibrated confidence ----------


def verified_metadata(name: str) -> dict:
    """The metadata of a loadable registry entry: its model_sha256 was checked against model.keras by the
    (cached) registry listing. Raises LabError for a missing or unloadable entry."""
    entry = next((e for e in models() if e.name == name), None)
    if entry is None or not entry.ok:
        raise LabError(f"model {name!r} cannot be loaded: {entry.reason if entry else 'no such model'}")
    return entry.metadata


def calibration_cached(name: str) -> dict | None:
    """A model's calibration report if it is on disk for this model file, this MNIST and its validation split
    (never computes)."""
    from mnist_core import calibration_report as reports

    meta, data = verified_metadata(name), mnist()
    return reports.cached_report(meta["model_sha256"], data, configs=reports.training_configs(meta, len(data.x_train)))


def calibration_report(name: str, progress=None) -> dict:
    """A model's calibration report (mnist_core.calibration_report.report): read from disk when this model file
    was measured before, else computed now (its own validation split, then the test set; progress(fraction, text))."""
    from mnist_core import calibration_report as reports

    found = calibration_cached(name)
    if found is not None:
        return found
    return reports.report(name, mnist(), model=predictor(name).model, metadata=verified_metadata(name),
                          test_probs=test_probabilities(name), on_progress=progress)


def calibration_toggle_label(name: str) -> str:
    """Draw's toggle label: the fitted temperature when it is known, else that it is fitted on first use."""
    try:
        found = calibration_cached(name)
    except LabError:  # e.g. MNIST not downloaded: Draw still works, the toggle then says why when used
        found = None
    if found is None:
        return "Calibrated confidence (temperature fitted on first use)"
    return f"Calibrated confidence (temperature T={found['temperature']:.2f})"


def calibrated_predictor(name: str) -> Predictor:
    """The cached Predictor at the temperature fitted on the model's own validation split (fitted once per model
    file, a few seconds, then read from disk). Same model and traced function as predictor(name). Raises
    LabError (e.g. MNIST is not downloaded)."""
    with st.spinner("Fitting the confidence temperature on the model's validation split..."):
        temperature = calibration_report(name)["temperature"]
    return predictor(name).with_temperature(temperature)


# ---------- robustness (Compare) ----------


@st.cache_data(show_spinner="Drawing one digit through every robustness ladder...", max_entries=8)
def _robustness_examples(name: str, stamp: tuple) -> dict:
    from mnist_core import robustness

    m = mnist()
    i = robustness.example_index(m)
    return robustness.examples(m.x_test[i], int(m.y_test[i]), model=predictor(name).model)


def robustness_examples(name: str) -> dict:
    """{perturbation: [28x28 uint8 per level]}: one test digit through every ladder, FGSM and PGD against
    `name`'s own gradient; computed once per model file. Raises LabError."""
    return _robustness_examples(name, model_stamp(name))
