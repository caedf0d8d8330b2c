"""A .keras archive checked as data before Keras opens it: its sizes, then its config.json.

Sizes: a small file with a valid checksum can still unpack to gigabytes, which Keras would write to a temp
dir or hold in memory on every load. The central directory's sizes are bounded (member count, each member,
the total), then every member is actually unpacked in bounded chunks and thrown away, so a directory that
lies about sizes, or a bad CRC, is caught here rather than inside Keras.

Config: only plain Keras objects may appear: those build.py and train.py write, plus the plain layers,
initializers, regularizers and constraints a model trained elsewhere and imported (mnist_core.interop.importer)
may hold. None of them carries code. Anything else (a Lambda layer, a function reference, a class from another
module, an activation Keras would look up by an unknown name) is code the lab did not write. Keras's safe_mode is the
second line of defence: it refuses Lambda bytecode when it loads.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

from mnist_core.errors import LabError

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_ARCHIVE_MEMBERS = 64  # the lab writes 3: metadata.json, config.json and the weights
# The weights member holds about 12.5 bytes per parameter (the weights and Adam's two slots), so one member of
# 256 MiB is a model of about 20 million parameters; the lab's default has 98,778 (1.2 MB).
MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_UNPACKED_BYTES = 320 * 1024 * 1024  # every member together
MAX_ARCHIVE_FILE_BYTES = MAX_UNPACKED_BYTES + 1024 * 1024  # the file on disk: its members plus their headers
READ_CHUNK_BYTES = 1024 * 1024
SAFE_CLASSES = {
    "Functional", "Sequential", "InputLayer", "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
    "AveragePooling2D", "Dropout", "Flatten", "Dense", "DTypePolicy", "GlorotUniform", "Zeros", "Ones",
    "SparseCategoricalCrossentropy", "Adam", "AdamW", "SGD", "RMSprop", "Adadelta", "CosineDecay",
    "__keras_tensor__",
    # Imported models: more plain layers, and the wrapper's input scaling (Rescaling, UnitNormalization, Reshape)
    # and output (Softmax).
    "Reshape", "Rescaling", "UnitNormalization", "Softmax", "ReLU", "LeakyReLU", "ELU", "PReLU",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "SpatialDropout2D", "GaussianNoise",
    "GaussianDropout", "LayerNormalization", "Permute", "SeparableConv2D", "DepthwiseConv2D", "Add", "Concatenate",
    "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
    "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "Constant", "VarianceScaling", "Orthogonal", "Identity",
    "L1", "L2", "L1L2", "OrthogonalRegularizer", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm",
    "FloatDTypePolicy", "Nadam", "Adamax", "Adagrad", "ExponentialDecay", "PiecewiseConstantDecay",
    "CategoricalCrossentropy",
}
# Activations named by a string in a layer's config: Keras looks any other name up among registered custom objects.
SAFE_ACTIVATIONS = {
    "relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "softplus", "softsign", "swish", "silu", "gelu",
    "exponential", "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu", "relu6", "log_softmax", "mish", None,
}
MAX_CONFIG_DEPTH = 64  # a model's config nests about 8 deep; deeper is a bomb or not a model


def check_plain_keras(model_file: Path) -> None:
    """Raise a one-line LabError, named after the model's folder, unless the archive's config names only
    SAFE_CLASSES from Keras's own modules."""
    model_file = Path(model_file)
    name = model_file.parent.name
    check_config(read_archive(model_file, name)["config.json"], name)


