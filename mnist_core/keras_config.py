"""A .keras archive checked as data before Keras opens it: its sizes, then its config.json.

Sizes: a small file with a valid checksum can still unpack to gigabytes, which Keras would write to a temp
dir or hold in memory on every load. The central directory's sizes are bounded (member count, each member,
the total), then every member is actually unpacked in bounded chunks and thrown away, so a directory that
lies about sizes, or a bad CRC, is caught here rather than inside Keras.

Config: only the plain Keras objects build.py and train.py write may appear. Anything else (a Lambda layer, a
function reference, a class from another module) is code the lab did not write. Keras's safe_mode is the
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
            config = json.loads(_unpack_every_member(zf, name))
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


def _unpack_every_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """Check the archive's sizes, as declared and as actually unpacked; returns config.json's bytes."""
    members = zf.infolist()
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise LabError(f"{name}: refusing to load: model.keras has {len(members):,} members, over the limit of "
                       f"{MAX_ARCHIVE_MEMBERS}")
    for info in members:
        if info.file_size > MAX_MEMBER_BYTES:
            raise LabError(f"{name}: refusing to load: {info.filename[:60]} unpacks to {info.file_size:,} bytes, "
                           f"over the limit of {MAX_MEMBER_BYTES:,} per member")
    declared = sum(info.file_size for info in members)
    if declared > MAX_UNPACKED_BYTES:
        raise LabError(f"{name}: refusing to load: model.keras unpacks to {declared:,} bytes, over the limit of "
                       f"{MAX_UNPACKED_BYTES:,} in total")
    config, total = b"", 0
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
                    if info.filename == "config.json":
                        config += chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise LabError(f"{name}: model.keras is damaged ({info.filename[:60]}: {str(exc)[:80] or 'unreadable'})"
                           ) from None
    return config


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
