"""Perturbations of MNIST digits, each a pure function `(images, severity, rng) -> images`.

Images are uint8 (N, 28, 28) in and out: a perturbed digit is an 8-bit image like any other, fed to models
through the one normaliser (data.normalise). The identity severity (LADDERS[name].identity; 0 for all but
scale, 1.0 there) returns the input's values unchanged. Each random perturbation draws its random choices
from `rng` only, in the order its docstring states, so a caller with the same generator gets the same images.

Geometric warps sample the source with bilinear interpolation (scipy.ndimage.map_coordinates, order 1),
zero outside the image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mnist_core.evaluate import EVAL_BATCH

SIZE = 28
CENTRE = (SIZE - 1) / 2  # 13.5: the centre of the pixel grid, so a 90-degree turn is np.rot90 exactly
ELASTIC_SIGMA = 4.0  # Simard et al. (2003): smoothing of the displacement field, in pixels
PGD_STEPS = 5  # projected gradient steps, each eps/4: enough to reach any corner of the eps-ball
AXIS_DIRECTIONS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])  # (rows, cols): up, down, left, right


@dataclass(frozen=True)
class Ladder:
    label: str  # the chart's title for the perturbation
    unit: str  # the unit of the severity axis
    levels: tuple[float, ...]  # severities, mildest first; includes the identity
    identity: float = 0.0


LADDER_VERSION = "ladders-1"  # change whenever LADDERS or a perturbation changes: cached results then recompute
LADDERS: dict[str, Ladder] = {
    "shift": Ladder("shift (random axis)", "px", (0, 1, 2, 3, 4, 5)),
    "rotation": Ladder("rotation (random sign)", "degrees", (0, 10, 20, 30, 45)),
    "scale": Ladder("scale about the centre of mass", "factor", (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4), 1.0),
    "thickness": Ladder("stroke thickness (thinner < 0 < thicker)", "px", (-2, -1, 0, 1, 2, 3)),
    "noise": Ladder("Gaussian noise", "sigma (0-1 pixel units)", (0, 0.1, 0.2, 0.3, 0.4, 0.5)),
    "blur": Ladder("Gaussian blur", "sigma (px)", (0, 0.5, 1.0, 1.5, 2.0, 2.5)),
    "elastic": Ladder(f"elastic distortion (sigma {ELASTIC_SIGMA:g} px)", "alpha (px)", (0, 10, 20, 30, 40)),
    "occlusion": Ladder("occlusion by a square patch", "side (px)", (0, 4, 8, 12, 16)),
    "fgsm": Ladder("adversarial FGSM", "epsilon (0-1 pixel units)", (0, 0.025, 0.05, 0.1, 0.2)),
    "pgd": Ladder(f"adversarial PGD ({PGD_STEPS} steps of eps/4)", "epsilon (0-1 pixel units)",
                  (0, 0.025, 0.05, 0.1, 0.2)),
}
NEEDS_MODEL = ("fgsm", "pgd")  # these take model= and labels= besides (images, severity, rng)


def _as_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def warp(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Output pixel (n, i, j) = bilinear sample of images[n] at source point (rows[n, i, j], cols[n, i, j]),
    zero outside the image. (scipy's map_coordinates does the same on a 3-D array, several times slower.)"""
    side = SIZE + 2
    flat = np.pad(images.astype(np.float32), ((0, 0), (1, 1), (1, 1))).ravel()  # a zero border outside the frame
    rows = np.clip(np.asarray(rows, dtype=np.float32) + 1, 0, side - 1)
    cols = np.clip(np.asarray(cols, dtype=np.float32) + 1, 0, side - 1)
    r0 = np.minimum(rows.astype(np.int32), side - 2)  # non-negative: truncation is floor
    c0 = np.minimum(cols.astype(np.int32), side - 2)
    fr, fc = rows - r0, cols - c0
    top_left = (np.arange(len(images), dtype=np.int32)[:, None, None] * side + r0) * side + c0
    top = (1 - fc) * flat.take(top_left) + fc * flat.take(top_left + 1)
    bottom = (1 - fc) * flat.take(top_left + side) + fc * flat.take(top_left + side + 1)
    out = (1 - fr) * top + fr * bottom
    return _as_uint8(out)


def centres_of_mass(images: np.ndarray) -> np.ndarray:
    """(N, 2) centre of mass (row, col) of each image; the image centre for a blank one."""
    weights = images.astype(np.float64)
    total = weights.sum(axis=(1, 2))
    idx = np.arange(SIZE, dtype=np.float64)
    rows = (weights.sum(axis=2) @ idx) / np.where(total > 0, total, 1)
    cols = (weights.sum(axis=1) @ idx) / np.where(total > 0, total, 1)
    return np.where(total[:, None] > 0, np.stack([rows, cols], axis=1), CENTRE)


def _grid(count: int) -> tuple[np.ndarray, np.ndarray]:
    r, c = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    return np.broadcast_to(r, (count, SIZE, SIZE)), np.broadcast_to(c, (count, SIZE, SIZE))