def read_archive(archive: Path, name: str, label: str = "model.keras") -> dict:
    """{"config.json": parsed config, "metadata.json": parsed dict or {}} of a .keras archive, after the size
    checks; nothing in it is run. Errors are one line: `<name>: <label> is damaged (...)` or `<name>: refusing
    to load: ...`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            if zf.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise LabError(f"{name}: refusing to load: config.json is too large")
            config, metadata = _unpack_every_member(zf, name, label)
            config = json.loads(config)
            metadata = json.loads(metadata) if metadata else {}
    except zipfile.BadZipFile:
        raise LabError(f"{name}: {label} is damaged (not a readable zip archive)") from None
    except KeyError:
        raise LabError(f"{name}: {label} is damaged (it has no config.json)") from None
    except (ValueError, RecursionError):
        raise LabError(f"{name}: {label} is damaged (its config.json is not valid JSON)") from None
    except OSError as exc:
        raise LabError(f"{name}: {label} cannot be read ({exc.strerror or exc})") from None
    return {"config.json": config, "metadata.json": metadata if isinstance(metadata, dict) else {}}


def check_config(config, name: str, refusal: str = "refusing to load") -> None:
    """Raise a one-line LabError `<name>: <refusal>: <reason>` unless `config` (parsed JSON, Keras 3 form) names
    only SAFE_CLASSES from Keras's own modules and SAFE_ACTIVATIONS, nested at most MAX_CONFIG_DEPTH deep."""
    _walk(config, f"{name}: {refusal}", 0)


def _unpack_every_member(zf: zipfile.ZipFile, name: str, label: str) -> tuple[bytes, bytes]:
    """Check the archive's sizes, as declared and as actually unpacked; returns config.json's and
    metadata.json's bytes."""
    members = zf.infolist()
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise LabError(f"{name}: refusing to load: {label} has {len(members):,} members, over the limit of "
                       f"{MAX_ARCHIVE_MEMBERS}")
    for info in members:
        if info.file_size > MAX_MEMBER_BYTES:
            raise LabError(f"{name}: refusing to load: {info.filename[:60]} unpacks to {info.file_size:,} bytes, "
                           f"over the limit of {MAX_MEMBER_BYTES:,} per member")
    declared = sum(info.file_size for info in members)
    if declared > MAX_UNPACKED_BYTES:
        raise LabError(f"{name}: refusing to load: {label} unpacks to {declared:,} bytes, over the limit of "
                       f"{MAX_UNPACKED_BYTES:,} in total")
    kept, total = {"config.json": b"", "metadata.json": b""}, 0
    for info in members:
        unpacked = 0
        try:
            with zf.open(info) as fh:
                while chunk := fh.read(READ_CHUNK_BYTES):
                    unpacked += len(chunk)
                    total += len(chunk)
                    if unpacked > min(info.file_size, MAX_MEMBER_BYTES) or total > MAX_UNPACKED_BYTES:
                        raise LabError(f"{name}: refusing to load: {info.filename[:60]} unpacks to more than the "
                                       f"{info.file_size:,} bytes it declares")
                    if info.filename in kept and len(kept[info.filename]) <= MAX_CONFIG_BYTES:
                        kept[info.filename] += chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise LabError(f"{name}: {label} is damaged ({info.filename[:60]}: {str(exc)[:80] or 'unreadable'})"
                           ) from None
    if len(kept["metadata.json"]) > MAX_CONFIG_BYTES:
        raise LabError(f"{name}: refusing to load: metadata.json is too large")
    return kept["config.json"], kept["metadata.json"]


def _walk(node, prefix: str, depth: int) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise LabError(f"{prefix}: config is nested more than {MAX_CONFIG_DEPTH} deep")
    if isinstance(node, dict):
        module, class_name = node.get("module"), node.get("class_name")
        if class_name == "Lambda":
            raise LabError(f"{prefix}: config contains 'Lambda', a layer whose stored Python code would run")
        if isinstance(module, str) and not (module == "keras" or module.startswith("keras.")):
            raise LabError(f"{prefix}: config names module {module[:60]!r} (code from outside Keras)")
        if class_name is not None and class_name not in SAFE_CLASSES:
            raise LabError(f"{prefix}: config contains {str(class_name)[:40]!r}, which is not a plain Keras class "
                           "the lab allows (code could run)")
        if node.get("registered_name") not in (None, class_name):
            raise LabError(f"{prefix}: config names the custom object {str(node['registered_name'])[:40]!r}")
        activation = node.get("activation")
        if not isinstance(activation, dict) and activation not in SAFE_ACTIVATIONS:
            raise LabError(f"{prefix}: config uses the activation {str(activation)[:40]!r}, which is not a "
                           "built-in Keras activation")
        for value in node.values():
            _walk(value, prefix, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _walk(value, prefix, depth + 1)
