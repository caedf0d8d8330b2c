"""Bring a model trained elsewhere into the registry, as a lab model every page can use unchanged.

The foreign network (read as data and checked by mnist_core.interop.sources) is wrapped in a Keras model that
takes the lab's standard input, (N, 28, 28, 1) floats in [0, 1]:

    image -> input scaling (plain Rescaling / UnitNormalization layers) -> Reshape to the foreign input shape
          -> the foreign layers -> Softmax, when the foreign network outputs scores

The foreign layers are placed one after another in the wrapper when the network is a plain chain (checked by
comparing outputs), so Inspect sees its Dense and Conv2D layers as in a lab model; any other graph is kept as one
nested layer.

so Compare, Draw, Inspect, robustness, calibration, fine-tuning and export see an ordinary model. The scaling the
network was trained with is found by measuring every candidate on a fixed slice of the lab's validation images
(SCORE_IMAGES of the split train.py holds out with the default validation_split and seed) and keeping the one
with the lowest loss (the mean negative log-probability of the right digit: on 1,000 images it separates
scalings that accuracy calls a tie, and a wrong scaling shows first as misplaced confidence);
the user can override it, and `rescale` rebuilds the wrapper around the stored foreign layers, no file needed.
"""

from __future__ import annotations

import time

import numpy as np

from mnist_core import cost, registry
from mnist_core.errors import LabError
from mnist_core.interop import sources

