"""Read a model trained elsewhere as data: its architecture (checked against keras_config's allow-list before
Keras sees it) and its weights (numpy arrays read with h5py). Nothing in a file is run or unpickled.

Accepted: a Keras 3 `.keras` archive; a full-model `.h5` (Keras 2 `model.save`: `model_config` attribute and
`model_weights/<layer>/<layer>/<var>:0`); an architecture `.json` (`model.to_json()`) with a `save_weights`
`.h5` (`<layer>/<layer>/<var>:0`, listed by each layer group's `weight_names` attribute).

Bounds, checked before the work they guard: see the constants below. A `.keras` archive also gets
keras_config's member count and unpacked-size limits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_core import cost, keras_config
from mnist_core.errors import LabError
from mnist_core.fsutil import read_bytes_bounded
from mnist_core.interop import keras2

FORMATS = {".keras": "keras", ".h5": "h5", ".hdf5": "h5", ".json": "json"}
MAX_JSON_BYTES = keras_config.MAX_CONFIG_BYTES  # 4 MiB: an MNIST model's config is a few KB
# A full-model .h5 holds the weights and up to two optimizer slots each, as float32, for at most
# cost.MAX_PARAMETERS (10 million) parameters, plus headers: 128 MiB.
MAX_H5_BYTES = 3 * 4 * cost.MAX_PARAMETERS + 8 * 1024 * 1024
MAX_KERAS_BYTES = keras_config.MAX_ARCHIVE_FILE_BYTES
MAX_LAYERS = 1_000  # layer groups in an .h5
MAX_WEIGHT_VALUES = cost.MAX_PARAMETERS  # numbers read from an .h5, all layers together
FLOAT_KINDS = "f"  # float16/32/64 datasets only: no objects, strings, references or compound types


@dataclass
class Source:
    """What an import reads from its file(s): all data, nothing built yet."""
    format: str  # "keras", "h5" or "json+h5"
    config: dict  # Keras 3 form, checked against the allow-list
    weights: dict[str, list[np.ndarray]] | None  # layer name -> arrays in Keras order; None for .keras
    keras_file: Path | None = None
    keras_version: str | None = None
    files: list[dict] = field(default_factory=list)  # [{"file", "role", "bytes", "sha256"}]


def check_request(path, weights=None) -> tuple[Path, Path | None, str]:
    """(path, weights path, format) after the checks that need no reading: files exist, suffixes, sizes."""
    path = _existing_file(path, "model file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LabError(f"{path.name}: not a model file the lab imports; give a .keras, a full-model .h5, or an "
                       "architecture .json with --weights W.h5")
    limit = {"keras": MAX_KERAS_BYTES, "h5": MAX_H5_BYTES, "json": MAX_JSON_BYTES}[fmt]
    _check_size(path, limit)
    if fmt == "json" and weights is None:
        raise LabError(f"{path.name}: an architecture .json holds no weights; give the .h5 that save_weights "
                       "wrote with it (--weights W.h5)")
    if fmt != "json" and weights is not None:
        raise LabError(f"{path.name}: --weights goes with an architecture .json only; a {path.suffix} file holds "
                       "its own weights")
    if weights is not None:
        weights = _existing_file(weights, "weights file")
        if FORMATS.get(weights.suffix.lower()) != "h5":
            raise LabError(f"{weights.name}: the weights file must be an .h5 written by save_weights")
        _check_size(weights, MAX_H5_BYTES)
    return path, weights, fmt


def read(path, weights=None) -> Source:
    """Read and check a foreign model's files (see the module docstring); one-line LabError on any problem."""
    path, weights, fmt = check_request(path, weights)
    files = [_fingerprint(path, "model")] + ([_fingerprint(weights, "weights")] if weights else [])
    if fmt == "keras":
        archive = keras_config.read_archive(path, path.name, path.name)
        config = _checked(archive["config.json"], path.name)
        version = archive["metadata.json"].get("keras_version")
        return Source("keras", config, None, path, str(version)[:20] if version else None, files)
    if fmt == "h5":
        with _open_h5(path) as h5:
            raw_config = _h5_config(h5, path.name)
            config = _checked(raw_config, path.name)
            if "model_weights" not in h5:
                raise LabError(f"{path.name}: has a model_config but no model_weights group (not a full-model .h5)")
            arrays = _h5_weights(_child(h5, "model_weights", path.name), path.name)
            version = _text_attr(h5, "keras_version")
        return Source("h5", config, arrays, None, version, files)
    raw = read_bytes_bounded(path, MAX_JSON_BYTES, "architecture file")
    try:
        raw_config = json.loads(raw)
    except (ValueError, RecursionError):
        raise LabError(f"{path.name}: not valid JSON (an architecture .json is what model.to_json() writes)"
                       ) from None
    config = _checked(raw_config, path.name)
    with _open_h5(weights) as h5:
        if "model_weights" in h5:  # a full-model .h5 given as weights works too
            arrays = _h5_weights(_child(h5, "model_weights", weights.name), weights.name)
        else:
            arrays = _h5_weights(h5, weights.name)
    version = raw_config.get("keras_version") if isinstance(raw_config, dict) else None
    return Source("json+h5", config, arrays, None, str(version)[:20] if version else None, files)


def _existing_file(path, what: str) -> Path:
    text = str(path)
    if not text or "\0" in text or len(text) > 4096:
        raise LabError(f"{what}: give a file path of 1 to 4,096 characters")
    path = Path(text).expanduser()
    if not path.is_file():
        raise LabError(f"{path.name or path}: no such {what}" if not path.exists() else f"{path.name}: not a file")
    return path


