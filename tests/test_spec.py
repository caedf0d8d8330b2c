"""mnist_core.spec: JSON round trip, presets, and invalid specs rejected with field + allowed range."""

from __future__ import annotations

import json
import math

import pytest

from mnist_core import spec as specs
from mnist_core.build import build
from mnist_core.errors import LabError
from mnist_core.spec import ConvBlock, DenseLayer, ModelSpec, TrainConfig


def _mlp(n_layers: int) -> ModelSpec:
    return ModelSpec(kind="mlp", dense_layers=[
        DenseLayer(16 * (i + 1), specs.ACTIVATIONS[i % len(specs.ACTIVATIONS)], 0.1 * (i % 5)) for i in range(n_layers)])


def _cnn(n_blocks: int, n_dense: int) -> ModelSpec:
    return ModelSpec(
        kind="cnn",
        conv_blocks=[ConvBlock(8 * (i + 1), 3, "elu" if i % 2 else "relu", "same", ("max", "avg", "none")[i % 3],
                               bool(i % 2), 0.05 * i) for i in range(n_blocks)],
        dense_layers=[DenseLayer(32, "tanh", 0.5) for _ in range(n_dense)],
    )


@pytest.mark.parametrize("spec", [_mlp(0), _mlp(1), _mlp(5), _mlp(8), _cnn(1, 0), _cnn(3, 2), _cnn(6, 1)],
                         ids=["mlp0", "mlp1", "mlp5", "mlp8", "cnn1", "cnn3+2", "cnn6+1"])
def test_spec_json_round_trip(spec, tmp_path):
    text = specs.to_json(spec)
    back = specs.spec_from_dict(json.loads(text))
    assert back == spec
    assert isinstance(back.dense_layers[0] if back.dense_layers else DenseLayer(), DenseLayer)
    assert all(isinstance(b, ConvBlock) for b in back.conv_blocks)
    path = tmp_path / "spec.json"
    path.write_text(text)
    assert specs.load_spec(path) == spec


def test_config_json_round_trip(tmp_path):
    config = TrainConfig(optimizer="sgd", learning_rate=0.05, schedule="cosine", warmup_fraction=0.1,
                         batch_size=256, epochs=7, validation_split=0.2, seed=42, augment=True, patience=3)
    assert json.loads(specs.to_json(config))["patience"] == 3
    assert specs.config_from_dict(json.loads(specs.to_json(config))) == config
    path = tmp_path / "config.json"
    path.write_text(specs.to_json(config))
    assert specs.load_config(path) == config


