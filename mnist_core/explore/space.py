"""What a study searches: its dimensions, the one check of a search space, and one trial's model.

Every trial starts from the fast-cnn preset and applies its parameters (`build_trial`). A search space is
checked once, on the way in (`validate`), and travels from there as a `SearchSpace`; a space read back
from a study's storage was checked when it was stored.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from mnist_core import spec as specs
from mnist_core.errors import LabError

BASE_PRESET = "fast-cnn"
DEFAULT_EPOCHS = 2  # a search compares candidates; short runs rank them well enough and cost little
DEFAULT_TRAIN_LIMIT = 10000  # first N training images per trial (0 = all 60,000); documented in the README

# Dimension -> (kind, what it sets). Names follow the flags of the grid command this replaces.
DIMENSIONS: dict[str, tuple[type, str]] = {
    "rate": (float, "learning rate"),
    "batch": (int, "batch size"),
    "epochs": (int, "epochs"),
    "optimizer": (str, f"optimizer ({', '.join(specs.OPTIMIZERS)})"),
    "schedule": (str, f"learning-rate schedule ({', '.join(specs.SCHEDULES)})"),
    "blocks": (int, "conv blocks (0 = an MLP)"),
    "conv": (int, "filters of the first conv block (doubling per block)"),
    "kernel": (int, "conv kernel size"),
    "pool": (str, f"pooling after each conv block ({', '.join(specs.POOLINGS)})"),
    "layers": (int, "dense layers"),
    "dense": (int, "units per dense layer"),
    "dropout": (float, "dropout after each dense layer"),
    "activation": (str, f"activation ({', '.join(specs.ACTIVATIONS)})"),
}

# Small and cheap, around fast-cnn: 3 x 3 x 2 x 2 = 36 grid points.
DEFAULT_SPACE = {
    "rate": {"choices": [0.001, 0.003, 0.01]},
    "conv": {"choices": [16, 24, 32]},
    "dense": {"choices": [64, 128]},
    "dropout": {"choices": [0.1, 0.25]},
}

# Optimiser steps a trial needs to learn at all. Measured on real MNIST with two corners of the default
# space (rate 0.001/conv 16 and rate 0.01/conv 32), fast-cnn's one-cycle schedule, batch 128 unless noted:
# 8-30 steps gave 6-35% validation accuracy (1,000-4,000 images x 1 epoch, 2,000 x 2), 36 steps 39-50%,
# 44-45 steps 71-86% (3,000 x 2, 2,000 x 3), 57 steps 85-95% (8,000 x 1, and 2,000 x 1 at batch 32),
# 71 steps 90-95% (10,000 x 1). Steps, not images or epochs, decide it.
MIN_TRAIN_STEPS = 40


@dataclass(frozen=True)
class SearchSpace:
    """A checked search space: {dim: {"choices": [...]}} or {dim: {"low", "high", "log"[, "step"]}}."""

    dims: dict

    @classmethod
    def from_stored(cls, dims: dict) -> SearchSpace:
        """A space read back from a study (checked when the study was created)."""
        return cls(dims)

    @property
    def finite(self) -> bool:
        """True when every dimension is a list of choices, so the points can be counted and listed."""
        return all("choices" in d for d in self.dims.values())

    def grid_size(self) -> int | None:
        return math.prod(len(d["choices"]) for d in self.dims.values()) if self.finite else None

    def points(self) -> Iterator[dict]:
        """Every combination of a finite space, in grid order."""
        if not self.finite:
            raise LabError("a space with ranges has no list of points")
        names = list(self.dims)
        for values in itertools.product(*(self.dims[n]["choices"] for n in names)):
            yield dict(zip(names, values, strict=True))

    def describe(self) -> str:
        """'rate 0.001|0.01; dense 32..256 (log)'."""
        parts = []
        for dim, dom in self.dims.items():
            if "choices" in dom:
                parts.append(f"{dim} {'|'.join(str(v) for v in dom['choices'])}")
            else:
                parts.append(f"{dim} {dom['low']}..{dom['high']}{' (log)' if dom['log'] else ''}")
        return "; ".join(parts)


def _coerce(dim: str, value):
    kind = DIMENSIONS[dim][0]
    if kind is str:
        if not isinstance(value, str):
            raise LabError(f"{dim}: expected a name, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LabError(f"{dim}: expected a number, got {value!r}")
    if kind is int:
        if float(value) != int(value):
            raise LabError(f"{dim}: expected a whole number, got {value!r}")
        return int(value)
    return float(value)


def parse_values(dim: str, text: str) -> list:
    """'0.001,0.01' -> [0.001, 0.01] for a flag or a text box; numbers stay numbers, names stay names."""
    if dim not in DIMENSIONS:
        raise LabError(f"unknown dimension {dim!r}; known: {', '.join(DIMENSIONS)}")
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise LabError(f"--{dim}: give at least one value")
    values = []
    for item in items:
        if DIMENSIONS[dim][0] is str:
            values.append(item)
            continue
        try:
            values.append(_coerce(dim, float(item) if any(c in item for c in ".eE") else int(item)))
        except ValueError:
            raise LabError(f"--{dim}: {item!r} is not a number") from None
    return values


def _range(dim: str, dom: dict) -> dict:
    unknown = set(dom) - {"low", "high", "log", "step"}
    if unknown or "low" not in dom or "high" not in dom:
        raise LabError(f"search space: {dim}: a range needs low and high (optional log, step)")
    if DIMENSIONS[dim][0] is str:
        raise LabError(f"search space: {dim} takes a list of names, not a range")
    low, high = _coerce(dim, dom["low"]), _coerce(dim, dom["high"])
    log = bool(dom.get("log", False))
    if not low < high:
        raise LabError(f"search space: {dim}: low must be below high, got {low} and {high}")
    if log and low <= 0:
        raise LabError(f"search space: {dim}: a log range needs low > 0")
    entry = {"low": low, "high": high, "log": log}
    if dom.get("step") is not None:
        if log:
            raise LabError(f"search space: {dim}: step and log cannot be combined")
        entry["step"] = _coerce(dim, dom["step"])
        if entry["step"] <= 0:
            raise LabError(f"search space: {dim}: step must be positive")
    return entry


def validate(raw: dict) -> SearchSpace:
    """The one check of a search space, from a flag, a file or the page. A bare list means choices.
    Every value is applied to the base model, so a bad one fails here, with its name, not in trial 37."""
    if isinstance(raw, SearchSpace):
        return raw
    if not isinstance(raw, dict) or not raw:
        raise LabError("search space: expected a JSON object with at least one dimension")
    dims = {}
    for dim, dom in raw.items():
        if dim not in DIMENSIONS:
            raise LabError(f"search space: unknown dimension {dim!r}; known: {', '.join(DIMENSIONS)}")
        if isinstance(dom, list):
            dom = {"choices": dom}
        if not isinstance(dom, dict):
            raise LabError(f"search space: {dim} must be a list of values or {{\"low\", \"high\"}}")
        if "choices" in dom:
            if set(dom) != {"choices"} or not isinstance(dom["choices"], list) or not dom["choices"]:
                raise LabError(f"search space: {dim}: choices must be a non-empty list and nothing else")
            dims[dim] = {"choices": list(dict.fromkeys(_coerce(dim, v) for v in dom["choices"]))}
            probes = dims[dim]["choices"]
        else:
            dims[dim] = _range(dim, dom)
            probes = [dims[dim]["low"], dims[dim]["high"]]
        for value in probes:
            try:
                build_trial({dim: value})
            except LabError as exc:
                raise LabError(f"search space: {dim}={value!r}: {exc}") from None
    return SearchSpace(dims)


def load_space_file(path: str | Path) -> dict:
    """The raw JSON of a --space file (checked by `validate` once merged with the flags)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LabError(f"{path}: no such file") from None
    except OSError as exc:
        raise LabError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except (ValueError, RecursionError) as exc:
        raise LabError(f"{path}: not valid JSON ({exc})") from None


