"""Exports checked by the tools a user would run them with: Keras in safe mode, onnxruntime and the LiteRT
interpreter, called here directly (never through mnist_core.interop), against the registry's own model file
loaded with Keras, on real MNIST test digits from the fixture."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pytest

from mnist_core import registry
from mnist_core.errors import LabError
from mnist_core.interop import export, runtimes

PARITY_IMAGES = 200  # the export's own check, kept small for speed (users get all 10,000)
CHECK_IMAGES = 300  # this file's independent check, on more images than the export saw
SUFFIX = {"keras": ".keras", "onnx": ".onnx", "tflite": ".tflite"}


def keras_reference(model_file, images_uint8: np.ndarray) -> np.ndarray:
    import keras

    model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    return np.asarray(model(images_uint8[..., None].astype(np.float32) / 255.0, training=False))


def run_exported(fmt: str, path, images_uint8: np.ndarray) -> np.ndarray:
    """The exported file's outputs in its own runtime, as a user following the input JSON would feed it."""
    x = images_uint8[..., None].astype(np.float32) / 255.0
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, list(x.shape))  # as the JSON's batch note says
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return keras_reference(path, images_uint8)


@pytest.fixture
def out_dir(tmp_path):
    """A folder of the user's own for exports, apart from the test's registry."""
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("fmt", ["keras", "onnx", "tflite"])
def test_an_export_predicts_what_the_registry_model_predicts_in_its_own_runtime(fmt, registry_with, out_dir,
                                                                                 small_mnist):
    folder = registry_with("tiny")
    out = out_dir / f"tiny{SUFFIX[fmt]}"
    steps = []
    result = export.export("tiny", fmt, out, parity_images=PARITY_IMAGES, latency_calls=5, mnist=small_mnist,
                           progress=lambda fraction, text: steps.append(fraction))

    images = small_mnist.x_test[:CHECK_IMAGES]
    lab = keras_reference(folder / "tiny" / "model.keras", images)
    exported = run_exported(fmt, out, images)
    assert exported.shape == (CHECK_IMAGES, 10)
    assert (exported.argmax(1) == lab.argmax(1)).all()
    assert np.abs(exported - lab).max() < 1e-4

    meta = registry.read_metadata("tiny")
    described = json.loads((out_dir / f"tiny{SUFFIX[fmt]}.input.json").read_text())
    assert described["format"] == fmt and described["file"] == out.name
    assert described["input"]["shape"] == [None, 28, 28, 1] and described["input"]["dtype"] == "float32"
    assert described["input"]["range"] == [0.0, 1.0] and "/ 255" in described["input"]["scaling"]
    assert described["source"]["lab_name"] == "tiny"
    assert described["source"]["model_sha256"] == meta["model_sha256"]
    assert described["file_sha256"] == sha256(out)
    assert described["lab"]["versions"]["keras"]
    parity = described["parity"]
    own = lab[:PARITY_IMAGES]
    assert parity["images"] == PARITY_IMAGES and parity["passed"] is True
    assert parity["same_digit"] == int((own.argmax(1) == exported[:PARITY_IMAGES].argmax(1)).sum())
    assert parity["max_abs_prob_diff"] == pytest.approx(np.abs(own - exported[:PARITY_IMAGES]).max(), abs=1e-5)
    labels = small_mnist.y_test[:PARITY_IMAGES]
    assert parity["exported_accuracy"] == pytest.approx((exported[:PARITY_IMAGES].argmax(1) == labels).mean())
    assert described["latency"]["calls"] == 5 and described["latency"]["median_ms"] > 0
    assert result["parity"] == parity and result["path"] == str(out)
    assert steps == sorted(steps) and steps[-1] == 1.0
    if fmt == "keras":  # the registry's file itself, byte for byte, and its metadata beside it
        assert sha256(out) == meta["model_sha256"]
        assert json.loads((out_dir / "tiny.keras.metadata.json").read_text()) == meta
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temp folder left behind


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_a_convolutional_model_keeps_its_layout_through_conversion(fmt, registry_with, out_dir, small_mnist):
    """The shipped default is a CNN: a converter that mixed up NHWC and NCHW would disagree here."""
    folder = registry_with(default=True)
    out = out_dir / f"default{SUFFIX[fmt]}"
    export.export("default", fmt, out, parity_images=100, latency_calls=3, mnist=small_mnist)
    images = small_mnist.x_test[:CHECK_IMAGES]
    lab = keras_reference(folder / "default" / "model.keras", images)
    exported = run_exported(fmt, out, images)
    assert (exported.argmax(1) == lab.argmax(1)).all()
    assert np.abs(exported - lab).max() < 1e-4
    assert (exported.argmax(1) == small_mnist.y_test[:CHECK_IMAGES]).mean() > 0.95


