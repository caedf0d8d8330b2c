"""What a spec costs, from arithmetic on the ModelSpec alone (no Keras model is built).

The layers mirror build.build one for one, so the parameter counts equal Keras's count_params() exactly
(tests/test_cost.py checks every preset and some odd specs). FLOPs count a multiply-add as two and
ignore the cheap element-wise layers' share only where it is negligible (activations, pooling and
batch-norm are counted at one FLOP per element they touch). A training step costs about three forward
passes (the backward pass is about two). Activation memory is every layer's float32 output, kept for the
backward pass, plus a gradient of the same size.

The limits below are refused before any work (spec.validate, cost.check); the numbers behind them are
in the module's tests and the README's reliability table.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnist_core.errors import LabError
from mnist_core.spec import ModelSpec, TrainConfig

# About 12.5 bytes per parameter in a saved .keras file (weights and optimizer slots): 10 million stays well
# below the registry's 256 MiB per-member bound, so every model the lab can train it can also load.
# The largest preset (cnn-classic) has 1,199,882.
MAX_PARAMETERS = 10_000_000
# A training step of one image (about 3 forward passes). cnn-classic, the costliest preset, needs
# 72 million; 3 billion is 40x that, an epoch of about 20-30 minutes on this 2-core machine.
MAX_TRAINING_FLOPS_PER_IMAGE = 3_000_000_000
# Activations and their gradients for one batch. The presets need at most 81 MiB (cnn-classic at batch 128).
MAX_ACTIVATION_BYTES_PER_BATCH = 4 * 1024**3
TRAINING_FLOPS_PER_FORWARD = 3
BYTES_PER_FLOAT = 4
NUM_CLASSES = 10


@dataclass(frozen=True)
class Layer:
    name: str
    type: str  # the Keras class build.build uses for it
    shape: tuple[int, ...]  # output shape of one image
    parameters: int
    flops: int  # forward FLOPs for one image

    @property
    def outputs(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Cost:
    parameters: int
    forward_flops: int  # per image
    activation_floats: int  # every layer's output for one image, the input included

    @property
    def training_flops(self) -> int:
        """FLOPs of one training step per image: forward plus backward."""
        return TRAINING_FLOPS_PER_FORWARD * self.forward_flops

    def activation_bytes(self, batch_size: int) -> int:
        """Activation memory of one training batch: outputs kept for the backward pass, and their gradients."""
        return 2 * BYTES_PER_FLOAT * self.activation_floats * batch_size

    def epoch_flops(self, images: int) -> int:
        return self.training_flops * images


def layers(spec: ModelSpec) -> list[Layer]:
    """The layers build.build makes for `spec`, with shapes, parameters and FLOPs. Assumes the spec's
    fields are valid (spec.validate checks them before it asks for the cost)."""
    h = w = 28
    channels = 1
    rows = [Layer("image", "InputLayer", (h, w, channels), 0, 0)]
    for i, block in enumerate(spec.conv_blocks, start=1):
        if block.padding == "valid":
            h, w = h - block.kernel + 1, w - block.kernel + 1
        weights = block.kernel * block.kernel * channels * block.filters
        bias = 0 if block.batch_norm else block.filters
        channels = block.filters
        shape = (h, w, channels)
        out = h * w * channels
        rows.append(Layer(f"conv{i}", "Conv2D", shape, weights + bias, 2 * weights * h * w + (out if bias else 0)))
        if block.batch_norm:
            rows.append(Layer(f"bn{i}", "BatchNormalization", shape, 4 * channels, 2 * out))
        rows.append(Layer(f"conv{i}_{block.activation}", "Activation", shape, 0, out))
        if block.pooling != "none":
            h, w = h // 2, w // 2  # 2x2 windows, stride 2, 'valid': an odd row or column is dropped
            pool_type = "MaxPooling2D" if block.pooling == "max" else "AveragePooling2D"
            rows.append(Layer(f"pool{i}", pool_type, (h, w, channels), 0, out))
        if block.dropout:
            rows.append(Layer(f"conv_dropout{i}", "Dropout", (h, w, channels), 0, h * w * channels))
    width = h * w * channels
    rows.append(Layer("flatten", "Flatten", (width,), 0, 0))
    for i, dense in enumerate(spec.dense_layers, start=1):
        rows.append(Layer(f"dense{i}", "Dense", (dense.units,), width * dense.units + dense.units,
                          2 * width * dense.units + 2 * dense.units))
        width = dense.units
        if dense.dropout:
            rows.append(Layer(f"dropout{i}", "Dropout", (width,), 0, width))
    rows.append(Layer("digits", "Dense", (NUM_CLASSES,), width * NUM_CLASSES + NUM_CLASSES,
                      2 * width * NUM_CLASSES + 3 * NUM_CLASSES))
    return rows


def estimate(spec: ModelSpec) -> Cost:
    found = layers(spec)
    return Cost(parameters=sum(x.parameters for x in found), forward_flops=sum(x.flops for x in found),
                activation_floats=sum(x.outputs for x in found))


def summary_rows(spec: ModelSpec) -> list[dict]:
    """The layer table of build.summary_rows(build.build(spec)), without building anything."""
    return [{"layer": x.name, "type": x.type, "output shape": str(x.shape), "parameters": x.parameters}
            for x in layers(spec)]


def check_spec(spec: ModelSpec) -> Cost:
    """Refuse a spec over MAX_PARAMETERS or MAX_TRAINING_FLOPS_PER_IMAGE, in one line. Returns its cost."""
    cost = estimate(spec)
    if cost.parameters > MAX_PARAMETERS:
        raise LabError(f"the model has {cost.parameters:,} parameters, over the lab's limit of "
                       f"{MAX_PARAMETERS:,}: use fewer or smaller layers, or pooling before the dense layers")
    if cost.training_flops > MAX_TRAINING_FLOPS_PER_IMAGE:
        raise LabError(f"the model needs {cost.training_flops / 1e9:,.1f} GFLOPs per training image, over the "
                       f"lab's limit of {MAX_TRAINING_FLOPS_PER_IMAGE / 1e9:,.1f}: use fewer filters, smaller "
                       "kernels or pooling")
    return cost


def check(spec: ModelSpec, config: TrainConfig) -> Cost:
    """check_spec, and refuse a batch whose activations would need over MAX_ACTIVATION_BYTES_PER_BATCH."""
    cost = check_spec(spec)
    needed = cost.activation_bytes(config.batch_size)
    if needed > MAX_ACTIVATION_BYTES_PER_BATCH:
        most = max(1, MAX_ACTIVATION_BYTES_PER_BATCH // cost.activation_bytes(1))
        raise LabError(f"batch_size {config.batch_size} needs about {needed / 1024**3:,.1f} GiB of activations, "
                       f"over the lab's limit of {MAX_ACTIVATION_BYTES_PER_BATCH / 1024**3:,.0f} GiB per batch: "
                       f"use a batch size of at most {most:,} for this model")
    return cost


# ---------- timing in the server ----------

# The Train page times a few real batches in the dashboard's own process for an honest per-epoch figure.
# Only while that is cheap: 400 GFLOPs is one warm-up and 8 timed batches of cnn-classic up to batch ~600,
# a few seconds on this machine (it measured 50-95 GFLOP/s for the CNN presets at batch 128).
MAX_TIMED_FLOPS = 400_000_000_000
MAX_TIMED_ACTIVATION_BYTES = 1024**3
# Beyond those bounds the time is estimated from FLOPs. Measured here: 95 GFLOP/s for cnn-classic and
# 178 for a 1.4 GFLOPs-per-image CNN (c128-c256, 'same', batch 128): big models use the cores better,
# and only big models are estimated, so the lower figure errs long rather than short.
ASSUMED_FLOPS_PER_SECOND = 100_000_000_000


def timing_flops(spec: ModelSpec, config: TrainConfig, batches: int) -> int:
    """FLOPs of timing `batches` training steps after one warm-up step."""
    return estimate(spec).training_flops * config.batch_size * (batches + 1)


def too_costly_to_time(spec: ModelSpec, config: TrainConfig, batches: int) -> str | None:
    """Why timing `batches` steps in this process would be too heavy, or None if it is cheap enough."""
    flops = timing_flops(spec, config, batches)
    if flops > MAX_TIMED_FLOPS:
        return (f"timing {batches + 1} batches would take {flops / 1e9:,.0f} GFLOPs, over "
                f"{MAX_TIMED_FLOPS / 1e9:,.0f}")
    memory = estimate(spec).activation_bytes(config.batch_size)
    if memory > MAX_TIMED_ACTIVATION_BYTES:
        return (f"a batch needs {memory / 1024**2:,.0f} MiB of activations, over "
                f"{MAX_TIMED_ACTIVATION_BYTES / 1024**2:,.0f} MiB")
    return None


def flops_epoch_seconds(spec: ModelSpec, config: TrainConfig, train_images: int) -> float:
    """A rough seconds-per-epoch from FLOPs at ASSUMED_FLOPS_PER_SECOND, for specs too heavy to time."""
    return estimate(spec).epoch_flops(train_images) / ASSUMED_FLOPS_PER_SECOND
