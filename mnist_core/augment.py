"""Training-time augmentation: the one place that defines what TrainConfig.augment does.

Levels (the values TrainConfig.augment accepts):
  false         none
  true          "light": small random rotations (up to about 14 degrees) and shifts (up to 8%), the
                lab's original setting; the best-cnn preset was measured with it
  "real-input"  what people's drawings and other writers do to a digit: per image a random rotation
                (up to 22 degrees), scale (0.7-1.2), slant (shear up to 0.3), shift (up to 4 pixels) and
                elastic distortion, strokes made thinner or thicker, sometimes a square of the ink blanked
                out (a gap in the pen's trace, a finger over a photo), and sometimes blur or noise. Before
                any of that, a share of the training 1s get the flag at the top that many writers outside
                the US give a 1 (with_flagged_ones): MNIST's 1s are nearly all plain strokes, so without it a
                drawn flagged 1 reads as a 7

Everything runs as TensorFlow ops on a float batch (N, 28, 28, 1) in [0, 1] inside the tf.data pipeline,
so it costs a few milliseconds per batch: the geometric steps are one resampling (one combined inverse
map per image, sampled bilinearly), thickness is a 2x2/3x3 grey dilation or erosion (max-pool).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from mnist_core.spec import AUGMENT_LEVELS as LEVELS
from mnist_core.spec import REAL_INPUT

MAX_ROTATION_DEGREES = 22.0
SCALE_RANGE = (0.7, 1.2)  # drawn log-uniformly: as many digits shrunk by x as grown by 1/x
MAX_SHEAR = 0.3
MAX_SHIFT_PIXELS = 4.0
ELASTIC_PIXELS = 1.0  # standard deviation of the coarse displacement field, before smoothing
ELASTIC_GRID = 4  # the field is drawn on a 4x4 grid and upsampled: smooth, like a hand's wobble
# Stroke width per image: eroded by 2x2, unchanged, dilated by 2x2, dilated by 3x3.
THICKNESS_PROBABILITIES = (0.2, 0.4, 0.25, 0.15)
BLUR_PROBABILITY = 0.15
# Blanking and flags both cost clean accuracy (a blanked 9 looks like a 4, a long flat flag like a 7's bar):
# at 25%, up to 10 px, and flags of 15-55 degrees and 20-40% on 35% of the 1s, a candidate default lost 0.3
# points on the test set, with 4->9, 1->2 and 7->1 its new errors.
BLANK_PROBABILITY = 0.15
BLANK_SIZES = (6, 9)  # the blanked square's side in pixels, drawn uniformly from this range
FLAGGED_ONES_SHARE = 0.3  # of the training 1s
FLAG_LENGTH = (0.15, 0.3)  # of the 1's height
FLAG_DEGREES = (30.0, 60.0)  # below the horizontal, pointing left (down-left from the top of the stroke)
BASE_WIDTH = 2.5  # a 1 whose bottom is this many stroke widths wide has a base: with a flag it reads as a 2
NOISE_PROBABILITY = 0.2
MAX_NOISE_SD = 0.3
SIZE = 28


def check_level(value) -> None:
    """Raise ValueError unless `value` is one of LEVELS (bools compared as bools, not as 0 and 1)."""
    if not (isinstance(value, bool) or (isinstance(value, str) and value in LEVELS)):
        raise ValueError(f"augment must be false, true or {REAL_INPUT!r}, got {value!r}")


def make_augmenter(level, seed: int):
    """A function batch -> augmented batch for `level` (see LEVELS), or None for no augmentation."""
    check_level(level)
    if level is False:
        return None
    if level is True:
        import keras

        light = keras.Sequential([
            keras.layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
            keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 1),
        ])
        return lambda images: light(images, training=True)
    generator = tf.random.Generator.from_seed(seed)
    return lambda images: real_input(images, generator)


def real_input(images: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
    """The "real-input" level on a float32 batch (N, 28, 28, 1) in [0, 1]; same shape, dtype and range."""
    images = tf.convert_to_tensor(images, tf.float32)
    images = change_thickness(images, _categorical(generator, THICKNESS_PROBABILITIES, tf.shape(images)[0]) - 1)
    images = warp(images, random_source_coordinates(generator, tf.shape(images)[0]))
    images = _sometimes(generator, BLANK_PROBABILITY, blank_square(images, generator), images)
    images = _sometimes(generator, BLUR_PROBABILITY, blur(images), images)
    noise = generator.normal(tf.shape(images)) * generator.uniform([tf.shape(images)[0], 1, 1, 1], 0, MAX_NOISE_SD)
    images = _sometimes(generator, NOISE_PROBABILITY, images + noise, images)
    return tf.clip_by_value(images, 0.0, 1.0)


def change_thickness(images: tf.Tensor, steps: tf.Tensor) -> tf.Tensor:
    """Per image: steps -1 erodes strokes by a 2x2 minimum, 0 keeps them, 1 and 2 dilate by a 2x2 or 3x3 maximum."""
    def grow(x, size):
        return tf.nn.max_pool2d(x, size, 1, "SAME")

    options = tf.stack([-grow(-images, 2), images, grow(images, 2), grow(images, 3)])  # (4, N, 28, 28, 1)
    pick = tf.clip_by_value(tf.cast(steps, tf.int32) + 1, 0, 3)
    return tf.gather(tf.transpose(options, [1, 0, 2, 3, 4]), pick, batch_dims=1)


def blank_square(images: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
    """Every image with one square (side drawn from BLANK_SIZES) set to background, centred on a random pixel
    of its ink (a pixel above half the image's brightest), so the square always removes part of the digit."""
    n = tf.shape(images)[0]
    flat = tf.reshape(images, [n, SIZE * SIZE])
    ink = flat > 0.5 * tf.reduce_max(flat, axis=1, keepdims=True)
    # A uniform draw over the ink pixels: the largest random key among them.
    keys = tf.where(ink, generator.uniform([n, SIZE * SIZE], 0.1, 1.0), 0.0)
    centre = tf.argmax(keys, axis=1, output_type=tf.int32)
    row, col = centre // SIZE, centre % SIZE
    side = generator.uniform([n], BLANK_SIZES[0], BLANK_SIZES[1] + 1, dtype=tf.int32)
    top, left = row - side // 2, col - side // 2
    index = tf.range(SIZE)[None]
    in_rows = (index >= top[:, None]) & (index < (top + side)[:, None])  # (n, 28)
    in_cols = (index >= left[:, None]) & (index < (left + side)[:, None])
    square = in_rows[:, :, None] & in_cols[:, None, :]
    return tf.where(square[..., None], 0.0, images)


def with_flagged_ones(images: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """A copy of uint8 images (N, 28, 28) in which FLAGGED_ONES_SHARE of the 1s (picked by `seed`) carry a
    flag: a stroke of the 1's own width from the top of the 1, down and to the left, drawn anti-aliased.
    1s that lean left, or stand on a base, are left as they are."""
    rng = np.random.default_rng(seed)
    out = np.array(images, np.uint8, copy=True)
    ones = np.flatnonzero(np.asarray(labels) == 1)
    for i in ones[rng.random(len(ones)) < FLAGGED_ONES_SHARE]:
        out[i] = np.maximum(out[i], _flag(out[i], rng))
    return out


def _flag(image: np.ndarray, rng: np.random.Generator, upscale: int = 4) -> np.ndarray:
    rows, cols = np.nonzero(image > 127)
    if len(rows) == 0:
        return np.zeros_like(image)
    top, bottom = rows.min(), rows.max()
    height = bottom - top + 1
    if cols[rows == top].mean() < cols[rows == bottom].mean() - 0.1 * height:
        return np.zeros_like(image)  # a 1 leaning left ("\\"): with a flag it is a 7, so it keeps none
    width = float(np.clip(np.median(np.bincount(rows)[rows.min():rows.max() + 1]), 1.5, 4.0))
    if np.ptp(cols[rows >= bottom - 2]) + 1 > BASE_WIDTH * width:
        return np.zeros_like(image)
    start_row, start_col = top + 0.5, cols[rows <= top + 1].mean() + 0.5
    length = height * rng.uniform(*FLAG_LENGTH)
    angle = math.radians(rng.uniform(*FLAG_DEGREES))
    end_row, end_col = start_row + length * math.sin(angle), start_col - length * math.cos(angle)
    # Drawn 4x larger and shrunk by averaging: the same soft edges as MNIST's own strokes.
    canvas = Image.new("L", (SIZE * upscale, SIZE * upscale), 0)
    pen = ImageDraw.Draw(canvas)
    ends = [(start_col * upscale, start_row * upscale), (end_col * upscale, end_row * upscale)]
    pen.line(ends, fill=255, width=max(1, round(width * upscale)))
    radius = width * upscale / 2
    for x, y in ends:
        pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    return np.asarray(canvas.resize((SIZE, SIZE), Image.BOX))


def blur(images: tf.Tensor, sigma: float = 0.8) -> tf.Tensor:
    """Gaussian blur with a 5x5 kernel (zero beyond the border, like MNIST's background)."""
    taps = tf.exp(-tf.square(tf.range(-2.0, 3.0)) / (2 * sigma * sigma))
    kernel = tf.tensordot(taps, taps, axes=0)
    kernel = (kernel / tf.reduce_sum(kernel))[:, :, None, None]
    return tf.nn.conv2d(images, kernel, 1, "SAME")


def random_source_coordinates(generator: tf.random.Generator, n) -> tf.Tensor:
    """(n, 28, 28, 2) source (row, col) for every output pixel: the inverse of a random rotation, scale,
    shear and shift about the image centre, plus a smooth elastic displacement."""
    angle = generator.uniform([n], -1.0, 1.0) * math.radians(MAX_ROTATION_DEGREES)
    scale = tf.exp(generator.uniform([n], math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])))
    shear = generator.uniform([n], -MAX_SHEAR, MAX_SHEAR)
    shift = generator.uniform([n, 2], -MAX_SHIFT_PIXELS, MAX_SHIFT_PIXELS)
    return affine_source_coordinates(angle, scale, shear, shift) + elastic_displacement(generator, n)


