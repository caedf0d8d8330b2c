"""A photo or scan of a digit -> the digit's ink alone, before the MNIST steps (preprocess.py).

Paper is not a canvas: it is lit unevenly, shadows fall on it, it can be ruled or squared, and it gathers
specks. Each of those counts as ink to MNIST's simple "crop to the ink" and the model then reads the page,
not the digit (a 5 on ruled paper read as "1" at 96.8%). Three steps take them out:

1. adaptive threshold: ink is what stands out from its *local* background. The background is a grey
   opening wider than any stroke (it follows gradients and shadow edges exactly), not a local mean, which
   ink pulls up and which smears a shadow's edge into a band of false ink;
2. long straight lines: horizontal and vertical runs much longer than any stroke of a digit are ruled or
   squared paper; they are taken out, and the strokes they crossed are joined up again;
3. main connected ink: the largest mark, and the pieces close to it (a 5's separate top bar), stay;
   specks and far-off marks go. A second mark of similar size elsewhere is counted: it may be another digit.

Everything runs on a copy at most WORK_SIDE pixels across, so a 16-megapixel photo costs what a small one does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

WORK_SIDE = 768  # longest side worked on: a digit needs 20 px in the end; this leaves room for small ones
BACKGROUND_FRACTION = 1 / 4  # the background window, as a share of the longest side: wider than any stroke
MIN_BACKGROUND_PX = 15  # ...and never narrower than this (an MNIST-sized image's strokes are 2-4 px)
NOISE_FLOOR = 0.06  # contrast above the local background that is never ink: paper grain, sensor noise
INK_FRACTION = 0.15  # and below this share of the strongest ink, a pixel is background (preprocess's rule)
LINE_FRACTION = 0.5  # a straight run at least this share of the page's width (height) is a ruled line
MIN_LINE_PX = 40  # ...and at least this long: on a small image a digit's own bar could span half of it
THICK_FRACTION = 1 / 50  # a line is thinner than this share of the longest side (pen strokes are thicker)
MIN_THICK_PX = 7  # ...or than this: ruled lines are 1-4 px in a photo of a page
SPECK_FRACTION = 0.04  # a mark with less ink than this share of the main mark is a speck
NEAR_FRACTION = 0.25  # pieces within this share of the main mark's size from its box belong to the digit
SIMILAR_FRACTION = 0.5  # a separate mark with at least this share of the main mark's ink may be another digit


@dataclass
class Isolated:
    ink: np.ndarray  # float32 (H, W) in [0, 1], ink bright, everything that is not the digit 0
    steps: dict[str, np.ndarray] = field(default_factory=dict)  # name -> image in [0, 1], for display
    marks: int = 1  # separate marks of similar size: more than one means more than one candidate digit


def working_copy(gray: np.ndarray) -> np.ndarray:
    """The image at most WORK_SIDE pixels across (area averaging keeps thin strokes' ink)."""
    h, w = gray.shape
    scale = WORK_SIDE / max(h, w)
    if scale >= 1:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX), dtype=np.float32)


def ink_bright(gray: np.ndarray) -> np.ndarray:
    """preprocess.to_gray flips by the border's brightness; a dim photo's paper can be darker than half-grey
    there. Ink is the minority, whatever the light: the longer tail away from the typical pixel."""
    low, typical, high = np.percentile(gray, [0.5, 50, 99.5])
    return (1.0 - gray).astype(np.float32) if typical - low > high - typical else gray


def ink_contrast(gray: np.ndarray) -> np.ndarray:
    """How dark each pixel's ink is against its *local* paper, in [0, 1] (brighter = more ink): a white
    top-hat, divided by the paper's own brightness so the same pen is as dark in shadow as in light."""
    window = max(MIN_BACKGROUND_PX, round(max(gray.shape) * BACKGROUND_FRACTION)) | 1
    smooth = ndimage.gaussian_filter(gray, 0.7)  # sensor noise would lift the opening's minimum otherwise
    background = ndimage.grey_opening(smooth, size=(window, window))
    return np.clip((smooth - background) / np.maximum(1.0 - background, 0.05), 0.0, 1.0).astype(np.float32)


