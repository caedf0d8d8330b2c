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
NOISE_FLOOR = 0.12  # contrast above the local background that is never ink: paper grain, sensor noise
INK_FRACTION = 0.15  # and below this share of the strongest ink, a pixel is background (preprocess's rule)
LINE_FRACTION = 0.75  # a straight run at least this share of the image's width (height) is a ruled line:
# a digit is rarely that long in a photo of it, and a page's lines run off the photo's edges
MAX_LINE_THICK_FRACTION = 0.04  # ...and thinner than this share of the longest side (lines: 1-3%)
MIN_LINE_PX = 40  # ...and at least this long: on a small image a digit's own bar could span half of it
MIN_DIGIT_FRACTION = 0.04  # a main mark smaller than this share of the longest side is dirt, not a digit
MIN_DIGIT_PX = 6  # ...or smaller than this
SPECK_FRACTION = 0.04  # a mark with less ink than this share of the main mark is a speck
NEAR_FRACTION = 0.25  # pieces within this share of the main mark's size from its box belong to the digit
JOIN_FRACTION = 0.12  # ink closer than this share of the main mark's size is one mark (a 5 and its top bar)
SIMILAR_FRACTION = 0.6  # a separate mark at least this share of the main mark's size may be another digit
SIMILAR_INK_FRACTION = 0.2  # ...if it also has this share of its ink


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
    # Past the edge the paper's trend carries on (odd reflection of a blurred copy, so lines and strokes near
    # the edge are not mirrored into dark dips): otherwise the opening loses the brightest stretch of a
    # gradient that rises towards the edge, and that stretch reads as ink.
    pad = window // 2 + 1
    trend = np.pad(ndimage.gaussian_filter(smooth, window / 4, mode="nearest"), pad, mode="reflect",
                   reflect_type="odd")
    trend[pad:-pad, pad:-pad] = smooth
    background = ndimage.grey_opening(trend, size=(window, window))[pad:-pad, pad:-pad]
    return np.clip((smooth - background) / np.maximum(1.0 - background, 0.05), 0.0, 1.0).astype(np.float32)


def _run_lengths(mask: np.ndarray, axis: int) -> np.ndarray:
    """The lengths of all straight runs of True along `axis`."""
    lanes = mask.T if axis == 0 else mask
    edges = np.diff(np.pad(lanes, ((0, 0), (1, 1))).view(np.int8), axis=1).ravel()
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def _line_pixels(mask: np.ndarray, ink: np.ndarray, length: int, axis: int) -> tuple[np.ndarray, int]:
    """(pixels of `ink` on straight runs of `mask` along `axis` at least `length` long and thin across it,
    the widest gap the lines can leave in a stroke).

    The run is measured through everything, the digit too (a line crossed by a stroke is still one line),
    but only thin ink is taken: where a stroke crosses the line, the ink is as thick as the stroke, and stays.
    "Thin" is measured on the lines themselves: about twice their usual thickness. A one-pixel wobble across
    the run is allowed (a slightly tilted line steps from row to row), and short gaps along it."""
    across = (3, 1) if axis == 1 else (1, 3)
    along = (1, 5) if axis == 1 else (5, 1)
    widened = ndimage.binary_closing(ndimage.binary_dilation(mask, np.ones(across, bool)), np.ones(along, bool))
    # an opening with a line element, as min then max filters (their cost does not grow with `length`)
    runs = ndimage.maximum_filter1d(ndimage.minimum_filter1d(widened.view(np.uint8), length, axis=axis),
                                    length, axis=axis).view(bool) & ink
    if not runs.any():
        return runs, 0
    thickness = int(np.median(_run_lengths(runs, 1 - axis)))
    if thickness > MAX_LINE_THICK_FRACTION * max(mask.shape):  # a tall 1 drawn with a marker, not a line
        return np.zeros_like(runs), 0
    thin = 2 * thickness + 1
    thick_across = ndimage.binary_opening(ink, np.ones((thin, 1) if axis == 1 else (1, thin), bool))
    return runs & ~thick_across, thin


