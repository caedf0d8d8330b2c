"""`predict`: classify image files, or folders of them."""

from __future__ import annotations

import json
from pathlib import Path

from mnist_core.display import printable
from mnist_core.errors import LabError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
# Files per command: each one is decoded on its own and only its 28x28 input kept (3 KB), so this bounds the
# time and the output, not memory. A larger batch is a loop over folders.
MAX_FILES = 1000


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help=f"classify image files or folders of images (at most {MAX_FILES:,} files)")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", default="default")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def _too_many(found: int) -> LabError:
    return LabError(f"more than {MAX_FILES:,} image files in one command (found {found:,} so far): "
                    "classify them in smaller batches")


def image_paths(items: list[str]) -> list[Path]:
    """The image files named or inside the folders named; refused past MAX_FILES while listing, so a folder
    of a million files is never listed whole."""
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = []
            for child in p.iterdir():
                if child.suffix.lower() in IMAGE_SUFFIXES and child.is_file():
                    found.append(child)
                    if len(paths) + len(found) > MAX_FILES:
                        raise _too_many(len(paths) + len(found))
            if not found:
                raise LabError(f"{p}: no PNG, JPEG, BMP or GIF files in this folder")
            paths.extend(sorted(found))
        elif p.is_file():
            paths.append(p)
        else:
            raise LabError(f"{p}: no such file or folder")
        if len(paths) > MAX_FILES:
            raise _too_many(len(paths))
    return paths


def model_input(path: Path):
    """One file -> its float32 28x28 model input. The size is checked before reading and the pixel count
    before decoding (preprocess.open_image); nothing but the 28x28 result outlives the call."""
    from mnist_core import preprocess

    if path.stat().st_size > preprocess.MAX_BYTES:  # checked before reading, so a huge file is never loaded
        raise LabError(f"{path.name}: the file is larger than {preprocess.MAX_BYTES // (1024 * 1024)} MB")
    item = preprocess.image_to_mnist(path.read_bytes(), path.name, keep_steps=False)
    if item.empty:
        raise LabError(f"{path.name}: {item.message}")
    return item.input


def run(args, events) -> None:
    from mnist_core.predict import Predictor

    paths = image_paths(args.images)
    inputs = [model_input(p) for p in paths]  # every file is checked before any model is loaded
    predictor = Predictor.load(args.model)
    results = []
    for path, image in zip(paths, inputs, strict=True):
        pred = predictor.classify(image)
        results.append({"file": str(path), "prediction": pred.digit,
                        "probabilities": [round(float(v), 6) for v in pred.probabilities]})
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        probs = " ".join(f"{d}:{p:.3f}" for d, p in enumerate(r["probabilities"]))
        print(f"{printable(r['file'])}: {r['prediction']}  ({probs})")