def shift_by(images: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each image by whole pixels, offsets (N, 2) as (down, right); what leaves the frame is lost."""
    out = np.zeros_like(images)
    for k, (dr, dc) in enumerate(np.asarray(offsets, dtype=int)):
        src = images[k, max(0, -dr) : SIZE - max(0, dr), max(0, -dc) : SIZE - max(0, dc)]
        out[k, max(0, dr) : max(0, dr) + src.shape[0], max(0, dc) : max(0, dc) + src.shape[1]] = src
    return out


def shift(images: np.ndarray, pixels: float, rng: np.random.Generator) -> np.ndarray:
    """Move each digit `pixels` whole pixels up, down, left or right (one direction per image, drawn as
    rng.integers(0, 4, N) into AXIS_DIRECTIONS). Whole pixels: no interpolation blur."""
    if pixels == 0:
        return images.copy()
    directions = AXIS_DIRECTIONS[rng.integers(0, 4, len(images))]
    return shift_by(images, directions * int(round(pixels)))


def rotate_by(images: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Turn each image counter-clockwise (as np.rot90 does) by its angle, about the image centre."""
    theta = np.deg2rad(np.asarray(degrees, dtype=float))[:, None, None]
    r, c = _grid(len(images))
    y, x = r - CENTRE, c - CENTRE
    # Inverse map: the source of an output pixel is the pixel turned back by theta.
    rows = CENTRE + np.cos(theta) * y + np.sin(theta) * x
    cols = CENTRE - np.sin(theta) * y + np.cos(theta) * x
    return warp(images, rows, cols)


def rotation(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Turn each digit by `degrees`, clockwise or counter-clockwise (sign drawn as rng.choice([-1, 1], N))."""
    if degrees == 0:
        return images.copy()
    return rotate_by(images, degrees * rng.choice([-1, 1], len(images)))


def scale(images: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Zoom each digit by `factor` about its own centre of mass (< 1 draws it smaller). Not random."""
    if factor == 1.0:
        return images.copy()
    centres = centres_of_mass(images)
    r, c = _grid(len(images))
    cr, cc = centres[:, 0, None, None], centres[:, 1, None, None]
    return warp(images, cr + (r - cr) / factor, cc + (c - cc) / factor)


def disk(radius: int) -> np.ndarray:
    """A filled disk footprint of the given radius (radius 1: the 3x3 cross)."""
    r, c = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return r * r + c * c <= radius * radius


def thickness(images: np.ndarray, pixels: float, rng: np.random.Generator) -> np.ndarray:
    """Thicker strokes (grey dilation) for pixels > 0, thinner (grey erosion) for < 0, by a disk of radius
    |pixels|: each side of a stroke moves by that many pixels. Not random."""
    radius = int(round(abs(pixels)))
    if radius == 0:
        return images.copy()
    footprint = disk(radius)[None]  # per image: nothing mixes across the batch axis
    morph = ndimage.grey_dilation if pixels > 0 else ndimage.grey_erosion
    return morph(images, footprint=footprint, mode="constant", cval=0)


def noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of standard deviation `sigma` (in 0-1 pixel units), clipped to the pixel range.
    Drawn as rng.normal(0, sigma * 255, images.shape)."""
    if sigma == 0:
        return images.copy()
    return _as_uint8(images.astype(np.float32) + rng.normal(0.0, sigma * 255.0, images.shape))


def blur(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of `sigma` pixels (scipy.ndimage.gaussian_filter, each image on its own). Not random."""
    if sigma == 0:
        return images.copy()
    return _as_uint8(ndimage.gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma), mode="constant"))


def elastic(images: np.ndarray, alpha: float, rng: np.random.Generator, sigma: float = ELASTIC_SIGMA) -> np.ndarray:
    """Simard et al. (2003) elastic distortion: a displacement field of uniform(-1, 1) noise per pixel,
    smoothed by a Gaussian of `sigma` px and scaled by `alpha` px. Drawn as rng.uniform(-1, 1, (2, N, 28, 28))
    (rows' field, then columns')."""
    if alpha == 0:
        return images.copy()
    fields = rng.uniform(-1.0, 1.0, (2, *images.shape))
    d_rows, d_cols = (alpha * ndimage.gaussian_filter(f, sigma=(0, sigma, sigma), mode="constant") for f in fields)
    r, c = _grid(len(images))
    return warp(images, r + d_rows, c + d_cols)


