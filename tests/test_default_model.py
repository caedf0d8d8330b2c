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


# The old fast-cnn default on the robustness view's ladders (benchmarks/results/robustness.json,
# default@703b1c9089c5): issue 13 wants the retrained default to do at least as well there, measured here by
# code of its own on the full test set (occlusion) or 2,000 test images (the attacks). The robust-cnn default
# before adversarial training and blanked squares did not (about 69%, 68% and 21% here).
OLD_DEFAULT = {"occlusion 8 px": 0.7985, "fgsm 0.1": 0.82, "pgd 0.1": 0.66}


def test_full_test_set_with_an_8_pixel_square_blanked_on_the_ink(default_model, full_mnist):
    rng = np.random.default_rng(2)
    covered = full_mnist.x_test.copy()
    for image in covered:
        rows, cols = np.nonzero(image >= 128)
        pick = rng.integers(len(rows))
        top, left = (int(np.clip(v - 4, 0, 20)) for v in (rows[pick], cols[pick]))
        image[top : top + 8, left : left + 8] = 0
    assert (covered != full_mnist.x_test).any(axis=(1, 2)).all()
    assert accuracy(default_model, data.normalise(covered)[..., 0], full_mnist.y_test) >= OLD_DEFAULT["occlusion 8 px"]


def attacked(model, x: np.ndarray, labels: np.ndarray, eps: float, steps: int) -> np.ndarray:
    """Sign-gradient ascent on the cross-entropy from the clean image, `steps` steps of eps / steps * 1.25 (one
    step of eps for FGSM), each projected to the eps-ball and [0, 1]."""
    import tensorflow as tf

    step = eps if steps == 1 else 1.25 * eps / steps
    adversarial = tf.constant(x)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(adversarial)
            loss = tf.keras.losses.sparse_categorical_crossentropy(labels, model(adversarial, training=False))
        moved = adversarial + step * tf.sign(tape.gradient(loss, adversarial))
        adversarial = tf.clip_by_value(tf.clip_by_value(moved, x - eps, x + eps), 0.0, 1.0)
    assert float(tf.reduce_max(tf.abs(adversarial - x))) <= eps + 1e-6
    return adversarial.numpy()


@pytest.mark.parametrize(("attack", "steps"), [("fgsm 0.1", 1), ("pgd 0.1", 8)])
def test_2000_test_images_attacked_at_eps_0_1(default_model, full_mnist, attack, steps):
    pick = np.sort(np.random.default_rng(3).choice(len(full_mnist.x_test), 2000, replace=False))
    x, y = data.normalise(full_mnist.x_test[pick]), full_mnist.y_test[pick].astype(np.int32)
    images = np.concatenate([attacked(default_model, x[i : i + 500], y[i : i + 500], 0.1, steps)
                             for i in range(0, len(x), 500)])
    assert accuracy(default_model, images[..., 0], y) >= OLD_DEFAULT[attack]
