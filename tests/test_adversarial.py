"""Adversarial training (TrainConfig.adversarial_eps, mnist_core.adversarial) on the real MNIST fixture."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from mnist_core import data, registry
from mnist_core import perturbations as pert
from mnist_core.adversarial import AdversarialTrainer, fgsm_batch
from mnist_core.errors import LabError
from mnist_core.spec import DenseLayer, ModelSpec, TrainConfig, config_from_dict, parse_bundle, to_dict
from mnist_core.train import fit, train_and_save

MLP = ModelSpec(kind="mlp", dense_layers=[DenseLayer(64)])


def mean_loss(model, images, labels) -> float:
    return float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, model(images, training=False))))


@pytest.fixture(scope="module")
def clean_mlp(small_mnist):
    return fit(MLP, TrainConfig(epochs=3, batch_size=64, seed=3), mnist=small_mnist).model


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3])
def test_fgsm_batch_stays_within_eps_and_raises_the_loss(clean_mlp, small_mnist, eps):
    images = data.normalise(small_mnist.x_test[:500])
    labels = small_mnist.y_test[:500].astype(np.int32)
    attacked = np.asarray(fgsm_batch(clean_mlp, images, labels, eps, [7, 0]))
    assert attacked.shape == images.shape
    assert np.abs(attacked - images).max() <= eps + 1e-6
    assert attacked.min() >= 0.0 and attacked.max() <= 1.0
    assert np.abs(attacked - images).max() > eps / 2  # it did move the pixels
    assert mean_loss(clean_mlp, attacked, labels) > mean_loss(clean_mlp, images, labels) + 0.1


def test_fgsm_batch_is_seeded(clean_mlp, small_mnist):
    images = data.normalise(small_mnist.x_test[:50])
    labels = small_mnist.y_test[:50].astype(np.int32)
    first, again, other = (np.asarray(fgsm_batch(clean_mlp, images, labels, 0.1, s)) for s in ([1, 2], [1, 2], [1, 3]))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_eps_zero_trains_exactly_as_without_the_field(small_mnist):
    without_field = {k: v for k, v in to_dict(TrainConfig(epochs=1, batch_size=64, seed=5)).items()
                     if k != "adversarial_eps"}
    plain = fit(MLP, config_from_dict(without_field), mnist=small_mnist).model
    zero = fit(MLP, TrainConfig(epochs=1, batch_size=64, seed=5, adversarial_eps=0.0), mnist=small_mnist).model
    attacked = fit(MLP, TrainConfig(epochs=1, batch_size=64, seed=5, adversarial_eps=0.1), mnist=small_mnist).model
    for a, b in zip(plain.get_weights(), zero.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(plain.get_weights(), attacked.get_weights(), strict=True))


def fgsm_accuracy(model, mnist, eps: float) -> float:
    """The lab's own FGSM (mnist_core.perturbations, as the robustness view runs it) on the fixture's test images."""
    labels = mnist.y_test.astype(np.int64)
    attacked = pert.fgsm(mnist.x_test, eps, np.random.default_rng(0), model=model, labels=labels)
    probs = np.asarray(model(data.normalise(attacked), training=False))
    return float((probs.argmax(axis=1) == labels).mean())


def test_adversarial_training_resists_fgsm_better(small_mnist):
    def run(eps):
        return fit(MLP, TrainConfig(epochs=4, batch_size=64, seed=2, adversarial_eps=eps), mnist=small_mnist).model

    plain, trained = run(0.0), run(0.15)
    plain_score, trained_score = fgsm_accuracy(plain, small_mnist, 0.1), fgsm_accuracy(trained, small_mnist, 0.1)
    assert trained_score > plain_score + 0.1, (plain_score, trained_score)


def test_the_trainer_holds_no_weights_of_its_own(small_mnist):
    inner = fit(MLP, TrainConfig(epochs=1, batch_size=64), mnist=small_mnist).model
    trainer = AdversarialTrainer(inner, 0.1, seed=0)
    assert [id(w) for w in trainer.weights] == [id(w) for w in inner.weights]


def test_config_round_trip_and_bounds():
    config = TrainConfig(adversarial_eps=0.1)
    assert config_from_dict(json.loads(json.dumps(to_dict(config)))) == config
    assert config_from_dict({}).adversarial_eps == 0.0  # a config saved before the field existed
    for value in (0, 0.3):
        assert config_from_dict({"adversarial_eps": value}).adversarial_eps == value
    for bad in (-0.01, 0.31, 1, float("nan"), "0.1", True, None):
        with pytest.raises(LabError, match=r"adversarial_eps must be a number in \[0, 0.3\]"):
            config_from_dict({"adversarial_eps": bad})


def test_an_adversarially_trained_model_saves_as_the_plain_model(small_mnist):
    config = TrainConfig(epochs=1, batch_size=64, seed=1, adversarial_eps=0.1)
    metadata = train_and_save(MLP, config, "adv", mnist=small_mnist)
    entry = registry.inspect("adv")
    assert entry.ok, entry.reason
    assert entry.metadata["config"]["adversarial_eps"] == 0.1 == metadata["config"]["adversarial_eps"]
    loaded = registry.load("adv")
    assert type(loaded).__name__ == "Functional"
    assert "AdversarialTrainer" not in (registry.model_path("adv") / "metadata.json").read_text()
    images = data.normalise(small_mnist.x_test[:20])
    accuracy = float((np.asarray(loaded(images)).argmax(1) == small_mnist.y_test[:20]).mean())
    assert accuracy > 0.3  # trained, not a fresh network


def test_the_train_sidebar_sets_adversarial_eps(app_page):
    at = app_page("views/train.py", clean=True, query={"tab": "a1b2c3d4e5f6"})
    at.selectbox(key="sb_preset").set_value("cnn-classic").run()
    box = at.number_input(key="sb_adversarial_eps")
    assert box.value == 0.0 and box.max == pytest.approx(0.3)
    box.set_value(0.25).run()
    assert parse_bundle(at.session_state["train_bundle"])[1].adversarial_eps == pytest.approx(0.25)
    at.selectbox(key="sb_preset").set_value("fast-cnn").run()
    assert parse_bundle(at.session_state["train_bundle"])[1].adversarial_eps == 0.0
    assert not at.exception