def _line_pixels(mask: np.ndarray, ink: np.ndarray, length: int, thin: int, axis: int) -> np.ndarray:
    """Pixels of `ink` on straight runs of `mask` along `axis` at least `length` long, and thinner than `thin`
    across it.

    The run is measured through everything, the digit too (a line crossed by a stroke is still one line),
    but only thin ink is taken: where a stroke crosses the line, the ink is as thick as the stroke, and stays.
    A one-pixel wobble across the run is allowed (a slightly tilted line steps from row to row), and short
    gaps along it (a faint stretch of line)."""
    across = (3, 1) if axis == 1 else (1, 3)
    along = (1, 5) if axis == 1 else (5, 1)
    widened = ndimage.binary_closing(ndimage.binary_dilation(mask, np.ones(across, bool)), np.ones(along, bool))
    # an opening with a line element, as min then max filters (their cost does not grow with `length`)
    runs = ndimage.maximum_filter1d(ndimage.minimum_filter1d(widened.astype(np.uint8), length, axis=axis),
                                    length, axis=axis)
    thick_across = ndimage.binary_opening(ink, np.ones((thin, 1) if axis == 1 else (1, thin), bool))
    return runs.astype(bool) & ink & ~thick_across


def remove_lines(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ink without ruled or squared lines, the lines found)."""
    h, w = mask.shape
    thin = max(MIN_THICK_PX, round(max(h, w) * THICK_FRACTION)) | 1
    kept, lines = mask, np.zeros_like(mask)
    # Horizontal lines first, then vertical ones in what is left: a crossing of squared paper is thick both
    # ways until one of its two lines has gone.
    for axis, side, gap in ((1, w, (thin, 1)), (0, h, (1, thin))):
        if side < MIN_LINE_PX:
            continue
        found = _line_pixels(mask, kept, max(MIN_LINE_PX, round(side * LINE_FRACTION)), thin, axis)
        if not found.any():
            continue
        kept = kept & ~found
        # A thin stroke that crossed the line now has a gap as wide as the line: close it, but only inside
        # the line, where there is ink on both sides of the gap.
        bridged = ndimage.binary_closing(kept, np.ones(gap, bool)) & found
        kept, lines = kept | bridged, lines | (found & ~bridged)
    return kept, lines


def main_marks(mask: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, int]:
    """(the main mark and the pieces near it, how many separate marks of similar size there are)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask, 0
    index = np.arange(1, count + 1)
    mass = ndimage.sum_labels(weight, labels, index)
    boxes = ndimage.find_objects(labels)
    main = int(mass.argmax())
    top, bottom = boxes[main][0].start, boxes[main][0].stop
    left, right = boxes[main][1].start, boxes[main][1].stop
    reach = round(NEAR_FRACTION * max(bottom - top, right - left))
    keep, marks = np.zeros(count + 1, bool), 1
    for i, box in enumerate(boxes):
        if i == main:
            keep[i + 1] = True
            continue
        if mass[i] < SPECK_FRACTION * mass[main]:
            continue
        overlaps = box[0].start < bottom and box[0].stop > top and box[1].start < right and box[1].stop > left
        near = (box[0].start < bottom + reach and box[0].stop > top - reach
                and box[1].start < right + reach and box[1].stop > left - reach)
        keep[i + 1] = near
        if not overlaps and mass[i] >= SIMILAR_FRACTION * mass[main]:
            marks += 1
    return keep[labels], marks


def isolate_digit(gray: np.ndarray) -> Isolated:
    """gray: float32 (H, W) in [0, 1], ink bright (preprocess.to_gray). The steps are at the working size."""
    work = ink_bright(working_copy(gray))
    contrast = ink_contrast(work)
    steps = {"background removed": contrast}
    peak = float(contrast.max(initial=0.0))
    if peak < NOISE_FLOOR:  # blank paper, however it is lit
        return Isolated(np.zeros_like(work), steps, marks=0)
    inked = contrast > max(NOISE_FLOOR, INK_FRACTION * peak)
    steps["ink (adaptive threshold)"] = inked.astype(np.float32)
    unlined, lines = remove_lines(inked)
    if lines.any():
        steps["ruled lines removed"] = unlined.astype(np.float32)
    kept, marks = main_marks(unlined, contrast)
    # The ink's own shading, not the threshold's hard edge, goes on to the MNIST steps: anti-aliased like MNIST.
    ink = np.where(ndimage.binary_dilation(kept, np.ones((3, 3), bool)) & ~(lines & ~kept), contrast, 0.0)
    ink = (ink / max(float(ink.max(initial=0.0)), 1e-6)).astype(np.float32)
    steps["main ink kept"] = ink
    return Isolated(ink, steps, marks)
