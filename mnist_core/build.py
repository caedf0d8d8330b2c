"""ModelSpec -> keras.Model. Every model takes float32 (28, 28, 1) in [0, 1] and outputs 10 softmax probabilities."""

from __future__ import annotations

import keras

from mnist_core.spec import ModelSpec

INPUT_SHAPE = (28, 28, 1)


def build(spec: ModelSpec, name: str | None = None) -> keras.Model:
    spec.validate()
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    for i, block in enumerate(spec.conv_blocks):
        # Batch-norm sits between conv and activation, so the conv needs no bias.
        x = keras.layers.Conv2D(block.filters, block.kernel, padding=block.padding,
                                use_bias=not block.batch_norm, name=f"conv{i + 1}")(x)
        if block.batch_norm:
            # momentum 0.9, not Keras's 0.99: the running statistics that inference uses then settle within
            # ~50 steps instead of ~500, so a model is usable (and scores well on test) within its first epoch.
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i + 1}")(x)
        x = keras.layers.Activation(block.activation, name=f"conv{i + 1}_{block.activation}")(x)
        if block.pooling == "max":
            x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
        elif block.pooling == "avg":
            x = keras.layers.AveragePooling2D(2, name=f"pool{i + 1}")(x)
        if block.dropout:
            x = keras.layers.Dropout(block.dropout, name=f"conv_dropout{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, layer in enumerate(spec.dense_layers):
        x = keras.layers.Dense(layer.units, activation=layer.activation, name=f"dense{i + 1}")(x)
        if layer.dropout:
            x = keras.layers.Dropout(layer.dropout, name=f"dropout{i + 1}")(x)
    # float32 even under a mixed-precision policy (mnist_core.precision): a bfloat16 softmax rounds small
    # probabilities to zero, and the loss takes their log.
    outputs = keras.layers.Dense(10, activation="softmax", dtype="float32", name="digits")(x)
    return keras.Model(inputs, outputs, name=name or spec.describe())


def summary_rows(model: keras.Model) -> list[dict]:
    """Layer table for display: name, type, output shape, parameters."""
    rows = []
    for layer in model.layers:
        shape = layer.output.shape if hasattr(layer, "output") else None
        rows.append({
            "layer": layer.name,
            "type": type(layer).__name__,
            "output shape": str(tuple(shape[1:])) if shape is not None else "",
            "parameters": int(layer.count_params()),
        })
    return rows