def elastic_displacement(generator: tf.random.Generator, n) -> tf.Tensor:
    """(n, 28, 28, 2) smooth random (row, col) displacements in pixels: normal noise of ELASTIC_PIXELS on a
    coarse ELASTIC_GRID x ELASTIC_GRID grid, upsampled bicubically (a smooth field, cheaper than blurring
    per-pixel noise as Simard et al. do)."""
    coarse = generator.normal([n, ELASTIC_GRID, ELASTIC_GRID, 2]) * ELASTIC_PIXELS
    return tf.image.resize(coarse, [SIZE, SIZE], method="bicubic")


def affine_source_coordinates(angle, scale, shear, shift) -> tf.Tensor:
    """Where each output pixel comes from when the image is rotated by `angle` (radians, counter-clockwise as
    seen), scaled by `scale`, slanted by `shear` (top to the right for positive) and then moved by `shift`
    ((rows, cols) pixels), all about the centre. Shapes: angle, scale, shear (n,), shift (n, 2)."""
    centre = (SIZE - 1) / 2
    grid = tf.range(SIZE, dtype=tf.float32) - centre
    rows, cols = tf.meshgrid(grid, grid, indexing="ij")
    # Undo the shift, then the rotation and scale, then the shear: output -> source.
    r = rows[None] - shift[:, 0, None, None]
    c = cols[None] - shift[:, 1, None, None]
    cos, sin = tf.cos(angle)[:, None, None], tf.sin(angle)[:, None, None]
    inv = 1.0 / scale[:, None, None]
    r_src = (cos * r + sin * c) * inv
    c_src = (-sin * r + cos * c) * inv
    c_src = c_src + shear[:, None, None] * r_src
    return tf.stack([r_src + centre, c_src + centre], axis=-1)