def occlusion(images: np.ndarray, side: float, rng: np.random.Generator) -> np.ndarray:
    """Black out a `side` x `side` square on each digit, centred on a random ink pixel (value >= 128, any
    pixel if there is none) and moved inside the frame. Drawn per image, in order, as rng.integers(0, ink)."""
    side = int(round(side))
    if side == 0:
        return images.copy()
    out = images.copy()
    for k, im in enumerate(images):
        ink = np.flatnonzero(im >= 128)
        pixel = ink[rng.integers(0, len(ink))] if len(ink) else rng.integers(0, SIZE * SIZE)
        r, c = divmod(int(pixel), SIZE)
        top = min(max(r - side // 2, 0), SIZE - side)
        left = min(max(c - side // 2, 0), SIZE - side)
        out[k, top : top + side, left : left + side] = 0
    return out


# ---------- adversarial: the model's own gradient ----------


class Compiled:
    """A model's input gradient as a traced TensorFlow function (model(x, training=False) inside): eager calls
    cost more than the work on batches of a few thousand digits. (Its forward pass alone: predict.forward.)"""

    def __init__(self, model):
        import tensorflow as tf

        images = tf.TensorSpec([None, SIZE, SIZE, 1], tf.float32)
        self.model = model

        @tf.function(input_signature=[images, tf.TensorSpec([None], tf.int32)], reduce_retracing=True)
        def gradient(x, labels):
            with tf.GradientTape() as tape:
                tape.watch(x)
                probs = model(x, training=False)
                picked = tf.gather(probs, labels, batch_dims=1)
                loss = -tf.math.log(tf.clip_by_value(picked, 1e-7, 1.0))  # cross-entropy per image
            return probs, tape.gradient(loss, x)

        self._gradient = gradient
        self._last: tuple[bytes, tuple] | None = None

    def probs_and_gradient(self, x: np.ndarray, labels: np.ndarray, batch_size: int = EVAL_BATCH):
        """Probabilities and d(cross-entropy)/d(input) for float inputs (N, 28, 28, 1), in batches. The last
        answer is remembered: every FGSM level and PGD's first step start from the same clean images. At 100
        images a batch rather than 1,000 a whole robustness run took 58 s instead of 71 s and raised the
        process's peak by 184 MB instead of 461 (the default, AVX2, n=1 each)."""
        x, labels = np.asarray(x, dtype=np.float32), np.asarray(labels, dtype=np.int32)
        key = hashlib.sha256(x.tobytes() + labels.tobytes()).digest()
        if self._last is None or self._last[0] != key:
            parts = [self._gradient(x[i : i + batch_size], labels[i : i + batch_size])
                     for i in range(0, len(x), batch_size)]
            self._last = (key, (np.concatenate([p.numpy() for p, _ in parts]),
                                np.concatenate([g.numpy() for _, g in parts])))
        return self._last[1]


def compiled(model) -> Compiled:
    return model if isinstance(model, Compiled) else Compiled(model)


def _to_ball(images: np.ndarray, adversarial: np.ndarray, eps: float) -> np.ndarray:
    """8-bit adversarial images no pixel of which differs from the original by more than eps: the ball's
    radius in 8-bit steps is floor(eps * 255), so quantising never leaves it."""
    steps = np.floor(eps * 255 + 1e-6)
    base = images.astype(np.float32)
    return _as_uint8(np.clip(np.rint(adversarial[..., 0] * 255), base - steps, base + steps))


def fgsm(images: np.ndarray, eps: float, rng: np.random.Generator, *, model, labels: np.ndarray) -> np.ndarray:
    """Fast gradient sign method: one step of eps along the sign of the loss gradient, clipped to [0, 1]."""
    if eps == 0:
        return images.copy()
    from mnist_core.data import normalise

    x = normalise(images)
    _, gradient = compiled(model).probs_and_gradient(x, labels)
    adversarial = np.clip(x + eps * np.sign(gradient), 0.0, 1.0)
    return _to_ball(images, adversarial, eps)


def pgd(images: np.ndarray, eps: float, rng: np.random.Generator, *, model, labels: np.ndarray,
        steps: int = PGD_STEPS) -> np.ndarray:
    """Projected gradient descent (Madry et al.), from the clean image: up to `steps` sign steps of eps/4, each
    projected back to the eps-ball around the original and to [0, 1]. An image stops once the model gets it
    wrong (the attack has succeeded; further steps would only cost time)."""
    if eps == 0:
        return images.copy()
    from mnist_core.data import normalise

    model, labels = compiled(model), np.asarray(labels)
    x0 = normalise(images)
    x, active = x0.copy(), np.arange(len(x0))
    for _ in range(steps):
        probs, gradient = model.probs_and_gradient(x[active], labels[active])
        still_right = probs.argmax(axis=1) == labels[active]
        active, gradient = active[still_right], gradient[still_right]
        if not len(active):
            break
        stepped = x[active] + (eps / 4) * np.sign(gradient)
        x[active] = np.clip(np.clip(stepped, x0[active] - eps, x0[active] + eps), 0.0, 1.0)
    return _to_ball(images, x, eps)


PERTURBATIONS = {"shift": shift, "rotation": rotation, "scale": scale, "thickness": thickness, "noise": noise,
                 "blur": blur, "elastic": elastic, "occlusion": occlusion, "fgsm": fgsm, "pgd": pgd}


def apply(name: str, images: np.ndarray, severity: float, rng: np.random.Generator, *, model=None,
          labels=None) -> np.ndarray:
    """One perturbation by name; the adversarial ones need the model and the true labels."""
    if name in NEEDS_MODEL:
        return PERTURBATIONS[name](images, severity, rng, model=model, labels=labels)
    return PERTURBATIONS[name](images, severity, rng)
