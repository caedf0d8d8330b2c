"""mnist_core.predict: the fast path gives exactly what the model gives, from any thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mnist_core import data, registry
from mnist_core.errors import LabError
from mnist_core.predict import Prediction, Predictor, model_file_stamp


@pytest.fixture
def default_predictor(registry_with) -> Predictor:
    registry_with(default=True)
    return Predictor.load("default")


def test_predictor_equals_calling_the_model(default_predictor, small_mnist):
    x = data.normalise(small_mnist.x_test[:64])
    direct = np.asarray(default_predictor.model(x, training=False))
    fast = default_predictor.probabilities(x[..., 0])
    assert fast.shape == (64, 10) and fast.dtype == np.float32
    assert np.allclose(fast, direct, atol=1e-6)
    one = default_predictor.classify(x[5, ..., 0])
    assert isinstance(one, Prediction)
    assert np.allclose(one.probabilities, direct[5], atol=1e-6)
    assert one.digit == int(direct[5].argmax()) and one.confidence == pytest.approx(float(direct[5].max()), abs=1e-6)


def test_default_model_reads_the_fixture_test_digits(default_predictor, small_mnist):
    probs = default_predictor.probabilities(data.normalise(small_mnist.x_test))
    accuracy = float((probs.argmax(1) == small_mnist.y_test).mean())
    recorded = registry.read_metadata("default")["test"]["accuracy"]  # on all 10,000; these are 1,000 of them
    assert accuracy >= recorded - 0.01, (accuracy, recorded)
    assert default_predictor.classify(small_mnist.x_test[0] / 255.0).digit == 7


def test_same_answers_from_many_threads(default_predictor, small_mnist):
    x = small_mnist.x_test[:40] / np.float32(255.0)
    serial = [default_predictor.classify(img).probabilities for img in x]
    fresh = Predictor(default_predictor.model)  # untraced: the first calls race to trace it
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda img: fresh.classify(img).probabilities, x))
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(serial, parallel, strict=True))


def test_predict_image_on_empty_and_real_input(default_predictor, small_mnist):
    prepared, prediction = default_predictor.predict_image(np.zeros((280, 280), np.uint8))
    assert prepared.empty and prediction is None and prepared.message == "no digit found: draw a digit"
    prepared, prediction = default_predictor.predict_image(255 - np.kron(small_mnist.x_test[0], np.ones((8, 8), np.uint8)))
    assert not prepared.empty and prediction.digit == 7


def test_predictor_load_refuses_missing_and_bad_names():
    with pytest.raises(LabError, match=r"^no model named 'nothing'$"):
        Predictor.load("nothing")
    with pytest.raises(LabError, match=r"^bad model name '\.\./default'"):
        Predictor.load("../default")


def test_model_file_stamp_changes_when_the_model_is_replaced(registry_with):
    registry_with("a", "b")
    before = model_file_stamp("a")
    assert before == model_file_stamp("a")
    model = registry.load("b")
    registry.save("a", model, registry.read_metadata("b"), overwrite=True)
    assert model_file_stamp("a") != before


def test_batches_share_the_predictors_traced_forward_and_let_the_model_go(default_predictor, small_mnist):
    import gc
    import weakref

    from mnist_core import evaluate
    from mnist_core.predict import forward

    model = default_predictor.model
    shared = forward(model)
    assert forward(model) is shared  # one trace per model: Draw's predictor and the test-set pass reuse it
    batched = evaluate.probabilities(model, small_mnist.x_test[:300])  # a full batch and a short one
    eager = np.asarray(model(data.normalise(small_mnist.x_test[:300]), training=False))
    assert np.allclose(batched, eager, atol=1e-6)

    other = registry.load("default")
    forward(other)(data.normalise(small_mnist.x_test[:2]))
    gone = weakref.ref(other)
    del other
    gc.collect()
    assert gone() is None  # the memoised function does not keep its model (and its weights) alive
