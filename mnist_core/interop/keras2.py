"""A Keras 2 model config (tf-keras `model.to_json()`, an .h5's `model_config`) rewritten as Keras 3 data.

Only the JSON is changed, never run: Keras 2 writes `batch_input_shape` where Keras 3 reads `batch_shape`, leaves
out the `module` of the model and (before 2.13) of every object, calls a functional model "Model", and stores a
one-axis BatchNormalization's axis as a list. The result goes through keras_config.check_config like any config.
Keras 3's own configs pass through unchanged (every rule below is a no-op on them).
"""

from __future__ import annotations

import copy

MODULE_BY_KEY_SUFFIX = {"_initializer": "keras.initializers", "_regularizer": "keras.regularizers",
                        "_constraint": "keras.constraints"}
MAX_DIMENSION = 8192  # units, filters or a shape entry in an imported config: MNIST models use at most a few thousand
MAX_KERNEL = 28  # a kernel or pool larger than the image is not an MNIST model


def to_keras3(config: dict) -> dict:
    """A converted deep copy of `config` (a model's {"class_name", "config"} dict)."""
    config = copy.deepcopy(config)
    if config.get("class_name") == "Model":
        config["class_name"] = "Functional"
    if config.get("class_name") == "Functional" and config.get("module") in (None, "keras"):
        config["module"] = "keras.src.models.functional"  # where Keras 3 writes and finds it
    config.setdefault("module", "keras")
    inner = config.get("config")
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        return config  # check_config and Keras say what is wrong with it
    layers = inner["layers"]
    for layer in layers:
        if isinstance(layer, dict):
            _convert_layer(layer)
    if config["class_name"] == "Sequential":
        _add_sequential_input(layers)
    return config


def _convert_layer(layer: dict) -> None:
    layer.setdefault("module", "keras.layers")
    if layer.get("class_name") in ("Sequential", "Functional", "Model"):
        layer.update(to_keras3(layer))
        return
    settings = layer.get("config")
    if not isinstance(settings, dict):
        return
    shape = settings.pop("batch_input_shape", None)
    if shape is None and "input_shape" in settings:
        shape = [None, *settings.pop("input_shape")]
    if layer.get("class_name") == "InputLayer":
        settings.setdefault("batch_shape", shape)
        settings.pop("ragged", None)
    elif shape is not None:
        layer["_keras2_batch_shape"] = shape  # Sequential's first layer: becomes an InputLayer below
    if layer.get("class_name") == "BatchNormalization" and isinstance(settings.get("axis"), list) \
            and len(settings["axis"]) == 1:
        settings["axis"] = settings["axis"][0]
    for key, value in settings.items():
        module = next((m for suffix, m in MODULE_BY_KEY_SUFFIX.items() if key.endswith(suffix)), None)
        if module and isinstance(value, dict) and "class_name" in value:
            value.setdefault("module", module)


def _add_sequential_input(layers: list) -> None:
    """Keras 2's Sequential may carry its input shape on the first layer alone; Keras 3 wants an InputLayer."""
    first = layers[0] if layers and isinstance(layers[0], dict) else None
    shape = first.pop("_keras2_batch_shape", None) if first else None
    for layer in layers[1:]:
        if isinstance(layer, dict):
            layer.pop("_keras2_batch_shape", None)
    if shape is not None and first.get("class_name") != "InputLayer":
        name = f"{first.get('config', {}).get('name', 'layer')}_input"
        layers.insert(0, {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                          "config": {"batch_shape": shape, "dtype": "float32", "name": name}})


def size_problem(config) -> str:
    """'' or why the config declares layers too large to build (checked before Keras allocates them)."""
    if isinstance(config, dict):
        for key in ("units", "filters"):
            value = config.get(key)
            if isinstance(value, int) and not 1 <= value <= MAX_DIMENSION:
                return f"{key}={value} is outside 1..{MAX_DIMENSION}"
        for key in ("kernel_size", "pool_size"):
            value = config.get(key)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, int) and v > MAX_KERNEL for v in values):
                return f"{key}={value} is larger than {MAX_KERNEL}"
        for key in ("batch_shape", "target_shape"):
            value = config.get(key)
            if isinstance(value, list) and any(isinstance(v, int) and v > MAX_DIMENSION for v in value):
                return f"{key}={value} has a dimension over {MAX_DIMENSION}"
        return next((p for p in map(size_problem, config.values()) if p), "")
    if isinstance(config, list):
        return next((p for p in map(size_problem, config) if p), "")
    return ""
