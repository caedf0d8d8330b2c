"""Issue 5, cases 6-9: uploads are checked by content, decompression bombs are refused before decoding,
every image mode reaches the model the same way, and degenerate drawings never raise."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_util import (
    BAD_UPLOADS,
    ROOT,
    assert_one_line_error,
    bad_uploads,
    bomb_png,
    png_bytes,
    run_cli,
    run_cli_process,
)
from PIL import Image

from mnist_core import preprocess
from mnist_core.errors import LabError

# ---------- case 6: uploads are checked by content, not by extension ----------


@pytest.mark.parametrize("kind", BAD_UPLOADS)
def test_case06_bad_upload_is_one_friendly_line(capsys, tmp_path, digit_png, kind):
    data = bad_uploads(digit_png)[kind]
    with pytest.raises(LabError) as info:
        preprocess.image_to_mnist(data, "upload.png")
    assert "\n" not in str(info.value) and str(info.value).startswith("upload.png: ")
    path = tmp_path / "upload.png"
    path.write_bytes(data)
    assert_one_line_error(*run_cli(capsys, "predict", path)[::2], contains="upload.png")


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP", "ICO", "PPM", "TGA"])
def test_case06_only_png_jpeg_bmp_gif_are_decoded(digit_png, fmt):
    image = Image.open(io.BytesIO(digit_png))
    data = png_bytes(image, fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # a real, valid image of another format
    with pytest.raises(LabError, match="not a PNG, JPEG, BMP or GIF"):
        preprocess.image_to_mnist(data, "photo.png")
    for ok in ("PNG", "JPEG", "BMP", "GIF"):
        assert not preprocess.image_to_mnist(png_bytes(image, ok), "x").empty


def test_case06_cli_process_answers_bad_bytes_in_one_line(tmp_path, digit_png):
    for kind in ("truncated-jpeg",):  # one child process: TensorFlow's start-up is the slow part
        path = tmp_path / f"{kind}.png"
        path.write_bytes(bad_uploads(digit_png)[kind])
        proc = run_cli_process("predict", path)
        assert_one_line_error(proc.returncode, proc.stderr, contains=path.name)
        assert proc.stdout == ""


def test_case06_huge_file_is_refused_before_it_is_read(capsys, tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as fh:
        fh.truncate(2 * 1024**3)  # 2 GB, sparse: costs no disk, but reading it would cost 2 GB of memory
    assert_one_line_error(*run_cli(capsys, "predict", path)[::2], contains="larger than 5 MB")


# ---------- case 7: decompression bombs ----------


PROBE = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[2])
from mnist_core import preprocess
from mnist_core.errors import LabError
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    preprocess.image_to_mnist(data, "bomb.png")
    outcome = "decoded"
except LabError as exc:
    outcome = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "growth_mb": (after - before) / 1024}))
"""


@pytest.mark.parametrize("side", [20000, 12000], ids=["20000x20000", "12000x12000-below-pillow-limit"])
def test_case07_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    """20000x20000 also trips Pillow's own bomb error inside open(); 12000x12000 is below it (2 x 89M pixels),
    so there only the lab's limit stops it."""
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(side, side))
    assert path.stat().st_size < preprocess.MAX_BYTES  # it passes the upload size limit: the header is the tell
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path), str(ROOT)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert "too large" in result["outcome"], result
    assert result["growth_mb"] < 200, result


# ---------- case 8: every image mode gives the same input ----------


def _modes(ink: np.ndarray) -> dict[str, bytes]:
    """One digit (ink bright, uint8) encoded in every mode an upload may have."""
    paper = 255 - ink  # black ink on white paper
    zeros = np.zeros_like(ink)
    palette = Image.fromarray(paper).convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))  # the paper's colour is the transparent one
    cmyk = Image.fromarray(paper).convert("RGB").convert("CMYK")
    return {
        "RGB": png_bytes(Image.fromarray(paper).convert("RGB")),
        "RGBA-transparent": png_bytes(Image.fromarray(np.dstack([zeros, zeros, zeros, ink]), "RGBA")),
        "P-transparency": png_bytes(palette, transparency=palette.info["transparency"]),
        "LA-transparent": png_bytes(Image.fromarray(np.dstack([zeros, ink]), "LA")),
        "L": png_bytes(Image.fromarray(paper)),
        "1-bit": png_bytes(Image.fromarray(paper).point(lambda v: 255 if v > 127 else 0).convert("1")),
        "CMYK": png_bytes(cmyk, "JPEG", quality=95),
        "I;16-full-range": png_bytes(Image.fromarray(paper.astype(np.uint16) * 257)),
        "black-on-white": png_bytes(Image.fromarray(paper).convert("RGB"), "BMP"),
        "white-on-black": png_bytes(Image.fromarray(ink).convert("RGB"), "GIF"),
    }


