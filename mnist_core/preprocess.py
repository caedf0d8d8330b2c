"""Any image of a digit -> the 28x28 input an MNIST model expects, the way MNIST itself was made:
grayscale, ink bright on dark, crop to the ink, fit in 20x20 keeping the aspect ratio,
then centre by centre of mass in 28x28. The steps are returned too, for display.

A canvas drawing goes straight to those steps (to_mnist). An uploaded photo or scan first has its digit
isolated from the paper (isolate.py: lighting, ruled lines, specks; image_to_mnist, photo_to_mnist)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from mnist_core.errors import LabError
from mnist_core.isolate import isolate_digit

ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
MAX_PIXELS = 4096 * 4096  # far above any scan of a digit, far below a decompression bomb
MAX_BYTES = 5 * 1024 * 1024
INK_FRACTION = 0.15  # pixels below this share of the brightest ink count as background when cropping


@dataclass
class Prepared:
    input: np.ndarray | None  # float32 (28, 28) in [0, 1], ink bright; None when there is no digit
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float image in [0, 1]
    message: str = ""  # why there is no input, for the user
    marks: int = 1  # separate ink marks of similar size (photos): more than one = several candidate digits

    @property
    def empty(self) -> bool:
        return self.input is None


def open_image(data: bytes, name: str = "image") -> Image.Image:
    """Decode uploaded bytes after checking what they are, not what they are called."""
    if not data:
        raise LabError(f"{name}: the file is empty")
    if len(data) > MAX_BYTES:
        raise LabError(f"{name}: the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)  # reads the header only
    except UnidentifiedImageError:
        raise LabError(f"{name}: not a PNG, JPEG, BMP or GIF image") from None
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours, fires inside open()
        raise LabError(f"{name}: the image is too large (over {MAX_PIXELS:,} pixels)") from None
    except Exception as exc:
        raise LabError(f"{name}: cannot read the image ({type(exc).__name__})") from None
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise LabError(f"{name}: {width}x{height} pixels is too large (limit {MAX_PIXELS:,} pixels)")
    try:
        img.load()
    except Exception as exc:
        raise LabError(f"{name}: the image is truncated or damaged ({type(exc).__name__})") from None
    return img


def to_gray(image) -> np.ndarray:
    """Any PIL mode or array -> float32 (H, W) in [0, 1] with the ink bright."""
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.dtype != np.uint8:
            hi = 1.0 if arr.dtype.kind == "f" and arr.max(initial=0) <= 1.0 else 255.0
            arr = np.clip(arr.astype(np.float32) / hi * 255.0, 0, 255).astype(np.uint8)
        image = Image.fromarray(arr)
    img = image
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        gray = arr / top
        alpha = None
    else:
        alpha = None
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            alpha = np.asarray(rgba, dtype=np.float32)[..., 3] / 255.0
            img = rgba
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if alpha is not None and alpha.min() < 0.5:
        # Transparent background: the opaque strokes are the ink, whatever their colour.
        return alpha.astype(np.float32)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray = 1.0 - gray  # a light background means dark ink: flip to MNIST's white-on-black
    return gray.astype(np.float32)


def to_mnist(image) -> Prepared:
    """A drawing (canvas, clean digital image) -> the MNIST steps, with nothing removed first."""
    gray = to_gray(image)
    return mnist_steps(gray, {"grayscale": gray})


def photo_to_mnist(image) -> Prepared:
    """A photo or scan -> the digit isolated from the paper (isolate.py), then the MNIST steps."""
    gray = to_gray(image)
    isolated = isolate_digit(gray)
    prepared = mnist_steps(isolated.ink, {"grayscale": gray, **isolated.steps})
    prepared.marks = isolated.marks
    if prepared.empty:  # blank paper, or nothing but lines and specks
        prepared.message = "no digit found in the image: upload a photo or scan of one digit"
    return prepared


def mnist_steps(gray: np.ndarray, steps: dict[str, np.ndarray]) -> Prepared:
    """MNIST's own steps on a float (H, W) image in [0, 1] with the ink bright; `steps` so far are kept."""
    peak = float(gray.max(initial=0.0))
    if peak < 0.2:
        return Prepared(None, steps, "no digit found: draw a digit")
    mask = gray > peak * INK_FRACTION
    if mask.mean() > 0.9:
        return Prepared(None, steps, "the image is almost all ink: draw a digit on a plain background")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    steps["cropped"] = crop
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    fitted = Image.fromarray((crop / peak * 255).astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS)
    fitted = np.asarray(fitted, dtype=np.float32) / 255.0
    steps["fitted 20x20"] = fitted
    canvas = np.zeros((28, 28), np.float32)
    top, left = (28 - new_h) // 2, (28 - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = fitted
    cy, cx = ndimage.center_of_mass(canvas)
    shifted = ndimage.shift(canvas, (round(14 - cy), round(14 - cx)), order=0, mode="constant", cval=0.0)
    result = np.clip(shifted, 0.0, 1.0).astype(np.float32)
    steps["centred 28x28"] = result
    return Prepared(result, steps)


def image_to_mnist(data: bytes, name: str = "image", keep_steps: bool = True) -> Prepared:
    """Decode (open_image: size and pixels checked first) and prepare one image file's bytes. Without
    keep_steps only the 28x28 input is kept: a large scan's full-size grayscale step alone is 4 bytes
    per pixel, too much to hold for every file of a batch."""
    prepared = photo_to_mnist(open_image(data, name))
    if not keep_steps:
        prepared.steps = {}
    return prepared


