"""`predict`: classify image files, or folders of them."""

from __future__ import annotations

import json
from pathlib import Path

from mnist_core.errors import LabError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify image files or folders of images")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", default="default")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def image_paths(items: list[str]) -> list[Path]:
    paths = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(c for c in p.iterdir() if c.suffix.lower() in IMAGE_SUFFIXES and c.is_file())
            if not found:
                raise LabError(f"{p}: no PNG, JPEG, BMP or GIF files in this folder")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise LabError(f"{p}: no such file or folder")
    return paths


def run(args, events) -> None:
    from mnist_core import preprocess
    from mnist_core.predict import Predictor

    paths = image_paths(args.images)
    prepared = []
    for p in paths:  # every file is checked before any model is loaded
        if p.stat().st_size > preprocess.MAX_BYTES:  # checked before reading, so a huge file is never loaded
            raise LabError(f"{p.name}: the file is larger than {preprocess.MAX_BYTES // (1024 * 1024)} MB")
        item = preprocess.image_to_mnist(p.read_bytes(), p.name)
        if item.empty:
            raise LabError(f"{p.name}: {item.message}")
        prepared.append(item)
    predictor = Predictor.load(args.model)
    results = []
    for path, item in zip(paths, prepared, strict=True):
        pred = predictor.classify(item.input)
        results.append({"file": str(path), "prediction": pred.digit,
                        "probabilities": [round(float(v), 6) for v in pred.probabilities]})
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        probs = " ".join(f"{d}:{p:.3f}" for d, p in enumerate(r["probabilities"]))
        print(f"{r['file']}: {r['prediction']}  ({probs})")
