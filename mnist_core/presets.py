"""Presets: named, documented ModelSpec + TrainConfig recipes, each with the test accuracy it is known to reach.

The claimed accuracies are checked by benchmarks/presets.py; "robust-cnn" is the recipe of the shipped
default model (saved_models/default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mnist_core.errors import LabError
from mnist_core.spec import REAL_INPUT, ConvBlock, DenseLayer, ModelSpec, TrainConfig, spec_from_dict, to_dict


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    spec: ModelSpec
    config: TrainConfig
    claimed_accuracy: float | None

    def copy(self) -> tuple[ModelSpec, TrainConfig]:
        return spec_from_dict(to_dict(self.spec)), replace(self.config)


def _mlp(*layers: tuple[int, float], activation: str = "relu") -> ModelSpec:
    return ModelSpec(kind="mlp", dense_layers=[DenseLayer(u, activation, d) for u, d in layers])


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "mlp-784-dropout",
            "Flatten, Dense 784 relu, Dropout 0.2, softmax; Adam (the classic 'baseline MLP' Keras tutorial).",
            _mlp((784, 0.2)),
            TrainConfig(optimizer="adam", batch_size=200, epochs=10),
            0.98,
        ),
        Preset(
            "mlp-2x28",
            "Two hidden layers of 28 relu units; Adam (the small 2-layer MLP from a from-scratch MNIST project).",
            _mlp((28, 0.0), (28, 0.0)),
            TrainConfig(optimizer="adam", batch_size=32, epochs=10),
            0.965,
        ),
        Preset(
            "mlp-2x512-dropout",
            "2x512 relu with Dropout 0.2 each, RMSprop, 20 epochs (Keras example mnist_mlp.py).",
            _mlp((512, 0.2), (512, 0.2)),
            TrainConfig(optimizer="rmsprop", batch_size=128, epochs=20),
            0.9804,
        ),
        Preset(
            "mlp-2x512",
            "2x512 relu without dropout, RMSprop, 20 epochs (mnist_mlp.py with the dropout removed).",
            _mlp((512, 0.0), (512, 0.0)),
            TrainConfig(optimizer="rmsprop", batch_size=128, epochs=20),
            0.9836,
        ),
        Preset(
            "cnn-classic",
            "conv32, conv64, max-pool, Dropout 0.25, dense 128, Dropout 0.5, softmax; Adam, 12 epochs (Keras example mnist_cnn.py).",
            ModelSpec(
                kind="cnn",
                conv_blocks=[ConvBlock(32, 3, pooling="none"), ConvBlock(64, 3, pooling="max", dropout=0.25)],
                dense_layers=[DenseLayer(128, "relu", 0.5)],
            ),
            TrainConfig(optimizer="adam", batch_size=128, epochs=12),
            0.9925,
        ),
        Preset(
            "mlp-2x128",
            "2x128 relu, Adam, 3 epochs (the TensorFlow beginner quickstart style MLP).",
            _mlp((128, 0.0), (128, 0.0)),
            TrainConfig(optimizer="adam", batch_size=32, epochs=3),
            0.97,
        ),
        Preset(
            "keras-convnet",
            "conv32, pool, conv64, pool, flatten, Dropout 0.5, softmax; batch 128, 15 epochs (Keras 'simple MNIST convnet').",
            ModelSpec(
                kind="cnn",
                conv_blocks=[ConvBlock(32, 3), ConvBlock(64, 3, dropout=0.5)],
                dense_layers=[],
            ),
            TrainConfig(optimizer="adam", batch_size=128, epochs=15),
            0.992,
        ),
        Preset(
            "fast-cnn",
            "Three cheap 3x3 conv blocks (16, 32, 64 filters, max-pool; the first unpadded and without "
            "batch-norm, the others padded with it) and dense 256; Adam with a one-cycle schedule over a single "
            "epoch. Tuned to reach 99% test accuracy as fast as possible on 2 CPU cores "
            "(benchmarks/time_to_accuracy.py).",
            ModelSpec(
                kind="cnn",
                # Block 1 is cheap in FLOPs but was half of a step's time: batch-norm, ReLU and pooling on
                # 28x28x16 tensors are memory-bound. Without its batch-norm and unpadded (26x26, so every later
                # map shrinks too), one epoch trained about 1.4x faster at the same accuracy; dense 256 gave the
                # margin back (seeds 0-3, fit + test in one process, on an AVX2 machine).
                conv_blocks=[ConvBlock(16, 3, padding="valid", pooling="max", batch_norm=False),
                             *(ConvBlock(f, 3, padding="same", pooling="max", batch_norm=True) for f in (32, 64))],
                dense_layers=[DenseLayer(256, "relu", 0.0)],
            ),
            TrainConfig(optimizer="adam", learning_rate=5e-3, schedule="one-cycle", warmup_fraction=0.2,
                        batch_size=128, epochs=1),
            0.99,
        ),
        Preset(
            "best-cnn",
            "Wider batch-norm CNN (32, 64, 128 filters, dense 128 with dropout 0.3), small random shifts and "
            "rotations, Adam with a 12-epoch one-cycle schedule: 99.5% or better in about 6-7 minutes on 2 cores.",
            ModelSpec(
                kind="cnn",
                conv_blocks=[ConvBlock(f, 3, padding="same", pooling="max", batch_norm=True) for f in (32, 64, 128)],
                dense_layers=[DenseLayer(128, "relu", 0.3)],
            ),
            TrainConfig(optimizer="adam", learning_rate=3e-3, schedule="one-cycle", warmup_fraction=0.2,
                        batch_size=128, epochs=12, augment=True),
            0.995,
        ),
        Preset(
            "robust-cnn",
            "The shipped default: best-cnn's network trained 18 epochs with the 'real-input' augmentation "
            "(rotation, scale, slant, shifts, elastic distortion, thinner and thicker strokes, blanked patches, "
            "flagged 1s, some blur and noise) and adversarial training at eps 0.02, so it reads drawn digits that "
            "are small, off-centre, thick, thin, slanted or partly covered: 99.4% on the test set and over 97% at "
            "a 3-pixel shift or a 20-degree turn; about 30 minutes on 2 idle cores.",
            ModelSpec(
                kind="cnn",
                conv_blocks=[ConvBlock(f, 3, padding="same", pooling="max", batch_norm=True) for f in (32, 64, 128)],
                dense_layers=[DenseLayer(128, "relu", 0.3)],
            ),
            TrainConfig(optimizer="adam", learning_rate=3e-3, schedule="one-cycle", warmup_fraction=0.2,
                        batch_size=128, epochs=18, augment=REAL_INPUT, adversarial_eps=0.02),
            0.994,
        ),
    ]
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise LabError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]
