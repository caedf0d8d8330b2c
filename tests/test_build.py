"""mnist_core.build: the network a spec describes, checked against hand-computed parameter counts."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import data
from mnist_core import spec as specs
from mnist_core.build import build, summary_rows
from mnist_core.errors import LabError
from mnist_core.spec import ConvBlock, DenseLayer, ModelSpec


def test_mlp_parameter_count_by_hand():
    spec = ModelSpec(kind="mlp", dense_layers=[DenseLayer(16, "relu", 0.2), DenseLayer(8, "tanh")])
    model = build(spec)
    # 784*16+16 = 12560, 16*8+8 = 136, 8*10+10 = 90
    assert model.count_params() == 12560 + 136 + 90 == 12786
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "Flatten", "Dense", "Dropout", "Dense", "Dense"]
    assert model.get_layer("dense2").activation.__name__ == "tanh"
    assert model.get_layer("dropout1").rate == 0.2


def test_softmax_regression_has_no_hidden_layer():
    assert build(ModelSpec(kind="mlp", dense_layers=[])).count_params() == 784 * 10 + 10


def test_cnn_parameter_count_by_hand():
    spec = ModelSpec(kind="cnn", conv_blocks=[
        ConvBlock(4, 3, padding="valid", pooling="max"),                 # 28 -> 26 -> 13
        ConvBlock(8, 3, padding="same", pooling="none", batch_norm=True),  # 13 -> 13, conv has no bias
    ], dense_layers=[DenseLayer(16)])
    model = build(spec)
    conv1 = 3 * 3 * 1 * 4 + 4          # 40
    conv2 = 3 * 3 * 4 * 8              # 288, batch-norm replaces the bias
    bn2 = 4 * 8                        # gamma, beta, moving mean, moving variance
    dense = 13 * 13 * 8 * 16 + 16      # 21648
    out = 16 * 10 + 10                 # 170
    assert model.count_params() == conv1 + conv2 + bn2 + dense + out == 22178
    assert model.get_layer("flatten").output.shape[1:] == (13 * 13 * 8,)
    rows = summary_rows(model)
    assert sum(r["parameters"] for r in rows) == 22178
    assert [r["layer"] for r in rows if r["parameters"]] == ["conv1", "conv2", "bn2", "dense1", "digits"]


@pytest.mark.parametrize(("name", "params"), [
    ("keras-convnet", 34826),      # the count printed by the Keras "simple MNIST convnet" example
    ("cnn-classic", 1199882),      # the count printed by Keras's mnist_cnn.py
    ("mlp-2x512", 669706),         # mnist_mlp.py: 784*512+512 + 512*512+512 + 512*10+10
    ("mlp-784-dropout", 623290),   # 784*784+784 + 784*10+10
])
def test_preset_parameter_counts_match_their_sources(name, params):
    assert build(specs.preset(name).spec).count_params() == params


def test_output_is_softmax_over_ten_digits(small_mnist):
    model = build(specs.preset("fast-cnn").spec)
    x = data.normalise(small_mnist.x_test[:5])
    out = np.asarray(model(x, training=False))
    assert out.shape == (5, 10) and out.dtype == np.float32
    assert np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert model.input_shape == (None, 28, 28, 1)


def test_build_validates_first():
    with pytest.raises(LabError, match=r"^conv_blocks: a cnn needs 1 to 8 conv blocks, got 0$"):
        build(ModelSpec(kind="cnn"))