def test_a_parity_failure_is_reported_and_recorded(registry_with, out_dir, small_mnist, monkeypatch):
    """A runtime whose answers are shifted by one digit: the check must catch it, not wave it through."""
    registry_with("tiny")

    class OffByOne(runtimes.OnnxRuntime):
        def outputs(self, x):
            return np.roll(super().outputs(x), 1, axis=1)

    monkeypatch.setitem(runtimes.RUNTIMES, "onnx", OffByOne)
    out = out_dir / "tiny.onnx"
    result = export.export("tiny", "onnx", out, parity_images=100, latency_calls=2, mnist=small_mnist)
    assert result["parity"]["passed"] is False and result["parity"]["agreement"] < 0.5
    assert json.loads((out_dir / "tiny.onnx.input.json").read_text())["parity"]["passed"] is False


def test_an_existing_file_is_replaced_only_when_asked(registry_with, out_dir, small_mnist):
    registry_with("tiny")
    out = out_dir / "tiny.keras"
    out.write_bytes(b"the user's own file")
    with pytest.raises(LabError, match="already exists"):
        export.export("tiny", "keras", out, parity_images=10, latency_calls=1, mnist=small_mnist)
    assert out.read_bytes() == b"the user's own file"
    export.export("tiny", "keras", out, parity_images=10, latency_calls=1, mnist=small_mnist, overwrite=True)
    assert sha256(out) == registry.read_metadata("tiny")["model_sha256"]


def test_a_failed_conversion_leaves_nothing_behind(registry_with, out_dir, small_mnist, monkeypatch):
    registry_with("tiny")

    def broken(model, fmt, path, label):
        path.write_bytes(b"half a file")
        raise LabError(f"{label}: the {fmt} converter failed (RuntimeError: boom)")

    monkeypatch.setattr(runtimes, "write_converted", broken)
    with pytest.raises(LabError, match="tiny: the onnx converter failed"):
        export.export("tiny", "onnx", out_dir / "tiny.onnx", parity_images=10, latency_calls=1, mnist=small_mnist)
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("fmt", ["keras", "onnx"])
def test_an_ensemble_exports_as_its_averaging_model(fmt, registry_with, out_dir, small_mnist):
    from mnist_core import ensemble

    folder = registry_with("a", "b")
    ensemble.save(["a", "b"], "pair", mnist=small_mnist)
    out = out_dir / f"pair{SUFFIX[fmt]}"
    result = export.export("pair", fmt, out, parity_images=50, latency_calls=2, mnist=small_mnist)
    images = small_mnist.x_test[:100]
    average = (keras_reference(folder / "a" / "model.keras", images)
               + keras_reference(folder / "b" / "model.keras", images)) / 2
    assert np.abs(run_exported(fmt, out, images) - average).max() < 1e-4
    assert result["source"]["kind"] == "ensemble"
    assert result["source"]["model_sha256"] == registry.read_metadata("pair")["model_sha256"]


def test_an_ensemble_with_a_changed_member_is_refused(registry_with, out_dir, small_mnist):
    from mnist_core import ensemble

    folder = registry_with("a", "b")
    ensemble.save(["a", "b"], "pair", mnist=small_mnist)
    with open(folder / "b" / "model.keras", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(LabError, match="cannot export 'pair': member 'b'"):
        export.export("pair", "onnx", out_dir / "pair.onnx", mnist=small_mnist)
    assert os.listdir(out_dir) == []


def test_keras_bundle_holds_the_registry_file_its_metadata_and_the_input_description(registry_with, small_mnist):
    folder = registry_with("tiny")
    with zipfile.ZipFile(io.BytesIO(export.keras_bundle("tiny"))) as zf:
        assert sorted(zf.namelist()) == ["input.json", "metadata.json", "model.keras"]
        model_bytes = zf.read("model.keras")
        meta = json.loads(zf.read("metadata.json"))
        described = json.loads(zf.read("input.json"))
    assert model_bytes == (folder / "tiny" / "model.keras").read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == meta["model_sha256"] == described["source"]["model_sha256"]
    assert described["input"]["shape"] == [None, 28, 28, 1] and described["format"] == "keras"


def test_keras_bundle_refuses_a_model_changed_outside_the_lab(registry_with):
    folder = registry_with("tiny")
    with open(folder / "tiny" / "model.keras", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(LabError, match="cannot export 'tiny'.*modified outside the lab"):
        export.keras_bundle("tiny")


def test_export_to_bytes_gives_a_runnable_file_and_its_checks(registry_with, small_mnist, tmp_path):
    folder = registry_with("tiny")
    raw, result = export.export_to_bytes("tiny", "tflite", parity_images=50, latency_calls=2, mnist=small_mnist)
    assert hashlib.sha256(raw).hexdigest() == result["file_sha256"] and result["parity"]["passed"] is True
    path = tmp_path / "downloaded.tflite"
    path.write_bytes(raw)
    images = small_mnist.x_test[:100]
    lab = keras_reference(folder / "tiny" / "model.keras", images)
    assert (run_exported("tflite", path, images).argmax(1) == lab.argmax(1)).all()


def test_tensorflow_counts_as_installed_from_either_build():
    """The lab installs tensorflow-cpu; someone's CUDA build ("tensorflow") provides the same module."""
    import tensorflow as tf

    assert runtimes.installed_version("tensorflow") == tf.__version__
    assert runtimes.package_versions("keras")["tensorflow"] == tf.__version__
    assert runtimes.installed_version("no-such-package-here") == "not installed"