# name -> what the foreign network was fed, given the lab's pixel / 255 in [0, 1]
SCALINGS = {
    "unit": "[0, 1]: pixel / 255",
    "byte": "[0, 255]: the raw pixel values",
    "symmetric": "[-1, 1]: pixel / 127.5 - 1",
    "l2_columns": "tf.keras.utils.normalize(x, axis=1) on (N, 28, 28) images: each column of 28 pixels "
                  "divided by its L2 length (axis 1 runs down the rows)",
    "l2_image": "each image divided by its L2 length (normalize(x, axis=1) on flattened (N, 784) images)",
    "standard": "per-dataset standardisation: (pixel / 255 - 0.1307) / 0.3081, MNIST's training mean and std",
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the 60,000 training images in [0, 1] (torchvision's constants)
INPUT_SHAPES = [(28, 28), (784,), (28, 28, 1), (1, 28, 28)]
SCORE_IMAGES = 1_000
VALIDATION_SPLIT, SPLIT_SEED = 0.1, 0  # TrainConfig's defaults: the lab's validation images
PROBABILITY_TOLERANCE = 1e-3
FOREIGN_LAYER = "foreign"  # the nested foreign network's name inside the wrapper
IMPORTED_KIND = "imported"


def _say(progress):
    return progress or (lambda fraction, text: None)


def check_request(path, name: str, *, weights=None, scaling: str | None = None) -> None:
    """Every check that needs no TensorFlow: the name is valid and free, the scaling known, the files present
    and within their size bounds."""
    registry.check_free(registry.check_name(name))
    if scaling is not None and scaling not in SCALINGS:
        raise LabError(f"unknown scaling {str(scaling)[:40]!r}; use one of: {', '.join(SCALINGS)}")
    sources.check_request(path, weights)


def import_model(path, name: str, *, weights=None, scaling: str | None = None, mnist=None, progress=None,
                 display_name: str | None = None, weights_display_name: str | None = None) -> dict:
    """Import the model at `path` (.keras, full-model .h5, or architecture .json with `weights`) as `name`.

    `scaling` (a SCALINGS key) overrides the measured choice. `display_name`s replace the file names recorded in
    provenance (a dashboard upload lives in a temp file). Returns the saved metadata.
    """
    from mnist_core import data
    from mnist_core.tf_quiet import import_tensorflow

    check_request(path, name, weights=weights, scaling=scaling)
    say = _say(progress)
    say(0.0, "Reading the file as data...")
    source = sources.read(path, weights)
    for record, shown in zip(source.files, (display_name, weights_display_name), strict=False):
        if shown:
            record["file"] = str(shown)[:200]
    import_tensorflow()
    say(0.1, "Building the network from its checked config...")
    foreign = sources.build(source)
    input_shape = _input_shape(foreign, source.files[0]["file"])
    mnist = mnist or data.load()
    probe_x, probe_y = probe_images(mnist)
    output = _output_kind(foreign, probe_x, input_shape)
    layers = _chain_or_nested(foreign, input_shape, output, probe_x)
    scores = {}
    for i, candidate in enumerate(SCALINGS):
        say(0.2 + 0.5 * i / len(SCALINGS), f"Measuring input scaling {candidate} on {len(probe_x):,} images...")
        scores[candidate] = _score(wrap(layers, input_shape, candidate, output), probe_x, probe_y)
    best = min(scores, key=lambda s: (scores[s]["loss"], -scores[s]["accuracy"]))
    chosen = scaling or best
    provenance = {
        "source_file": source.files[0]["file"], "format": source.format, "files": source.files,
        "keras_version": source.keras_version, "imported": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    details = {"input_shape": list(input_shape), "output": output, "scaling": chosen, "detected_scaling": best,
               "scaling_overridden": scaling is not None and scaling != best, "scaling_scores": scores,
               "scaling_images": f"the first {len(probe_x):,} validation images of the lab's split "
                                 f"(validation_split={VALIDATION_SPLIT}, seed={SPLIT_SEED})",
               "foreign_layers": [layer.name for layer in layers]}
    say(0.7, "Evaluating on the full test set...")
    return _save(name, wrap(layers, input_shape, chosen, output), mnist, provenance, details, overwrite=False)


def rescale(name: str, scaling: str, *, mnist=None, progress=None) -> dict:
    """Rebuild an imported model's wrapper with another input scaling, from the foreign layers it stores, and
    measure its test metrics again. Returns the new metadata."""
    from mnist_core import data
    from mnist_core.tf_quiet import import_tensorflow

    if scaling not in SCALINGS:
        raise LabError(f"unknown scaling {str(scaling)[:40]!r}; use one of: {', '.join(SCALINGS)}")
    meta = registry.read_metadata(registry.check_name(name))
    details = meta.get("import")
    if meta.get("kind") != IMPORTED_KIND or not isinstance(details, dict):
        raise LabError(f"{name!r} was not imported; only an imported model's input scaling can be changed")
    import_tensorflow()
    _say(progress)(0.1, f"Rebuilding {name} with input scaling {scaling}...")
    stored = registry.load(name)
    try:
        layers = [stored.get_layer(layer) for layer in details["foreign_layers"]]
    except (KeyError, TypeError, ValueError):
        raise LabError(f"{name!r}: its metadata does not name the imported layers; import the file again") from None
    details = dict(details, scaling=scaling, scaling_overridden=scaling != details.get("detected_scaling"))
    _say(progress)(0.4, "Evaluating on the full test set...")
    return _save(name, wrap(layers, tuple(details["input_shape"]), scaling, details["output"]),
                 mnist or data.load(), meta.get("provenance", {}), details, overwrite=True,
                 created=meta.get("created"))


def _save(name: str, model, mnist, provenance: dict, details: dict, *, overwrite: bool, created=None) -> dict:
    import keras
    import tensorflow as tf

    from mnist_core import evaluate

    test, eval_rate = evaluate.evaluate_with_rate(model, mnist.x_test, mnist.y_test)
    metadata = {
        "kind": IMPORTED_KIND,
        "description": f"imported from {provenance.get('source_file')} (input scaling {details['scaling']})",
        "test": test,
        "eval_images_per_second": eval_rate,
        "parameters": int(model.count_params()),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "data_checksum": mnist.checksum,
        "provenance": dict(provenance, scaling=details["scaling"], scaling_scores=details["scaling_scores"],
                           output=details["output"], input_shape=details["input_shape"]),
        "import": details,
    }
    if created:
        metadata["created"] = created
    registry.save(name, model, metadata, overwrite=overwrite)
    return registry.read_metadata(name)


def probe_images(mnist) -> tuple[np.ndarray, np.ndarray]:
    """The fixed images every scaling is measured on: the first SCORE_IMAGES of the lab's validation split."""
    from mnist_core import data

    _, (x_val, y_val) = data.split(mnist.x_train, mnist.y_train, VALIDATION_SPLIT, SPLIT_SEED)
    return x_val[:SCORE_IMAGES], y_val[:SCORE_IMAGES]


def _input_shape(foreign, label: str) -> tuple:
    inputs = foreign.inputs if isinstance(foreign.inputs, list) else [foreign.inputs]
    if len(inputs) != 1 or len(foreign.outputs) != 1:
        raise LabError(f"{label}: the model has {len(inputs)} inputs and {len(foreign.outputs)} outputs; "
                       "the lab imports one image in, 10 digit scores out")
    shape = tuple(inputs[0].shape[1:])
    if shape not in INPUT_SHAPES:
        raise LabError(f"{label}: input shape {shape} is not one of {', '.join(map(str, INPUT_SHAPES))}")
    out = tuple(foreign.outputs[0].shape[1:])
    if out != (10,):
        raise LabError(f"{label}: output shape {out}, not 10 digit scores")
    if foreign.count_params() > cost.MAX_PARAMETERS:
        raise LabError(f"{label}: {foreign.count_params():,} parameters, over the lab's limit of "
                       f"{cost.MAX_PARAMETERS:,}")
    return shape


def _output_kind(foreign, images: np.ndarray, input_shape: tuple) -> str:
    """"probabilities" when the last layer is a softmax, or its outputs on sample images sum to 1; else
    "scores" (logits), which the wrapper turns into probabilities with a Softmax layer."""
    last = foreign.layers[-1]
    config = last.get_config()
    if type(last).__name__ == "Softmax" or config.get("activation") == "softmax":
        return "probabilities"
    x = (images[:200].astype(np.float32) / 255.0).reshape((-1, *input_shape))
    out = np.asarray(foreign(x, training=False))
    summed = (out >= 0).all() and np.allclose(out.sum(1), 1.0, atol=PROBABILITY_TOLERANCE)
    return "probabilities" if summed else "scores"


def scaling_layers(scaling: str) -> list:
    """Plain, allow-listed Keras layers mapping the lab's [0, 1] pixels, as (N, 28, 28), to `scaling`."""
    import keras

    layers = keras.layers
    return {
        "unit": [],
        "byte": [layers.Rescaling(255.0, name="scale_0_255")],
        "symmetric": [layers.Rescaling(2.0, offset=-1.0, name="scale_minus1_1")],
        "l2_columns": [layers.UnitNormalization(axis=1, name="l2_columns")],
        "l2_image": [layers.UnitNormalization(axis=[1, 2], name="l2_image")],
        "standard": [layers.Rescaling(1.0 / MNIST_STD, offset=-MNIST_MEAN / MNIST_STD, name="standardise")],
    }[scaling]


def _chain_or_nested(foreign, input_shape: tuple, output: str, images: np.ndarray) -> list:
    """The foreign model's layers when calling them one after another gives its own outputs (a plain chain
    whose names do not clash with the wrapper's), else [the model itself] as one nested layer."""
    import keras

    chain = [layer for layer in foreign.layers if not isinstance(layer, keras.layers.InputLayer)]
    x = images[:64, ..., None].astype(np.float32) / 255.0
    try:
        flat = np.asarray(wrap(chain, input_shape, "unit", output)(x, training=False))
        nested = np.asarray(wrap([foreign], input_shape, "unit", output)(x, training=False))
        if flat.shape == nested.shape and np.allclose(flat, nested, atol=1e-5):
            return chain
    except Exception:  # noqa: BLE001  not a chain (branches, shared layers, a clashing name): keep it whole
        pass
    foreign.name = FOREIGN_LAYER
    return [foreign]


def wrap(layers: list, input_shape: tuple, scaling: str, output: str):
    """The lab-format model around the foreign `layers`, called in order (see the module docstring)."""
    import keras

    image = keras.Input((28, 28, 1), name="image")
    # Scaled as (N, 28, 28) images, the layout normalize(x, axis=1) was called on; and so no scaling layer has a
    # 4-D output that Inspect would take for a convolutional feature map.
    x = keras.layers.Reshape((28, 28), name="pixels")(image)
    for layer in scaling_layers(scaling):
        x = layer(x)
    x = keras.layers.Reshape(tuple(input_shape), name="to_foreign_shape")(x)
    for layer in layers:
        x = layer(x)
    if output != "probabilities":
        x = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(image, x, name="imported")


def _score(model, images: np.ndarray, labels: np.ndarray) -> dict:
    from mnist_core import evaluate

    probs = evaluate.probabilities(model, images)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    return {"accuracy": float((probs.argmax(1) == labels).mean()), "loss": float(-np.log(picked).mean())}