def test_case08_every_image_mode_gives_the_same_input(digit, default_predictor):
    ink, label = digit
    encoded = _modes(ink)
    opened = {mode: Image.open(io.BytesIO(data)).mode for mode, data in encoded.items()}
    assert opened["I;16-full-range"].startswith("I") and opened["CMYK"] == "CMYK" and opened["1-bit"] == "1"
    assert opened["P-transparency"] == "P" and opened["LA-transparent"] == "LA"
    reference = preprocess.image_to_mnist(encoded["RGB"], "rgb.png").input
    expected = default_predictor.classify(reference).digit
    assert expected == label
    for mode, data in encoded.items():
        x = preprocess.image_to_mnist(data, f"{mode}.png").input
        assert x is not None and x.dtype == np.float32 and x.shape == (28, 28), mode
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9, mode
        assert x[reference > 0.5].mean() > 0.6 and x[reference < 0.05].mean() < 0.1, f"{mode}: ink is not bright"
        assert np.abs(x - reference).mean() < 0.1, mode  # P and 1-bit lose the anti-aliasing: up to ~0.07
        assert default_predictor.classify(x).digit == expected, mode


# ---------- case 9: degenerate drawings ----------


def _canvas(background_alpha: int) -> np.ndarray:
    """An empty canvas as st_canvas returns it: RGBA uint8, black background (transparent or opaque)."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = background_alpha
    return canvas


def _strokes(canvas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    canvas = canvas.copy()
    canvas[mask] = (255, 255, 255, 255)
    return canvas


def _drawings(background_alpha: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[:280, :280]
    empty = _canvas(background_alpha)
    return {
        "empty": empty,
        "single-dot": _strokes(empty, (yy - 140) ** 2 + (xx - 140) ** 2 < 10**2),
        "one-edge": _strokes(empty, xx < 20),
        "full-of-ink": _strokes(empty, np.ones((280, 280), bool)),
    }


@pytest.mark.parametrize("background_alpha", [0, 255], ids=["transparent", "opaque"])
@pytest.mark.parametrize("drawing", ["empty", "single-dot", "one-edge", "full-of-ink"])
def test_case09_degenerate_drawing_gives_a_message_or_a_prediction(default_predictor, drawing, background_alpha):
    prepared, prediction = default_predictor.predict_image(_drawings(background_alpha)[drawing])
    if drawing in ("empty", "full-of-ink"):  # nothing that could be a digit: say so
        assert prepared.empty and prediction is None
        assert prepared.message and "\n" not in prepared.message
        # A uniform canvas cannot say which colour is ink; either message tells the user what to do.
        assert "no digit" in prepared.message or "all ink" in prepared.message
    else:  # a mark: the model gets a valid input and answers
        assert prepared.input.dtype == np.float32 and prepared.input.shape == (28, 28)
        assert 0 <= prepared.input.min() and prepared.input.max() <= 1
        assert 0 <= prediction.digit <= 9 and abs(float(prediction.probabilities.sum()) - 1) < 1e-3


def test_case09_blank_uploads_give_a_message(tmp_path, capsys):
    for name, image in {"white.png": Image.new("L", (64, 64), 255), "black.png": Image.new("L", (64, 64), 0)}.items():
        assert preprocess.image_to_mnist(png_bytes(image), name).empty
        (tmp_path / name).write_bytes(png_bytes(image))
        assert_one_line_error(*run_cli(capsys, "predict", tmp_path / name)[::2], contains="no digit")


def test_case06_upload_check_lives_in_mnist_core():
    """The Draw page hands the uploaded bytes to mnist_core, so the server checks them whatever the browser sent."""
    page = (ROOT / "dashboard" / "views" / "draw.py").read_text()
    assert "preprocess.image_to_mnist(upload.getvalue()" in page
    assert Path(preprocess.__file__).parent.name == "mnist_core"
