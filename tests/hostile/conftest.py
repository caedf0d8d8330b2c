"""Fixtures for the hostile-input suite (issue 5). Helpers live in hostile_util.py."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from hostile_util import SHIPPED_DEFAULT, png_bytes
from PIL import Image


@pytest.fixture(scope="session")
def default_predictor(tmp_path_factory):
    """The shipped default model (fast-cnn, 99.31%), loaded from a private copy."""
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
