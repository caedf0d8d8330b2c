"""cost: the arithmetic against Keras itself, and the limits refused before anything is built."""

from __future__ import annotations

import time

import pytest

from mnist_core import build, cost
from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.spec import ConvBlock, DenseLayer, ModelSpec, TrainConfig

ODD_SPECS = [
    ModelSpec(kind="mlp", dense_layers=[]),  # flatten straight into the softmax
    ModelSpec(kind="mlp", dense_layers=[DenseLayer(1, "tanh", 0.5), DenseLayer(7, "selu")]),
    ModelSpec(kind="cnn", conv_blocks=[ConvBlock(5, 9, padding="valid", pooling="avg", batch_norm=True, dropout=0.1)],
              dense_layers=[]),
    ModelSpec(kind="cnn", conv_blocks=[ConvBlock(3, 1, pooling="none"), ConvBlock(17, 4, padding="same",
                                                                                   pooling="max", dropout=0.3),
                                       ConvBlock(9, 2, pooling="avg", batch_norm=True)],
              dense_layers=[DenseLayer(33, "gelu", 0.2), DenseLayer(11)]),
    ModelSpec(kind="cnn", conv_blocks=[ConvBlock(8, 3, padding="same", pooling="max") for _ in range(4)],
              dense_layers=[DenseLayer(64)]),  # 28 -> 14 -> 7 -> 3 -> 1: odd sizes floor
]
CASES = [p.spec for p in specs.PRESETS.values()] + ODD_SPECS


@pytest.mark.parametrize("spec", CASES, ids=[s.describe() for s in CASES])
def test_parameters_and_layer_table_equal_keras(spec):
    model = build.build(spec)
    assert cost.estimate(spec).parameters == model.count_params()
    assert cost.summary_rows(spec) == build.summary_rows(model)


def test_flops_and_memory_by_hand():
    spec = ModelSpec(kind="cnn", conv_blocks=[ConvBlock(4, 3, pooling="max")], dense_layers=[DenseLayer(5)])
    found = cost.estimate(spec)
    conv = 2 * 9 * 4 * 26 * 26 + 4 * 26 * 26  # multiply-adds over the 26x26x4 output, then the bias
    relu, pool = 4 * 26 * 26, 4 * 26 * 26
    dense = 2 * 676 * 5 + 2 * 5
    digits = 2 * 5 * 10 + 3 * 10
    assert found.forward_flops == conv + relu + pool + dense + digits
    assert found.training_flops == 3 * found.forward_flops
    floats = 784 + 2 * 26 * 26 * 4 + 13 * 13 * 4 + 676 + 5 + 10  # input, conv, relu, pool, flatten, dense, digits
    assert found.activation_floats == floats
    assert found.activation_bytes(32) == 2 * 4 * floats * 32


def test_presets_pass_with_a_wide_margin():
    for p in specs.PRESETS.values():
        found = cost.check(p.spec, p.config)
        assert found.parameters * 8 < cost.MAX_PARAMETERS, p.name
        assert found.training_flops * 40 < cost.MAX_TRAINING_FLOPS_PER_IMAGE, p.name
        assert found.activation_bytes(p.config.batch_size) * 25 < cost.MAX_ACTIVATION_BYTES_PER_BATCH, p.name
        assert cost.too_costly_to_time(p.spec, p.config, 8) is None, p.name


def test_parameter_limit_stays_below_what_the_registry_can_load():
    from mnist_core import keras_config

    assert cost.MAX_PARAMETERS * 12.5 < keras_config.MAX_MEMBER_BYTES


HOSTILE = {
    "8 dense layers of 8192": ({"kind": "mlp", "dense_layers": [{"units": 8192}] * 8}, "parameters"),
    "conv 1024 without pooling": ({"kind": "cnn", "conv_blocks": [{"filters": 1024, "padding": "same",
                                                                   "pooling": "none"}] * 2,
                                   "dense_layers": []}, "parameters"),
    "1x1 convs of 1024 at 28x28": ({"kind": "cnn", "conv_blocks": [{"filters": 1024, "kernel": 1, "padding": "same",
                                                                     "pooling": "none"}] * 3
                                    + [{"filters": 8, "kernel": 1, "pooling": "max"}] * 3,
                                    "dense_layers": []}, "GFLOPs per training image"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_specs_refused_in_one_line_before_building(name, monkeypatch):
    data, words = HOSTILE[name]
    monkeypatch.setattr("keras.Model", lambda *a, **k: pytest.fail("a model was built"))
    t0 = time.perf_counter()
    with pytest.raises(LabError, match=words) as err:
        specs.spec_from_dict(data)
    assert time.perf_counter() - t0 < 0.1
    assert "\n" not in str(err.value) and "lab's limit" in str(err.value)
    with pytest.raises(LabError, match=words):
        build.build(specs.ModelSpec(**{**data, "conv_blocks": [ConvBlock(**b) for b in data.get("conv_blocks", [])],
                                       "dense_layers": [DenseLayer(**d) for d in data["dense_layers"]]}))


def test_a_batch_too_large_for_memory_is_refused_with_the_largest_that_fits():
    spec, config = specs.preset("cnn-classic").copy()
    huge = TrainConfig(batch_size=50000)
    with pytest.raises(LabError, match=r"batch_size 50000 needs about .* GiB .* at most [\d,]+ for this model"):
        cost.check(spec, huge)
    most = int(str(pytest.raises(LabError, cost.check, spec, huge).value).split("at most ")[1].split()[0]
               .replace(",", ""))
    cost.check(spec, TrainConfig(batch_size=most))
    with pytest.raises(LabError):
        cost.check(spec, TrainConfig(batch_size=most + 1))


def test_timing_bound_and_flops_estimate():
    spec, config = specs.preset("cnn-classic").copy()
    assert cost.too_costly_to_time(spec, config, 8) is None
    big_batch = TrainConfig(batch_size=2048)
    assert "GFLOPs" in cost.too_costly_to_time(spec, big_batch, 8)
    images = 54000
    assert cost.flops_epoch_seconds(spec, config, images) == pytest.approx(
        cost.estimate(spec).training_flops * images / cost.ASSUMED_FLOPS_PER_SECOND)
