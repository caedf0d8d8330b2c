"""Take a saved model out of the lab: .keras, ONNX or TFLite, with a JSON beside it saying what input it expects.

Every export is checked where it will run: the written file is read back by its own runtime (Keras in safe mode,
onnxruntime, the LiteRT interpreter) and must predict the same digit as the lab's model on at least 99.9% of
the test images; the largest probability difference and the single-image latency there are recorded too.

Files land atomically: the export is written and checked in a hidden temp folder beside the target, then moved
into place, so an interrupted or failed export leaves nothing half-written. An existing file is replaced only
with `overwrite=True`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from mnist_core import registry
from mnist_core.errors import LabError
from mnist_core.fsutil import read_bytes_bounded, write_json_atomic
from mnist_core.interop import runtimes
from mnist_core.keras_config import MAX_ARCHIVE_FILE_BYTES

FORMATS = tuple(runtimes.SUFFIXES)
INPUT_JSON_SUFFIX = ".input.json"  # <out>.input.json: the input the exported model expects, parity, latency
METADATA_JSON_SUFFIX = ".metadata.json"  # <out>.metadata.json (keras only): the registry's metadata.json
MIN_AGREEMENT = 0.999  # issue 14: identical predicted digits on at least 99.9% of the test images
TEST_IMAGES = 10_000
DEFAULT_LATENCY_CALLS = 200
MAX_LATENCY_CALLS = 5_000
MAX_PATH_CHARS = 4_096  # PATH_MAX on Linux
PROBABILITY_TOLERANCE = 1e-3  # rows summing to 1 within this (and never negative) are probabilities

INPUT = {
    "shape": [None, 28, 28, 1],
    "dtype": "float32",
    "layout": "NHWC: batch, 28 rows top to bottom, 28 columns left to right, 1 grayscale channel",
    "scaling": "pixel / 255: uint8 0..255 becomes float32 0.0..1.0",
    "range": [0.0, 1.0],
    "digit": "MNIST style: light ink (1.0) on a dark background (0.0), the digit fitted in a 20x20 box and "
             "centred by its centre of mass in the 28x28 image",
}
BATCH_NOTES = {
    "keras": "any batch size",
    "onnx": "any batch size (the first dimension is dynamic)",
    "tflite": "the interpreter starts at batch 1; call resize_tensor_input(index, [N, 28, 28, 1]) and "
              "allocate_tensors() for N images at once",
}


def _progress_or_silent(progress):
    return progress or (lambda fraction, text: None)


def out_files(out: Path, fmt: str) -> list[Path]:
    """Every file an export to `out` writes: the model file, its input JSON and, for keras, the metadata."""
    extra = [Path(str(out) + METADATA_JSON_SUFFIX)] if fmt == "keras" else []
    return [out, Path(str(out) + INPUT_JSON_SUFFIX), *extra]


def check_request(name: str, fmt: str, out_path, *, overwrite: bool = False, parity_images: int = TEST_IMAGES,
                  latency_calls: int = DEFAULT_LATENCY_CALLS) -> tuple[registry.Entry, Path]:
    """Every check that needs no TensorFlow, made before any work: (the usable registry entry, the out path).

    Refused in one line each: an unknown format, a name with no usable model, an out path of the wrong suffix,
    in a missing or unwritable folder, naming a folder, or already taken without `overwrite`, bounds on the
    image and call counts, and a missing export package.
    """
    if fmt not in FORMATS:
        raise LabError(f"unknown export format {str(fmt)[:40]!r}; use one of: {', '.join(FORMATS)}")
    entry = usable_entry(name)
    if not 1 <= int(parity_images) <= TEST_IMAGES:
        raise LabError(f"parity images must be 1 to {TEST_IMAGES:,}, got {parity_images}")
    if not 1 <= int(latency_calls) <= MAX_LATENCY_CALLS:
        raise LabError(f"latency calls must be 1 to {MAX_LATENCY_CALLS:,}, got {latency_calls}")
    out = _check_out_path(out_path, fmt, overwrite)
    runtimes.check_installed(fmt)
    return entry, out


def _check_out_path(out_path, fmt: str, overwrite: bool) -> Path:
    text = str(out_path)
    if not text or len(text) > MAX_PATH_CHARS or "\0" in text:
        raise LabError(f"out path: give a file path of 1 to {MAX_PATH_CHARS:,} characters")
    out = Path(text).expanduser()
    suffix = runtimes.SUFFIXES[fmt]
    if out.suffix.lower() != suffix:
        raise LabError(f"{out.name}: an export to {fmt} is written to a file ending in {suffix}")
    folder = out.parent.resolve()
    if not folder.is_dir():
        raise LabError(f"{out}: {folder} is not an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LabError(f"{out}: the folder {folder} is not writable")
    for path in out_files(out, fmt):
        if path.is_dir():
            raise LabError(f"{path}: is a folder; give a file path")
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise LabError(f"{path}: already exists; pass --overwrite (overwrite=True) to replace it")
    return out


def export(name: str, fmt: str, out_path, *, overwrite: bool = False, parity_images: int = TEST_IMAGES,
           latency_calls: int = DEFAULT_LATENCY_CALLS, mnist=None, progress=None) -> dict:
    """Write saved model `name` as `fmt` (keras | onnx | tflite) at `out_path`, check it in its own runtime on
    the first `parity_images` test images, time `latency_calls` single-image calls there, and write
    `<out>.input.json` (plus `<out>.metadata.json` for keras). Returns what the input JSON holds, plus the paths.

    `progress(fraction, text)` follows the stages. A parity below MIN_AGREEMENT is reported
    (result["parity"]["passed"] is False), not raised: the files are written so they can be examined.
    """
    from mnist_core import data
    from mnist_core.tf_quiet import import_tensorflow

    entry, out = check_request(name, fmt, out_path, overwrite=overwrite, parity_images=parity_images,
                               latency_calls=latency_calls)
    report = _progress_or_silent(progress)
    mnist = mnist or data.load()
    images, labels = mnist.x_test[:parity_images], mnist.y_test[:parity_images]
    import_tensorflow()
    report(0.0, f"Loading {name}...")
    model = registry.load(name)  # the registry's safe loader; an ensemble loads as one averaging Keras model
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".mnist-export-") as tmp:
        staged = Path(tmp) / f"model{runtimes.SUFFIXES[fmt]}"
        report(0.05, f"Writing {fmt}...")
        _write(model, entry, fmt, staged)
        report(0.3, f"Checking the {fmt} file in {runtimes.RUNTIME_NAMES[fmt]}...")
        runtime = runtimes.open_runtime(fmt, staged)
        result = describe(entry, fmt, out.name, runtime.input_name)
        result["parity"] = _parity(model, runtime, images, labels, report)
        if not result["parity"]["output_is_probabilities"]:  # e.g. an imported model that ends in logits
            result["output"]["meaning"] = "scores over the digits 0-9 (index i is digit i), not probabilities"
        report(0.8, f"Timing {latency_calls} single-image calls...")
        result["latency"] = _latency(runtime, fmt, images, latency_calls)
        result["file_bytes"] = staged.stat().st_size
        result["file_sha256"] = registry.file_sha256(staged)
        written = out_files(out, fmt)
        os.replace(staged, out)  # the model file first: its JSON never describes a file that is not there
        write_json_atomic(written[1], result)
        if fmt == "keras":
            write_json_atomic(written[2], entry.metadata)
    report(1.0, "Exported.")
    return dict(result, path=str(out), input_json=str(written[1]),
                metadata_json=str(written[2]) if fmt == "keras" else None)


def _write(model, entry: registry.Entry, fmt: str, path: Path) -> None:
    if fmt != "keras":
        runtimes.write_converted(model, fmt, path, entry.name)
    elif entry.metadata.get("kind") == registry.ENSEMBLE_KIND:
        model.save(path)  # an ensemble keeps no model file: its averaging model is the export
    else:
        path.write_bytes(_registry_model_bytes(entry))


def _registry_model_bytes(entry: registry.Entry) -> bytes:
    """The registry's model.keras as it was checked: bounded, and its bytes must hash to the recorded sha256."""
    raw = read_bytes_bounded(registry.model_path(entry.name) / registry.MODEL_FILE, MAX_ARCHIVE_FILE_BYTES,
                             "model file")
    if hashlib.sha256(raw).hexdigest() != entry.metadata.get("model_sha256"):
        raise LabError(f"cannot export {entry.name!r}: model.keras changed while it was being exported")
    return raw


