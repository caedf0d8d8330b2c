"""Write a Keras model as .keras, ONNX or TFLite, and run the written file in that format's own runtime.

The checks read the exported file back the way a user's program would (Keras in safe mode, onnxruntime,
the LiteRT interpreter), never through the lab's model object, so a converter bug shows up as a parity failure.
Every runtime here takes float32 (N, 28, 28, 1) images and returns (N, 10) outputs.
"""

from __future__ import annotations

import os
import time
import warnings
from contextlib import contextmanager
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np

from mnist_core.errors import LabError

SUFFIXES = {"keras": ".keras", "onnx": ".onnx", "tflite": ".tflite"}
RUNTIME_NAMES = {"keras": "keras (safe_mode load, traced call)", "onnx": "onnxruntime (CPUExecutionProvider)",
                 "tflite": "LiteRT interpreter (ai_edge_litert)"}
PACKAGES = {"keras": ["tensorflow", "keras"], "onnx": ["tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"],
            "tflite": ["tensorflow", "keras", "ai-edge-litert"]}  # what writes and what runs each format
BUILDS = {"tensorflow": ("tensorflow-cpu", "tensorflow")}  # distributions that install the same module
CHECK_BATCH = 500  # images per runtime call in the parity check; a fixed batch keeps LiteRT's tensors allocated once
OPSET = 17  # onnxruntime 1.2x runs it everywhere; newer opsets add nothing an MNIST network uses


def package_versions(fmt: str) -> dict[str, str]:
    """Installed versions of the packages that write and run `fmt` (absent ones say so, never raise)."""
    return {package: installed_version(package) for package in PACKAGES[fmt]}


def installed_version(package: str) -> str:
    """The version of whichever distribution provides `package` (tensorflow: the lab's tensorflow-cpu, or the
    CUDA build someone installed instead), or "not installed"."""
    for distribution in BUILDS.get(package, (package,)):
        try:
            return package_metadata.version(distribution)
        except package_metadata.PackageNotFoundError:
            continue
    return "not installed"


def check_installed(fmt: str) -> None:
    """Refuse before any work when a package the format needs is missing, naming the requirements file."""
    missing = [p for p, v in package_versions(fmt).items() if v == "not installed"]
    if missing:
        raise LabError(f"exporting to {fmt} needs {', '.join(missing)}; install them with: "
                       ".venv/bin/python -m pip install -r requirements-export.txt")


@contextmanager
def quiet_native_output():
    """Silence fd 1 and 2 while converters run: TensorFlow's converter and tf2onnx print pages of C++ and
    Python chatter there, which would bury the CLI's one-line result. Failures still arrive as exceptions."""
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def write_converted(model, fmt: str, path: Path, label: str) -> None:
    """Convert `model` to onnx or tflite at `path` (which ends in the format's suffix) with Keras 3's exporter;
    `label` names the model in a failure."""
    model(np.zeros((1, 28, 28, 1), np.float32), training=False)  # the ONNX exporter refuses a never-called model
    try:
        with quiet_native_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras's numpy-2 patch of tf2onnx probes np.object
            if fmt == "onnx":
                model.export(str(path), format="onnx", verbose=False, opset_version=OPSET)
            else:
                model.export(str(path), format="litert", verbose=False)
    except Exception as exc:  # the converters raise many types; the user gets one line naming the model
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise LabError(f"{label}: the {fmt} converter failed ({type(exc).__name__}: {detail})") from None
    if not path.is_file() or path.stat().st_size == 0:
        raise LabError(f"{label}: the {fmt} converter wrote no file")


class KerasRuntime:
    """The written .keras file, loaded the safe way a user would load it."""

    def __init__(self, path: Path):
        import keras

        from mnist_core.predict import Predictor

        model = keras.saving.load_model(path, compile=False, safe_mode=True)
        self.input_name = model.inputs[0].name if model.inputs else "image"
        self._predictor = Predictor(model)

    def outputs(self, x: np.ndarray) -> np.ndarray:
        return self._predictor.probabilities(x)


class OnnxRuntime:
    def __init__(self, path: Path):
        import onnxruntime

        self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self._session.get_inputs()[0].name

    def outputs(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


class LiteRtRuntime:
    """One interpreter for single images (its native batch of 1) and one resized to CHECK_BATCH for the parity
    pass; a shorter last batch is padded, since resizing re-allocates every tensor."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        with quiet_native_output():  # allocating announces its CPU delegate on fd 2
            self._single = Interpreter(model_path=str(path))
            self._single.allocate_tensors()
            self._batched = Interpreter(model_path=str(path))
            detail = self._batched.get_input_details()[0]
            self.input_name = detail["name"]
            self._batched.resize_tensor_input(detail["index"], [CHECK_BATCH, 28, 28, 1])
            self._batched.allocate_tensors()

    @staticmethod
    def _run(interpreter, x: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    def outputs(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if len(x) == 1:
            return self._run(self._single, x)
        out = []
        for start in range(0, len(x), CHECK_BATCH):
            chunk = x[start:start + CHECK_BATCH]
            padded = np.concatenate([chunk, np.zeros((CHECK_BATCH - len(chunk), 28, 28, 1), np.float32)])
            out.append(self._run(self._batched, padded)[: len(chunk)].copy())
        return np.concatenate(out)


RUNTIMES = {"keras": KerasRuntime, "onnx": OnnxRuntime, "tflite": LiteRtRuntime}


def open_runtime(fmt: str, path: Path):
    """The exported file at `path` in its own runtime; a file the runtime refuses is a one-line LabError."""
    try:
        return RUNTIMES[fmt](path)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise LabError(f"{path.name}: {RUNTIME_NAMES[fmt]} cannot open the exported file "
                       f"({type(exc).__name__}: {detail})") from None


def outputs_in_batches(runtime, x: np.ndarray, progress=None) -> np.ndarray:
    """(N, 10) outputs for float32 (N, 28, 28, 1) images; `progress(fraction)` after each batch."""
    out = []
    for start in range(0, len(x), CHECK_BATCH):
        out.append(np.asarray(runtime.outputs(x[start:start + CHECK_BATCH]), dtype=np.float32))
        if progress:
            progress(min(1.0, (start + CHECK_BATCH) / len(x)))
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def single_image_ms(runtime, x: np.ndarray, calls: int) -> list[float]:
    """Milliseconds of each of `calls` single-image calls, cycling through `x`, after two untimed warm-up calls
    (the first call allocates and, for Keras, traces)."""
    for i in range(2):
        runtime.outputs(x[i % len(x)][None])
    times = []
    for i in range(calls):
        one = x[i % len(x)][None]
        t0 = time.perf_counter()
        runtime.outputs(one)
        times.append((time.perf_counter() - t0) * 1000)
    return times
