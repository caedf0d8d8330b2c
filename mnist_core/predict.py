"""Fast, thread-safe inference on preprocessed 28x28 inputs.

`model.predict` costs ~100 ms of fixed overhead per call here; a traced tf.function
with a fixed input signature costs ~2 ms, so every stroke on the canvas uses this.
Batches go through the same traced function (`forward`): calling a Keras model eagerly on
250 images at a time took 1.7x as long for the 10,000 test images and raised the process's
peak memory by ~435 MB instead of ~160 MB (robust-cnn on AVX2; benchmarks/eval_throughput.py measures both).
"""

from __future__ import annotations

import copy
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from mnist_core import calibration, registry
from mnist_core.preprocess import Prepared, to_mnist


@dataclass
class Prediction:
    digit: int
    confidence: float
    probabilities: np.ndarray  # (10,)


class TracedForward:
    """model(x, training=False) traced once for float32 (N, 28, 28, 1) batches of any N; numpy in, numpy out."""

    def __init__(self, model):
        # Only a weak reference: this function is memoised per model (forward), and must not keep it alive.
        model_ref = weakref.ref(model)
        self._function = tf.function(
            lambda x: model_ref()(x, training=False),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
            reduce_retracing=True,
        )
        self._lock = threading.Lock()  # the first call traces; tracing is not thread-safe
        self._warm = False

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float32).reshape(-1, 28, 28, 1)
        if not self._warm:
            with self._lock:
                out = self._function(x).numpy()
                self._warm = True
            return out
        return self._function(x).numpy()


_forwards: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_forwards_lock = threading.Lock()


def forward(model) -> TracedForward:
    """The model's traced forward pass, one per model object, so a page's predictor and its test-set pass share
    one trace; forgotten when the model is."""
    with _forwards_lock:
        found = _forwards.get(model)
        if found is None:
            found = _forwards[model] = TracedForward(model)
        return found


class Predictor:
    """Probabilities from a model; with a temperature T they are softmax(log(p) / T) (calibration.apply_temperature),
    T = 1 being the model's own. A temperature changes the confidence, never the predicted digit."""

    def __init__(self, model, name: str = "", temperature: float = 1.0):
        self.model, self.name = model, name
        self.temperature = calibration.check_temperature(temperature)
        self._forward = forward(model)

    @classmethod
    def load(cls, name: str) -> Predictor:
        return cls(registry.load(name), name)

    def with_temperature(self, temperature: float) -> Predictor:
        """This predictor at another temperature, sharing its model and traced function (no new tracing)."""
        other = copy.copy(self)
        other.temperature = calibration.check_temperature(temperature)
        return other

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (28, 28) floats in [0, 1] -> (N, 10) probabilities."""
        out = self._forward(inputs)
        if self.temperature == 1.0:
            return out
        return calibration.apply_temperature(out, self.temperature).astype(np.float32)

    def classify(self, input28: np.ndarray) -> Prediction:
        probs = self.probabilities(input28)[0]
        digit = int(probs.argmax())
        return Prediction(digit, float(probs[digit]), probs)

    def predict_image(self, image) -> tuple[Prepared, Prediction | None]:
        prepared = to_mnist(image)
        return prepared, (None if prepared.empty else self.classify(prepared.input))


def model_file_stamp(name: str) -> tuple:
    """Changes whenever what the registry would load changes (model.keras, or an ensemble's members), so caches
    keyed on it never serve a stale model. Raises OSError when a file is missing."""
    return registry.entry_stamp(name)