def _parity(model, runtime, images: np.ndarray, labels: np.ndarray, report) -> dict:
    """The lab's model and the exported file on the same images: reported from 0.3 to 0.8 of the export."""
    from mnist_core import data, evaluate

    count, step = len(images), runtimes.CHECK_BATCH
    reference = []
    for start in range(0, count, step):
        report(0.3 + 0.25 * start / count, f"The lab's model on {count:,} test images...")
        reference.append(evaluate.probabilities(model, images[start:start + step]))
    reference = np.concatenate(reference)
    exported = runtimes.outputs_in_batches(runtime, data.normalise(images), lambda f: report(
        0.55 + 0.25 * f, f"The exported file on {count:,} test images..."))
    same = reference.argmax(1) == exported.argmax(1)
    agreement = float(same.mean())
    return {
        "images": int(len(images)),
        "same_digit": int(same.sum()),
        "agreement": agreement,
        "min_agreement": MIN_AGREEMENT,
        "passed": agreement >= MIN_AGREEMENT,
        "max_abs_prob_diff": float(np.abs(reference - exported).max()),
        "lab_accuracy": float((reference.argmax(1) == labels).mean()),
        "exported_accuracy": float((exported.argmax(1) == labels).mean()),
        "output_is_probabilities": bool((exported >= 0).all()
                                        and np.allclose(exported.sum(1), 1.0, atol=PROBABILITY_TOLERANCE)),
    }