def remove_lines(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ink without ruled or squared lines, the lines found)."""
    h, w = mask.shape
    kept, lines = mask, np.zeros_like(mask)
    # Horizontal lines first, then vertical ones in what is left: a crossing of squared paper is thick both
    # ways until one of its two lines has gone.
    for axis, side in ((1, w), (0, h)):
        if side < MIN_LINE_PX:
            continue
        found, thin = _line_pixels(mask, kept, max(MIN_LINE_PX, round(side * LINE_FRACTION)), axis)
        if not found.any():
            continue
        kept = kept & ~found
        # A thin stroke that crossed the line now has a gap as wide as the line: close it, but only inside
        # the line, where there is ink on both sides of the gap.
        bridged = ndimage.binary_closing(kept, np.ones((thin, 1) if axis == 1 else (1, thin), bool)) & found
        kept, lines = kept | bridged, lines | (found & ~bridged)
    return kept, lines


def _box(rows: slice, cols: slice, grow: int = 0) -> tuple[int, int, int, int]:
    return rows.start - grow, rows.stop + grow, cols.start - grow, cols.stop + grow


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[1] and a[1] > b[0] and a[2] < b[3] and a[3] > b[2]


def main_marks(mask: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, int]:
    """(the main mark and the pieces near it, how many separate marks of similar size there are).

    The main mark has the most ink; the pieces of ink close to it (a 5's loose top bar) are grouped with it.
    Another group counts as a second candidate digit when its box does not overlap the main one's, it is
    about as large (a 1 beside a 0 is as tall, if lighter) and it has a fair share of the ink (a stray
    line is long but light)."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return mask, 0
    mass = ndimage.sum_labels(weight, labels, np.arange(1, count + 1))
    boxes = ndimage.find_objects(labels)
    main = int(mass.argmax())
    main_box = _box(*boxes[main])
    extent = max(main_box[1] - main_box[0], main_box[3] - main_box[2])
    if extent < max(MIN_DIGIT_PX, MIN_DIGIT_FRACTION * max(mask.shape)):
        return np.zeros_like(mask), 0
    join = max(3, round(JOIN_FRACTION * extent))
    groups, _ = ndimage.label(ndimage.maximum_filter(mask.view(np.uint8), size=join) > 0, np.ones((3, 3), bool))
    pieces = [i for i in range(count) if mass[i] >= SPECK_FRACTION * mass[main]]  # specks go
    group_of = {i: int(groups[boxes[i]][labels[boxes[i]] == i + 1][0]) for i in pieces}
    reach = _box(*boxes[main], grow=round(NEAR_FRACTION * extent))
    keep = np.zeros(count + 1, bool)
    for i in pieces:
        keep[i + 1] = group_of[i] == group_of[main] or _overlap(_box(*boxes[i]), reach)
    kept = keep[labels]
    return kept, 1 + _similar_groups(group_of, mass, boxes, main)


def _similar_groups(group_of: dict[int, int], mass, boxes, main: int) -> int:
    """How many groups of pieces, other than the main one, look like another digit."""
    members: dict[int, list[int]] = {}
    for piece, group in group_of.items():
        members.setdefault(group, []).append(piece)

    def size(group):
        box = (min(boxes[i][0].start for i in members[group]), max(boxes[i][0].stop for i in members[group]),
               min(boxes[i][1].start for i in members[group]), max(boxes[i][1].stop for i in members[group]))
        return box, max(box[1] - box[0], box[3] - box[2]), sum(mass[i] for i in members[group])

    main_box, main_extent, main_mass = size(group_of[main])
    similar = 0
    for group in members:
        if group == group_of[main]:
            continue
        box, extent, ink = size(group)
        similar += int(not _overlap(box, main_box) and extent >= SIMILAR_FRACTION * main_extent
                       and ink >= SIMILAR_INK_FRACTION * main_mass)
    return similar


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