def build_trial(params: dict, epochs: int = DEFAULT_EPOCHS,
                train_size: int = specs.TRAIN_SIZE) -> tuple[specs.ModelSpec, specs.TrainConfig]:
    """The base preset with a trial's parameters applied; validated."""
    spec, config = specs.preset(BASE_PRESET).copy()
    config = replace(config, epochs=epochs)
    p = dict(params)
    config = replace(config, **{field: p.pop(dim) for dim, field in
                                (("rate", "learning_rate"), ("batch", "batch_size"), ("epochs", "epochs"),
                                 ("optimizer", "optimizer"), ("schedule", "schedule")) if dim in p})
    blocks = p.pop("blocks", len(spec.conv_blocks))
    while len(spec.conv_blocks) < blocks:  # deeper: copy the last block with twice the filters
        last = spec.conv_blocks[-1]
        spec.conv_blocks.append(replace(last, filters=last.filters * 2))
    spec.conv_blocks = spec.conv_blocks[:blocks]
    spec.kind = "cnn" if blocks else "mlp"
    layers = p.pop("layers", len(spec.dense_layers))
    template = spec.dense_layers[0] if spec.dense_layers else specs.DenseLayer()
    spec.dense_layers = (spec.dense_layers + [replace(template) for _ in range(layers)])[:layers]
    for i, block in enumerate(spec.conv_blocks):
        if "conv" in p:
            block.filters = p["conv"] * 2 ** i
        block.kernel = p.get("kernel", block.kernel)
        block.pooling = p.get("pool", block.pooling)
        block.activation = p.get("activation", block.activation)
    for layer in spec.dense_layers:
        layer.units = p.get("dense", layer.units)
        layer.dropout = p.get("dropout", layer.dropout)
        layer.activation = p.get("activation", layer.activation)
    return spec.validate(), config.validate(train_size)


def train_steps(train_limit: int, epochs: int, batch_size: int | None = None) -> int:
    """Optimiser steps one trial takes: batches per epoch on the training part of the subset, times epochs."""
    base = specs.preset(BASE_PRESET).config
    images = train_limit or specs.TRAIN_SIZE
    train_part = images - int(round(images * base.validation_split))  # as data.split does
    return math.ceil(train_part / (batch_size or base.batch_size)) * epochs


def too_small_warning(train_limit: int, epochs: int, batch_size: int | None = None) -> str | None:
    """One line if trials this small are unlikely to learn anything, else None.

    `train_limit` 0 means all 60,000 images; `batch_size` defaults to the base preset's."""
    steps = train_steps(train_limit, epochs, batch_size)
    if steps >= MIN_TRAIN_STEPS:
        return None
    images = f"{train_limit:,} images" if train_limit else "all images"
    return (f"too small to learn: {images} for {epochs} epoch{'s' if epochs != 1 else ''} is {steps} training "
            f"steps per trial; under {MIN_TRAIN_STEPS}, trials barely start to learn and the search ranks noise. "
            "Use more images or epochs.")


def too_small_for(search_space: SearchSpace, train_limit: int, epochs: int) -> str | None:
    """too_small_warning for a study's smallest trial: the fewest epochs and the largest batch it may try."""
    def extreme(dim: str, pick, default):
        dom = search_space.dims.get(dim)
        if dom is None:
            return default
        return pick(dom["choices"]) if "choices" in dom else pick([dom["low"], dom["high"]])

    return too_small_warning(train_limit, extreme("epochs", min, epochs), extreme("batch", max, None))