def _latency(runtime, fmt: str, images: np.ndarray, calls: int) -> dict:
    from mnist_core import data

    times = runtimes.single_image_ms(runtime, data.normalise(images[:100]), calls)
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "calls": int(calls), "runtime": runtimes.RUNTIME_NAMES[fmt]}


def describe(entry: registry.Entry, fmt: str, file_name: str, input_name: str = "image") -> dict:
    """What the exported model expects and where it came from: the heart of <out>.input.json."""
    meta = entry.metadata
    return {
        "format": fmt,
        "file": file_name,
        "input": dict(INPUT, name=input_name, batch=BATCH_NOTES[fmt]),
        "output": {"shape": [None, 10], "dtype": "float32",
                   "meaning": "probabilities over the digits 0-9 (index i is digit i; each row sums to 1)"},
        "source": {
            "lab_name": entry.name,
            "kind": "ensemble" if meta.get("kind") == registry.ENSEMBLE_KIND else "model",
            "model_sha256": meta.get("model_sha256"),
            "test_accuracy": meta.get("test", {}).get("accuracy"),
            "created": meta.get("created"),
            "trained_with": meta.get("versions"),
        },
        "lab": {"exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "versions": runtimes.package_versions(fmt) | {"numpy": np.__version__}},
    }


def usable_entry(name: str) -> registry.Entry:
    """The registry entry to export, or a one-line LabError: a bad name, no such model, or one that cannot load."""
    registry.check_name(name)
    if not registry.exists(name):
        raise LabError(f"no model named {name!r}")
    entry = registry.inspect(name)
    if not entry.ok:
        raise LabError(f"cannot export {name!r}: {entry.reason or entry.status}")
    return entry


def keras_bundle(name: str) -> bytes:
    """A zip of the model as `model.keras`, its `metadata.json` and `input.json` (describe(), no parity run),
    for a download button. An ensemble's model.keras is its averaging model, saved on the fly."""
    entry = usable_entry(name)
    if entry.metadata.get("kind") == registry.ENSEMBLE_KIND:
        with tempfile.TemporaryDirectory(prefix="mnist-bundle-") as tmp:
            path = Path(tmp) / registry.MODEL_FILE
            registry.load(name).save(path)
            model_bytes = path.read_bytes()
    else:
        model_bytes = _registry_model_bytes(entry)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(registry.MODEL_FILE, model_bytes)
        zf.writestr(registry.METADATA_FILE, json.dumps(entry.metadata, indent=1))
        zf.writestr("input.json", json.dumps(describe(entry, "keras", registry.MODEL_FILE), indent=1))
    return buffer.getvalue()


def export_to_bytes(name: str, fmt: str, *, parity_images: int = TEST_IMAGES,
                    latency_calls: int = DEFAULT_LATENCY_CALLS, mnist=None, progress=None) -> tuple[bytes, dict]:
    """(the exported file's bytes, the result `export` returns) via a private temp folder: for a download button
    that also shows the parity and latency. The result's paths point into that folder, which is gone."""
    with tempfile.TemporaryDirectory(prefix="mnist-export-") as tmp:
        out = Path(tmp) / f"{name}{runtimes.SUFFIXES.get(fmt, '')}"
        result = export(name, fmt, out, parity_images=parity_images, latency_calls=latency_calls, mnist=mnist,
                        progress=progress)
        return out.read_bytes(), result
