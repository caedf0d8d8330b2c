"""A .keras archive's config.json, checked as data before Keras parses it.

Only the plain Keras objects build.py and train.py write may appear. Anything else (a Lambda layer, a
function reference, a class from another module) is code the lab did not write. Keras's safe_mode is the
second line of defence: it refuses Lambda bytecode when it loads.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from mnist_core.errors import LabError

MAX_CONFIG_BYTES = 4 * 1024 * 1024
SAFE_CLASSES = {
    "Functional", "Sequential", "InputLayer", "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
    "AveragePooling2D", "Dropout", "Flatten", "Dense", "DTypePolicy", "GlorotUniform", "Zeros", "Ones",
    "SparseCategoricalCrossentropy", "Adam", "AdamW", "SGD", "RMSprop", "Adadelta", "CosineDecay",
    "__keras_tensor__",
}


def check_plain_keras(model_file: Path) -> None:
    """Raise a one-line LabError, named after the model's folder, unless the archive's config names only
    SAFE_CLASSES from Keras's own modules."""
    model_file = Path(model_file)
    name = model_file.parent.name
    try:
        with zipfile.ZipFile(model_file) as zf:
            if zf.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise LabError(f"{name}: refusing to load: config.json is too large")
            config = json.loads(zf.read("config.json"))
    except zipfile.BadZipFile:
        raise LabError(f"{name}: model.keras is damaged (not a readable zip archive)") from None
    except KeyError:
        raise LabError(f"{name}: model.keras is damaged (it has no config.json)") from None
    except (ValueError, RecursionError):
        raise LabError(f"{name}: model.keras is damaged (its config.json is not valid JSON)") from None
    except OSError as exc:
        raise LabError(f"{name}: model.keras cannot be read ({exc.strerror or exc})") from None
    try:
        _walk(config, name)
    except RecursionError:
        raise LabError(f"{name}: refusing to load: config.json is nested too deeply") from None


def _walk(node, name: str) -> None:
    if isinstance(node, dict):
        module, class_name = node.get("module"), node.get("class_name")
        if isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
            raise LabError(f"{name}: refusing to load: config names module {module!r}")
        if class_name is not None and class_name not in SAFE_CLASSES:
            raise LabError(f"{name}: refusing to load: config contains {str(class_name)[:40]!r}, "
                           "which the lab never writes (code could run)")
        for value in node.values():
            _walk(value, name)
    elif isinstance(node, list):
        for value in node:
            _walk(value, name)
