"""mnist_core.precision: float32 unless bf16 mixed precision is asked for (and the CPU has it); the trained
model is float32 either way."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import precision, train
from mnist_core.errors import LabError
from mnist_core.presets import preset
from mnist_core.spec import ConvBlock, DenseLayer, ModelSpec, TrainConfig

SMALL_CNN = ModelSpec(kind="cnn", conv_blocks=[ConvBlock(8, 3, pooling="max", batch_norm=True)],
                      dense_layers=[DenseLayer(16, "relu", 0.0)])


def cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: fpu sse2 {flags}\n\n")
    return path


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    assert precision.cpu_has_bf16(cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert precision.cpu_has_bf16(cpuinfo(tmp_path, "amx_bf16 amx_tile"))
    assert not precision.cpu_has_bf16(cpuinfo(tmp_path, "avx2 avx512f avx512_vnni"))
    assert not precision.cpu_has_bf16(tmp_path / "missing")


def test_float32_unless_asked(monkeypatch):
    monkeypatch.delenv(precision.OVERRIDE_VARIABLE, raising=False)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.choose(preset("best-cnn").spec) == precision.FLOAT32


def test_auto_follows_model_size_and_cpu(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_VARIABLE, precision.AUTO)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.choose(preset("best-cnn").spec) == precision.MIXED_BF16
    assert precision.choose(preset("fast-cnn").spec) == precision.FLOAT32  # too small to gain
    assert precision.choose(preset("mlp-2x512").spec) == precision.FLOAT32
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.choose(preset("best-cnn").spec) == precision.FLOAT32


def test_asked_bf16_falls_back_without_the_instructions_and_is_bounded(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_VARIABLE, precision.MIXED_BF16)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.choose(preset("mlp-2x28").spec) == precision.MIXED_BF16
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.choose(preset("mlp-2x28").spec) == precision.FLOAT32
    monkeypatch.setenv(precision.OVERRIDE_VARIABLE, "float16")
    with pytest.raises(LabError, match="MNIST_PRECISION='float16'"):
        precision.choose(preset("mlp-2x28").spec)


def test_mixed_training_returns_a_float32_model_with_the_trained_weights(monkeypatch, small_mnist):
    import keras

    monkeypatch.setenv(precision.OVERRIDE_VARIABLE, precision.MIXED_BF16)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # emulated where the CPU lacks it: slower, same result
    result = train.fit(SMALL_CNN, TrainConfig(epochs=2, batch_size=64, validation_split=0.1), mnist=small_mnist)
    assert result.precision == precision.MIXED_BF16
    assert {layer.dtype_policy.name for layer in result.model.layers} == {"float32"}
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for everything after
    x = small_mnist.x_test[:500].astype(np.float32)[..., None] / 255
    accuracy = float((np.asarray(result.model(x, training=False)).argmax(1) == small_mnist.y_test[:500]).mean())
    # It learned in bf16 (chance is 0.1), and the float32 copy reads test digits as well as the bf16 model
    # read its validation digits.
    assert accuracy > 0.6
    assert abs(accuracy - result.history[-1]["val_accuracy"]) < 0.1


def test_float32_training_keeps_its_model(monkeypatch, small_mnist):
    monkeypatch.setenv(precision.OVERRIDE_VARIABLE, precision.FLOAT32)
    result = train.fit(SMALL_CNN, TrainConfig(epochs=1, batch_size=64, validation_split=0.1), mnist=small_mnist)
    assert result.precision == precision.FLOAT32
    assert precision.as_float32(result.model, lambda: pytest.fail("no copy needed")) is result.model