def warp(images: tf.Tensor, coordinates: tf.Tensor) -> tf.Tensor:
    """Bilinear sampling of images (N, 28, 28, 1) at coordinates (N, 28, 28, 2); zero outside the image."""
    padded = tf.pad(images[..., 0], [[0, 0], [1, 1], [1, 1]])  # index 0 and 29 are the zero border
    coordinates = tf.clip_by_value(coordinates, -1.0, float(SIZE))
    top_left = tf.floor(coordinates)
    frac = coordinates - top_left
    base = tf.cast(top_left, tf.int32) + 1

    def at(dr, dc):
        index = tf.clip_by_value(base + [dr, dc], 0, SIZE + 1)
        return tf.gather_nd(padded, index, batch_dims=1)

    fr, fc = frac[..., 0], frac[..., 1]
    out = ((1 - fr) * (1 - fc) * at(0, 0) + (1 - fr) * fc * at(0, 1)
           + fr * (1 - fc) * at(1, 0) + fr * fc * at(1, 1))
    return out[..., None]


def _categorical(generator: tf.random.Generator, probabilities, n) -> tf.Tensor:
    edges = tf.constant(list(probabilities), tf.float32)
    edges = tf.math.cumsum(edges)[:-1]
    draw = generator.uniform([n])
    return tf.reduce_sum(tf.cast(draw[:, None] >= edges[None], tf.int32), axis=1)


def _sometimes(generator: tf.random.Generator, probability: float, changed, unchanged):
    chosen = generator.uniform([tf.shape(unchanged)[0], 1, 1, 1]) < probability
    return tf.where(chosen, changed, unchanged)
