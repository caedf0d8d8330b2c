"""Fixtures for the hostile-input suite (issue 5). Helpers live in hostile_util.py."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from hostile_util import SHIPPED_DEFAULT, layers_of, png_bytes, rewrite_config
from PIL import Image


@pytest.fixture(scope="session")
def default_predictor(tmp_path_factory):
    """The shipped default model (saved_models/default), loaded from a private copy."""
    from mnist_core.predict import Predictor

    folder = tmp_path_factory.mktemp("default_registry")
    shutil.copytree(SHIPPED_DEFAULT, folder / "default")
    old = os.environ.get("MNIST_MODELS_DIR")
    os.environ["MNIST_MODELS_DIR"] = str(folder)
    try:
        return Predictor.load("default")
    finally:
        if old is None:
            os.environ.pop("MNIST_MODELS_DIR", None)
        else:
            os.environ["MNIST_MODELS_DIR"] = old


@pytest.fixture(scope="session")
def digit(small_mnist) -> tuple[np.ndarray, int]:
    """A real MNIST test digit scaled up to 112x112 like a scan (uint8, ink bright), and its label."""
    index = 7
    img = Image.fromarray(small_mnist.x_test[index]).resize((112, 112), Image.Resampling.BICUBIC)
    return np.asarray(img), int(small_mnist.y_test[index])


@pytest.fixture(scope="session")
def digit_png(digit) -> bytes:
    """The digit as a black-on-white RGB PNG, as a phone scan would be."""
    ink = digit[0]
    return png_bytes(Image.fromarray(255 - ink).convert("RGB"))


# ---------- crafted archives (built once per session) ----------


@pytest.fixture(scope="session")
def payloads(tmp_path_factory, tiny_trained):
    """Crafted .keras files whose code, if it ever ran, would create a marker file.

    lambda:  a Lambda layer holding marshalled bytecode, written by Keras itself (saving needs no unsafe mode)
    module:  the tiny model with its activation pointing at a function of a module of ours, whose import
             alone creates the marker (put on sys.path / PYTHONPATH by the tests)
    os.system, builtins.exec, keras.utils.get_file: other functions a config can name
    """
    import keras

    root = tmp_path_factory.mktemp("payloads")
    marker = root / "MARKER"
    fn = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # noqa: S307 - the payload under test
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Lambda(fn)(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(root / "lambda.keras")
    marker.unlink()  # building the graph called the lambda once; from here on it must never run

    pkg = root / "pkg"
    pkg.mkdir()
    (pkg / "hx_payload.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef run(*args, **kwargs):\n    open({str(marker)!r}, 'w').close()\n")

    def activation(module: str, fn_name: str):
        def change(config):
            for layer in layers_of(config):
                if layer["class_name"] == "Dense":
                    layer["config"]["activation"] = {"module": module, "class_name": "function", "config": fn_name,
                                                     "registered_name": fn_name}
            return config
        return change

    files = {"lambda": root / "lambda.keras"}
    for key, (module, fn_name) in {"module": ("hx_payload", "run"), "os.system": ("os", "system"),
                                   "builtins.exec": ("builtins", "exec"),
                                   "keras.utils.get_file": ("keras.utils", "get_file")}.items():
        files[key] = root / f"{key}.keras"
        rewrite_config(tiny_trained / "model.keras", files[key], activation(module, fn_name))
    return {"files": files, "marker": marker, "pythonpath": pkg}


@pytest.fixture
def marker(payloads, monkeypatch):
    monkeypatch.syspath_prepend(str(payloads["pythonpath"]))
    payloads["marker"].unlink(missing_ok=True)
    yield payloads["marker"]
    assert not payloads["marker"].exists(), "the crafted model's code ran"
