"""Re-import a lab model whose model.keras changed outside the lab: explicitly, after the checks registry.load
makes, with its test metrics measured again."""

from __future__ import annotations

import time

from mnist_core import keras_config, registry
from mnist_core.errors import LabError


def reimport(name: str, mnist=None) -> dict:
    """Accept a model.keras that changed outside the lab, explicitly, after the checks load() makes.

    Its config must name only the plain Keras layers the lab builds, Keras must load it in safe mode,
    and it must map 28x28 images to 10 classes. The stored test metrics are measured again (the old ones
    belong to the old file), then the new checksum is recorded.
    """
    import keras

    from mnist_core import data, evaluate

    model_file = registry.model_path(name) / registry.MODEL_FILE
    if not model_file.is_file():
        raise LabError(f"no model.keras in {name!r}")
    registry.read_metadata(name)  # a missing or broken metadata.json is refused before the slow checks
    sha = registry.file_sha256(model_file)
    keras_config.check_plain_keras(model_file)
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:
        raise LabError(f"cannot re-import {name!r}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if tuple(model.input_shape) != (None, 28, 28, 1) or tuple(model.output_shape) != (None, 10):
        raise LabError(f"cannot re-import {name!r}: it maps {model.input_shape} to {model.output_shape}, "
                       "not 28x28x1 images to 10 digits")
    if registry.file_sha256(model_file) != sha:
        raise LabError(f"cannot re-import {name!r}: model.keras changed while it was being checked")
    mnist = mnist or data.load()
    test, _ = evaluate.evaluate(model, mnist.x_test, mnist.y_test)
    return registry.update_metadata(name, {"name": name, "model_sha256": sha, "test": test,
                                           "parameters": int(model.count_params()),
                                           "reimported": time.strftime("%Y-%m-%d %H:%M:%S")})
