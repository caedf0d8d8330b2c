"""Issue 13: the shipped default reads what people write. Checked on the full test set with scipy's own
shift and rotation (not the lab's perturbation code), and on digits drawn with Pillow the way the Draw canvas
gives them (small in a corner, thick, thin, slanted), through the Draw page's preprocessing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_core import data, preprocess
from tests.conftest import SHIPPED_MODELS


@pytest.fixture(scope="module")
def default_model():
    import keras

    return keras.saving.load_model(SHIPPED_MODELS / "default" / "model.keras", safe_mode=True)


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    x = np.asarray(images, np.float32)[..., None]
    predicted = np.concatenate([np.asarray(model(x[i : i + 1000], training=False)).argmax(1)
                                for i in range(0, len(x), 1000)])
    return float((predicted == labels).mean())


def test_full_test_set_shifted_3_pixels_in_a_random_direction(default_model, full_mnist):
    x, y = data.normalise(full_mnist.x_test)[..., 0], full_mnist.y_test
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, len(x))
    shifted = np.stack([ndimage.shift(img, (3 * math.sin(a), 3 * math.cos(a)), order=1, mode="constant")
                        for img, a in zip(x, angles, strict=True)])
    assert accuracy(default_model, shifted, y) >= 0.97


def test_full_test_set_turned_20_degrees_either_way(default_model, full_mnist):
    x, y = data.normalise(full_mnist.x_test)[..., 0], full_mnist.y_test
    signs = np.random.default_rng(1).choice([-1, 1], len(x))
    turned = np.stack([ndimage.rotate(img, 20 * s, reshape=False, order=1, mode="constant")
                       for img, s in zip(x, signs, strict=True)])
    assert accuracy(default_model, turned, y) >= 0.97


def _arc(cx, cy, rx, ry, start=0, end=360, n=30):
    return [(cx + rx * math.cos(math.radians(t)), cy + ry * math.sin(math.radians(t))) for t in np.linspace(start, end, n)]


# One plain way to write each digit, as strokes in a unit square (x right, y down).
STROKES = {
    0: [_arc(0.5, 0.5, 0.25, 0.4)],
    1: [[(0.42, 0.22), (0.55, 0.1), (0.55, 0.9)]],
    2: [[(0.25, 0.3), (0.35, 0.15), (0.55, 0.1), (0.72, 0.2), (0.72, 0.38), (0.25, 0.9), (0.78, 0.9)]],
    3: [[(0.25, 0.15), (0.7, 0.15), (0.45, 0.45), (0.7, 0.6), (0.7, 0.8), (0.5, 0.92), (0.25, 0.85)]],
    4: [[(0.6, 0.9), (0.6, 0.1), (0.2, 0.65), (0.8, 0.65)]],
    5: [[(0.75, 0.1), (0.3, 0.1), (0.27, 0.45), (0.55, 0.4), (0.72, 0.55), (0.72, 0.78), (0.5, 0.92), (0.25, 0.85)]],
    6: [[(0.7, 0.1), (0.4, 0.35), (0.28, 0.65), (0.35, 0.88), (0.55, 0.92), (0.72, 0.75), (0.6, 0.55), (0.4, 0.55),
         (0.3, 0.68)]],
    7: [[(0.2, 0.1), (0.8, 0.1), (0.4, 0.9)]],
    8: [_arc(0.5, 0.28, 0.18, 0.18, 90, 450), _arc(0.5, 0.7, 0.22, 0.22, -90, 270)],
    9: [_arc(0.5, 0.3, 0.2, 0.2), [(0.7, 0.3), (0.65, 0.9)]],
}
STYLES = {  # a 280x280 canvas, like the Draw page's
    "normal": {},
    "small in the top-left corner": dict(size=50, width=6, left=5, top=5),
    "small in the bottom-right corner": dict(size=60, width=8, left=210, top=205),
    "thick": dict(width=42),
    "thin": dict(width=4),
    "slanted right": dict(slant=0.35),
    "slanted left": dict(slant=-0.3),
}


def drawing(digit: int, *, size=200, width=18, left=40, top=40, slant=0.0) -> np.ndarray:
    """Dark ink on a white 280x280 canvas, with round pen ends."""
    canvas = Image.new("L", (280, 280), 255)
    pen = ImageDraw.Draw(canvas)
    for stroke in STROKES[digit]:
        points = [(left + (x + slant * (0.5 - y)) * size, top + y * size) for x, y in stroke]
        pen.line(points, fill=0, width=width, joint="curve")
        for px, py in (points[0], points[-1]):
            pen.ellipse([px - width / 2, py - width / 2, px + width / 2, py + width / 2], fill=0)
    return np.asarray(canvas)


@pytest.mark.parametrize("style", list(STYLES))
def test_drawn_digits_are_read_in_every_style(default_model, style):
    inputs = np.stack([preprocess.to_mnist(drawing(d, **STYLES[style])).input for d in range(10)])
    assert inputs.shape == (10, 28, 28)
    predicted = np.asarray(default_model(inputs[..., None], training=False)).argmax(1)
    assert predicted.tolist() == list(range(10)), style