def _check_size(path: Path, limit: int) -> None:
    size = path.stat().st_size
    if size == 0:
        raise LabError(f"{path.name}: the file is empty")
    if size > limit:
        raise LabError(f"{path.name}: {size:,} bytes, over the limit of {limit:,} for a {path.suffix} file")


def _fingerprint(path: Path, role: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"file": path.name, "role": role, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _checked(raw_config, label: str) -> dict:
    """The config as Keras 3 data, allow-listed and size-bounded, or a one-line refusal."""
    if not isinstance(raw_config, dict) or raw_config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise LabError(f"{label}: not a Keras model architecture (expected a Sequential or Functional model config)")
    try:
        keras_config.check_config(raw_config, label, "refusing to import")  # the file as written, first
        config = keras2.to_keras3(raw_config)
        keras_config.check_config(config, label, "refusing to import")
    except RecursionError:
        raise LabError(f"{label}: refusing to import: its config is nested too deeply") from None
    if problem := keras2.size_problem(config):
        raise LabError(f"{label}: refusing to import: {problem}")
    return config


def _open_h5(path: Path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError:
        raise LabError(f"{path.name}: not a readable HDF5 (.h5) file (truncated or not an .h5)") from None


def _text_attr(node, key: str) -> str | None:
    if key not in node.attrs:
        return None
    if node.attrs.get_id(key).get_storage_size() > MAX_JSON_BYTES:
        raise LabError(f"{getattr(node.file, 'filename', 'h5')}: the {key} attribute is over "
                       f"{MAX_JSON_BYTES:,} bytes")
    value = node.attrs[key]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _h5_config(h5, label: str):
    try:
        text = _text_attr(h5, "model_config")
    except (OSError, KeyError, TypeError):
        text = None
    if text is None:
        raise LabError(f"{label}: has no model_config (a weights-only .h5? give the architecture .json and pass "
                       "this file as --weights)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise LabError(f"{label}: its model_config is not valid JSON") from None


def _child(group, path: str, label: str):
    """group[path], following hard links only: an external or soft link would open another file or loop."""
    import h5py

    node = group
    for part in path.split("/"):
        link = node.get(part, getlink=True) if part else None
        if not isinstance(link, h5py.HardLink):
            raise LabError(f"{label}: {path[:80]} is missing or is a link to elsewhere")
        node = node[part]
    return node


def _names(node, key: str, label: str, limit: int) -> list[str]:
    if key not in node.attrs:
        raise LabError(f"{label}: no {key} attribute (not a Keras 2 weights layout)")
    values = node.attrs[key]
    if getattr(values, "size", 0) > limit:
        raise LabError(f"{label}: {key} lists {values.size:,} entries, over the limit of {limit:,}")
    names = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in np.ravel(values)]
    if not all(isinstance(n, str) and 0 < len(n) <= 256 for n in names):
        raise LabError(f"{label}: {key} holds something other than names")
    return names


def _h5_weights(group, label: str) -> dict[str, list[np.ndarray]]:
    """{layer name: arrays in the order Keras 2 listed them}, every dataset's size bounded before it is read."""
    import h5py

    arrays, total = {}, 0
    try:
        for layer in _names(group, "layer_names", label, MAX_LAYERS):
            layer_group = _child(group, layer, label)
            values = []
            for weight in _names(layer_group, "weight_names", label, MAX_LAYERS):
                dataset = _child(layer_group, weight, label)
                if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in FLOAT_KINDS:
                    raise LabError(f"{label}: {layer}/{weight} is not an array of floats")
                total += int(dataset.size)
                if total > MAX_WEIGHT_VALUES:
                    raise LabError(f"{label}: holds over {MAX_WEIGHT_VALUES:,} weights, the lab's limit")
                values.append(np.asarray(dataset[()], dtype=np.float32))
            arrays[layer] = values
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise LabError(f"{label}: the .h5 is damaged ({str(exc).splitlines()[0][:80] or type(exc).__name__})"
                       ) from None
    return arrays


def build(source: Source):
    """The foreign network as a Keras 3 model: from the checked config in safe mode, with the .h5's weights set
    by layer name and order; a .keras goes to Keras's safe loader after its config passed the same check."""
    import keras

    try:
        if source.keras_file is not None:
            return keras.saving.load_model(source.keras_file, compile=False, safe_mode=True)
        model = keras.saving.deserialize_keras_object(source.config, safe_mode=True)
    except LabError:
        raise
    except Exception as exc:  # Keras raises many types for a config it cannot build
        raise LabError(f"{source.files[0]['file']}: Keras cannot build this model ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:160]})") from None
    set_weights(model, source.weights, source.files[-1]["file"])
    return model


def set_weights(model, arrays: dict[str, list[np.ndarray]], label: str) -> None:
    """Each layer's weights from `arrays` by layer name and order, shapes checked; one line on any mismatch."""
    with_weights = [layer for layer in model.layers if layer.weights]
    names = {layer.name for layer in with_weights}
    extra = [n for n, values in arrays.items() if values and n not in names]
    if extra:
        raise LabError(f"{label}: has weights for layer {extra[0][:60]!r}, which the architecture does not have")
    for layer in with_weights:
        values = arrays.get(layer.name)
        if values is None:
            raise LabError(f"{label}: no weights for layer {layer.name!r}")
        wanted = [tuple(w.shape) for w in layer.weights]
        if [tuple(v.shape) for v in values] != wanted:
            raise LabError(f"{label}: layer {layer.name!r} weights have shapes "
                           f"{[tuple(v.shape) for v in values]}, the architecture needs {wanted}")
        layer.set_weights(values)