def test_hand_written_spec_file_with_defaults(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text('{"kind": "cnn", "conv_blocks": [{"filters": 16}, {"filters": 32, "batch_norm": true}],'
                    ' "dense_layers": [{"units": 64, "dropout": 0.3}]}')
    spec = specs.load_spec(path)
    assert spec.conv_blocks == [ConvBlock(16), ConvBlock(32, batch_norm=True)]
    assert spec.dense_layers == [DenseLayer(64, "relu", 0.3)]
    assert spec.describe() == "cnn-c16-c32-d64"


ISSUE_PRESETS = {"mlp-784-dropout": 0.98, "mlp-2x28": 0.965, "mlp-2x512-dropout": 0.9804, "mlp-2x512": 0.9836,
                 "cnn-classic": 0.9925, "mlp-2x128": 0.97, "keras-convnet": 0.992}


def test_issue_presets_exist_with_their_claims():
    for name, claim in ISSUE_PRESETS.items():
        p = specs.preset(name)
        assert p.claimed_accuracy == claim and p.description.strip()
    assert specs.preset("mlp-2x512").config.epochs == 20 and specs.preset("cnn-classic").config.epochs == 12
    assert specs.preset("keras-convnet").config.batch_size == 128 and specs.preset("mlp-2x128").config.epochs == 3


@pytest.mark.parametrize("name", list(specs.PRESETS))
def test_every_preset_validates_round_trips_and_builds(name):
    p = specs.preset(name)
    spec, config = p.copy()
    assert spec == p.spec and spec is not p.spec  # editing a copy never changes the preset
    assert specs.spec_from_dict(json.loads(specs.to_json(spec))) == spec
    assert specs.config_from_dict(json.loads(specs.to_json(config))) == config
    model = build(spec)
    assert model.output_shape == (None, 10)


def test_unknown_preset():
    with pytest.raises(LabError, match=r"unknown preset 'nope'; choose from mlp-784-dropout, "):
        specs.preset("nope")


def _spec_error(data: dict) -> str:
    with pytest.raises(LabError) as err:
        specs.spec_from_dict(data)
    return str(err.value)


def _config_error(**fields) -> str:
    with pytest.raises(LabError) as err:
        specs.config_from_dict(fields)
    return str(err.value)


@pytest.mark.parametrize(("data", "message"), [
    ({"dense_layers": [{"units": -5}]}, "dense_layers[0].units must be a whole number in [1, 8192], got -5"),
    ({"dense_layers": [{"units": 64}, {"units": 0}]}, "dense_layers[1].units must be a whole number in [1, 8192], got 0"),
    ({"dense_layers": [{"units": 12.5}]}, "dense_layers[0].units must be a whole number in [1, 8192], got 12.5"),
    ({"dense_layers": [{"units": "128"}]}, "dense_layers[0].units must be a whole number in [1, 8192], got '128'"),
    ({"dense_layers": [{"dropout": 1.0}]}, "dense_layers[0].dropout must be a number in [0, 1), got 1.0"),
    ({"dense_layers": [{"dropout": 1.5}]}, "dense_layers[0].dropout must be a number in [0, 1), got 1.5"),
    ({"dense_layers": [{"dropout": -0.1}]}, "dense_layers[0].dropout must be a number in [0, 1), got -0.1"),
    ({"kind": "cnn", "conv_blocks": []}, "conv_blocks: a cnn needs 1 to 8 conv blocks, got 0"),
    ({"kind": "cnn", "conv_blocks": [{}] * 9}, "conv_blocks: a cnn needs 1 to 8 conv blocks, got 9"),
    ({"kind": "mlp", "conv_blocks": [{}]}, "conv_blocks: an mlp has no conv blocks (use kind 'cnn')"),
    ({"dense_layers": [{"activation": "relux"}]},
     "dense_layers[0].activation must be one of relu, gelu, elu, selu, tanh, sigmoid, swish, linear, got 'relux'"),
    ({"kind": "cnn", "conv_blocks": [{"activation": "softmax"}]}, "conv_blocks[0].activation must be one of relu,"),
    ({"kind": "cnn", "conv_blocks": [{"kernel": 11}]}, "conv_blocks[0].kernel must be a whole number in [1, 9], got 11"),
    ({"kind": "cnn", "conv_blocks": [{"filters": 0}]}, "conv_blocks[0].filters must be a whole number in [1, 1024], got 0"),
    ({"kind": "cnn", "conv_blocks": [{"pooling": "min"}]}, "conv_blocks[0].pooling must be one of max, avg, none"),
    ({"kind": "cnn", "conv_blocks": [{"batch_norm": "yes"}]}, "conv_blocks[0].batch_norm must be true or false"),
    ({"kind": "cnn", "conv_blocks": [{"kernel": 5}] * 3},
     "conv_blocks[2]: the 28x28 input shrinks below 1x1 here; use padding 'same' or fewer blocks"),
    ({"kind": "rnn"}, "kind must be one of mlp, cnn, got 'rnn'"),
    ({"dense_layers": [{}] * 9}, "dense_layers: at most 8 dense layers, got 9"),
    ({"layers": []}, "spec: unknown field(s) layers; known: conv_blocks, dense_layers, kind"),
    ({"dense_layers": [{"units": 8, "size": 3}]}, "dense_layers[0]: unknown field(s) size; known: activation,"),
    ({"dense_layers": "128"}, "dense_layers must be a list"),
    ({"dense_layers": [128]}, "dense_layers[0] must be a JSON object"),
])
def test_invalid_spec_names_field_and_range(data, message):
    assert _spec_error(data).startswith(message)


def test_non_object_spec_json():
    assert _spec_error([1, 2]) == "spec must be a JSON object"  # type: ignore[arg-type]


@pytest.mark.parametrize(("fields", "message"), [
    ({"learning_rate": 0}, "learning_rate must be a number in (0, 10], got 0"),
    ({"learning_rate": math.nan}, "learning_rate must be a number in (0, 10], got nan"),
    ({"learning_rate": math.inf}, "learning_rate must be a number in (0, 10], got inf"),
    ({"batch_size": 0}, "batch_size must be a whole number in [1, 54000], got 0"),
    ({"batch_size": 60000}, "batch_size must be a whole number in [1, 54000], got 60000"),
    ({"epochs": 10**6}, "epochs must be a whole number in [1, 1000], got 1000000"),
    ({"epochs": math.inf}, "epochs must be a whole number in [1, 1000], got inf"),
    ({"epochs": True}, "epochs must be a whole number in [1, 1000], got True"),
    ({"validation_split": 1.0}, "validation_split must be a number in [0, 0.5], got 1.0"),
    ({"seed": -1}, "seed must be a whole number in [0, 2147483647], got -1"),
    ({"optimizer": "lbfgs"}, "optimizer must be one of adam, adamw, sgd, rmsprop, adadelta, got 'lbfgs'"),
    ({"schedule": "step"}, "schedule must be one of constant, cosine, one-cycle, got 'step'"),
    ({"lr": 0.1}, "config: unknown field(s) lr; known: adversarial_eps, augment, batch_size,"),
    ({"patience": -1}, "patience must be a whole number in [0, 1000], got -1"),
    ({"patience": 2.5}, "patience must be a whole number in [0, 1000], got 2.5"),
    ({"patience": "3"}, "patience must be a whole number in [0, 1000], got '3'"),
    ({"patience": 2, "validation_split": 0}, "patience needs a validation split"),
])
def test_invalid_config_names_field_and_range(fields, message):
    assert _config_error(**fields).startswith(message)


def test_nan_and_infinity_from_a_json_file(tmp_path):
    # Python's json accepts NaN/Infinity literals; they must be refused as clearly as any other bad value.
    path = tmp_path / "config.json"
    path.write_text('{"learning_rate": NaN}')
    with pytest.raises(LabError, match=r"^learning_rate must be a number in \(0, 10\], got nan$"):
        specs.load_config(path)
    path.write_text('{"epochs": Infinity}')
    with pytest.raises(LabError, match=r"^epochs must be a whole number in \[1, 1000\], got inf$"):
        specs.load_config(path)


def test_unreadable_spec_files(tmp_path):
    with pytest.raises(LabError, match=r"nope.json: no such file$"):
        specs.load_spec(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{kind: mlp")
    with pytest.raises(LabError, match=r"bad.json: not valid JSON \("):
        specs.load_spec(bad)
    with pytest.raises(LabError, match=r": cannot read \(Is a directory\)$"):
        specs.load_spec(tmp_path)


def test_fields_left_out_of_the_json_keep_their_defaults():
    assert specs.spec_from_dict({}) == ModelSpec()
    cnn = specs.spec_from_dict({"kind": "cnn", "conv_blocks": [{"filters": 8}]})
    assert cnn.dense_layers == [DenseLayer(128, "relu", 0.0)] and cnn.conv_blocks == [ConvBlock(8)]
    assert specs.config_from_dict({}) == TrainConfig()


def test_patience_defaults_to_off_and_presets_keep_it_off():
    assert specs.config_from_dict({}).patience == 0
    assert specs.config_from_dict({"patience": 0, "validation_split": 0}).patience == 0  # off needs no validation
    assert all(p.config.patience == 0 for p in specs.PRESETS.values())


def test_every_config_field_is_documented():
    # Users write this JSON by hand: each field has a row in TrainConfig's field table.
    from dataclasses import fields

    rows = [line.split()[0] for line in TrainConfig.__doc__.splitlines() if line.startswith("    ") and line.split()]
    assert [f.name for f in fields(TrainConfig)] == [r for r in rows if r in {f.name for f in fields(TrainConfig)}]
    assert {f.name for f in fields(TrainConfig)} <= set(rows)
