"""Realistic photos of real MNIST digits on paper, for the preprocessing tests and the Draw upload tests:
dark ink on light paper, lit unevenly (a brightness gradient and a soft shadow), on plain, ruled or squared
paper, with specks of dirt, and a little camera blur and noise. Seeded, so every run draws the same page."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

PAGE_PX = 200
LINE_PITCH = 25  # ruled paper: a line every 25 px (about a digit's height / 5)
LINE_PX = 3  # pen strokes rendered from MNIST are 10-20 px wide here: a line is much thinner and much longer


def digit_ink(digit28: np.ndarray, size: int) -> np.ndarray:
    """A real 28x28 digit (uint8, ink bright) scaled to size x size, as ink coverage in [0, 1]."""
    big = Image.fromarray(digit28).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(big, dtype=np.float32) / 255.0


def paper_photo(digits: list[np.ndarray], *, paper: str = "plain", shape=(PAGE_PX, PAGE_PX), digit_px: int = 150,
                specks: int = 6, seed: int = 0) -> np.ndarray:
    """uint8 grey photo: the digits side by side, each digit_px tall, on `paper` ("plain", "ruled", "squared")."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    # Paper lit from the top left, with a soft shadow (a hand or a phone) falling over the bottom right.
    brightness = 0.95 - 0.25 * (xx / w + yy / h) / 2
    shadow = 1 / (1 + np.exp(-((xx + yy) - 1.3 * (h + w) / 2) / 12))
    brightness = brightness - 0.18 * shadow
    darkness = np.zeros((h, w), np.float32)  # 1 = pure ink
    if paper in ("ruled", "squared"):
        for y in range(LINE_PITCH // 2, h, LINE_PITCH):
            darkness[y : y + LINE_PX, :] = np.maximum(darkness[y : y + LINE_PX, :], 0.45)
    if paper == "squared":
        for x in range(LINE_PITCH // 2, w, LINE_PITCH):
            darkness[:, x : x + LINE_PX] = np.maximum(darkness[:, x : x + LINE_PX], 0.45)
    top = (h - digit_px) // 2
    left = (w - digit_px * len(digits)) // 2
    for i, digit in enumerate(digits):
        x0 = left + i * digit_px
        region = darkness[top : top + digit_px, x0 : x0 + digit_px]
        np.maximum(region, 0.9 * digit_ink(digit, digit_px), out=region)
    for _ in range(specks):  # dust and pencil dots, a few pixels across, away from the digit's middle
        y, x = int(rng.integers(5, h - 5)), int(rng.choice([rng.integers(3, 25), rng.integers(w - 25, w - 3)]))
        r = int(rng.integers(1, 3))
        darkness[y - r : y + r + 1, x - r : x + r + 1] = np.maximum(darkness[y - r : y + r + 1, x - r : x + r + 1], 0.8)
    photo = brightness * (1 - darkness)
    photo = ndimage.gaussian_filter(photo, 0.8) + rng.normal(0, 0.015, photo.shape)  # lens blur, sensor noise
    return np.clip(photo * 255, 0, 255).astype(np.uint8)


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
