"""ModelSpec and TrainConfig: plain data describing a network and how to train it.

Their JSON is the "model description file" users may write by hand, so every
field is validated with a message naming the field and its allowed range.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mnist_core.errors import LabError

ACTIVATIONS = ("relu", "gelu", "elu", "selu", "tanh", "sigmoid", "swish", "linear")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adadelta")
SCHEDULES = ("constant", "cosine", "one-cycle")
POOLINGS = ("max", "avg", "none")
PADDINGS = ("valid", "same")
KINDS = ("mlp", "cnn")
REAL_INPUT = "real-input"
AUGMENT_LEVELS = (False, True, REAL_INPUT)  # TrainConfig.augment; mnist_core.augment defines what each does
MAX_EPOCHS = 1000
MAX_ADVERSARIAL_EPS = 0.3  # TrainConfig.adversarial_eps: beyond it MNIST digits stop being the digit they were
TRAIN_SIZE = 60000


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise LabError(message)


def _number(value, name: str, lo, hi, *, integer: bool, lo_open=False, hi_open=False):
    # Every message names the field and the allowed range, whatever is wrong with the value.
    rng = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    wanted = f"{name} must be {'a whole number' if integer else 'a number'} in {rng}, got {repr(value)[:40]}"
    _check(not isinstance(value, bool) and isinstance(value, (int, float)), wanted)
    _check(abs(value) < 1e300 and math.isfinite(value), wanted)  # before int(): int(nan) raises; 10**400 overflows
    _check(not (integer and float(value) != int(value)), wanted)
    lo_ok = value > lo if lo_open else value >= lo
    hi_ok = value < hi if hi_open else value <= hi
    _check(lo_ok and hi_ok, wanted)
    return int(value) if integer else float(value)


def _choice(value, name: str, allowed) -> str:
    _check(value in allowed, f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


@dataclass
class DenseLayer:
    units: int = 128
    activation: str = "relu"
    dropout: float = 0.0

    def validate(self, where: str) -> None:
        _number(self.units, f"{where}.units", 1, 8192, integer=True)
        _choice(self.activation, f"{where}.activation", ACTIVATIONS)
        _number(self.dropout, f"{where}.dropout", 0, 1, integer=False, hi_open=True)


@dataclass
class ConvBlock:
    filters: int = 32
    kernel: int = 3
    activation: str = "relu"
    padding: str = "valid"
    pooling: str = "max"
    batch_norm: bool = False
    dropout: float = 0.0

    def validate(self, where: str) -> None:
        _number(self.filters, f"{where}.filters", 1, 1024, integer=True)
        _number(self.kernel, f"{where}.kernel", 1, 9, integer=True)
        _choice(self.activation, f"{where}.activation", ACTIVATIONS)
        _choice(self.padding, f"{where}.padding", PADDINGS)
        _choice(self.pooling, f"{where}.pooling", POOLINGS)
        _check(isinstance(self.batch_norm, bool), f"{where}.batch_norm must be true or false")
        _number(self.dropout, f"{where}.dropout", 0, 1, integer=False, hi_open=True)


@dataclass
class ModelSpec:
    kind: str = "mlp"
    conv_blocks: list[ConvBlock] = field(default_factory=list)
    dense_layers: list[DenseLayer] = field(default_factory=lambda: [DenseLayer()])

    def validate(self) -> ModelSpec:
        _choice(self.kind, "kind", KINDS)
        # Session state or a caller may hand over anything; check the shapes before reading them.
        _check(isinstance(self.conv_blocks, list) and all(isinstance(b, ConvBlock) for b in self.conv_blocks),
               "conv_blocks must be a list of conv blocks")
        _check(isinstance(self.dense_layers, list) and all(isinstance(d, DenseLayer) for d in self.dense_layers),
               "dense_layers must be a list of dense layers")
        if self.kind == "cnn":
            _check(1 <= len(self.conv_blocks) <= 8, f"conv_blocks: a cnn needs 1 to 8 conv blocks, got {len(self.conv_blocks)}")
        else:
            _check(not self.conv_blocks, "conv_blocks: an mlp has no conv blocks (use kind 'cnn')")
        _check(len(self.dense_layers) <= 8, f"dense_layers: at most 8 dense layers, got {len(self.dense_layers)}")
        size = 28
        for i, block in enumerate(self.conv_blocks):
            block.validate(f"conv_blocks[{i}]")
            if block.padding == "valid":
                size -= block.kernel - 1
            if block.pooling != "none":
                size //= 2
            _check(size >= 1, f"conv_blocks[{i}]: the 28x28 input shrinks below 1x1 here; use padding 'same' or fewer blocks")
        for i, layer in enumerate(self.dense_layers):
            layer.validate(f"dense_layers[{i}]")
        from mnist_core import cost  # imports this module; the limits live there with the arithmetic

        cost.check_spec(self)  # parameters and FLOPs, before anything is built
        return self

    def describe(self) -> str:
        """A short slug such as cnn-c32-c64-d128, used to suggest model names."""
        parts = [self.kind] + [f"c{b.filters}" for b in self.conv_blocks] + [f"d{d.units}" for d in self.dense_layers]
        return "-".join(parts)


@dataclass
class TrainConfig:
    """How to train: the "config" object of a model description file. Every field may be left out.

    ================  =========  ===============================================================================
    field             default    meaning, unit and allowed values
    ================  =========  ===============================================================================
    optimizer         "adam"     one of adam, adamw, sgd (Nesterov momentum 0.9), rmsprop, adadelta
    learning_rate     0.001      step size (the peak, with a schedule); a number in (0, 10]
    schedule          "constant" learning-rate schedule: constant, cosine (decay to 1% over the run, after any
                                 warm-up) or one-cycle (warm up from lr/10 to lr, then cosine down to 0.2%)
    warmup_fraction   0.0        share of all training steps spent warming up, in [0, 1); cosine and one-cycle
                                 only (one-cycle uses 0.25 when it is 0)
    batch_size        128        images per training step, a whole number from 1 to the training split's size
                                 (54,000 with the default split)
    epochs            5          passes over the training split, a whole number in [1, 1000]
    validation_split  0.1        share of the 60,000 training images held out for validation, in [0, 0.5];
                                 0 trains on all of them and reports no validation scores
    seed              0          random seed for the split, shuffling, augmentation and initial weights, a whole
                                 number in [0, 2**31 - 1]; the same spec, config and seed give the same model
    augment           false      how training images are varied (mnist_core.augment defines each level):
                                 false: not at all; true ("light"): small random rotations (up to about 14
                                 degrees) and shifts (up to 8%); "real-input": rotation up to 22 degrees, scale
                                 0.7-1.2, slant, shifts up to 4 pixels, elastic distortion, thinner and
                                 thicker strokes, some blur and noise (what drawings and other writers do)
    patience          0          early stopping: end training once the validation loss has not improved for
                                 this many epochs, and keep the weights of the best epoch; 0 turns it off;
                                 a whole number in [0, 1000]; needs validation_split > 0
    adversarial_eps   0.0        adversarial training: when above 0, half of every training batch is replaced by
                                 FGSM examples (from a random start) made against the current weights, each
                                 pixel moved by at most this much (0-1 pixel units); a number in [0, 0.3];
                                 0 trains as without it (mnist_core.adversarial)
    ================  =========  ===============================================================================
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    batch_size: int = 128
    epochs: int = 5
    validation_split: float = 0.1
    seed: int = 0
    augment: bool | str = False
    patience: int = 0
    adversarial_eps: float = 0.0

    def validate(self, train_size: int = TRAIN_SIZE) -> TrainConfig:
        _choice(self.optimizer, "optimizer", OPTIMIZERS)
        _number(self.learning_rate, "learning_rate", 0, 10, integer=False, lo_open=True)
        _choice(self.schedule, "schedule", SCHEDULES)
        _number(self.warmup_fraction, "warmup_fraction", 0, 1, integer=False, hi_open=True)
        _number(self.validation_split, "validation_split", 0, 0.5, integer=False)
        max_batch = int(train_size * (1 - self.validation_split))
        _number(self.batch_size, "batch_size", 1, max_batch, integer=True)
        _number(self.epochs, "epochs", 1, MAX_EPOCHS, integer=True)
        _number(self.seed, "seed", 0, 2**31 - 1, integer=True)
        _check(isinstance(self.augment, bool) or self.augment == REAL_INPUT,
               f"augment must be false, true or {REAL_INPUT!r}, got {self.augment!r}"[:120])
        _number(self.patience, "patience", 0, MAX_EPOCHS, integer=True)
        _number(self.adversarial_eps, "adversarial_eps", 0, MAX_ADVERSARIAL_EPS, integer=False)
        _check(not self.patience or self.validation_split > 0,
               "patience needs a validation split: early stopping watches the validation loss, "
               "so set validation_split above 0 or patience to 0")
        return self


# ---------- JSON ----------


def _build(cls, data, where: str):
    if isinstance(data, cls):
        return data  # a field the JSON left out keeps its dataclass default
    _check(isinstance(data, dict), f"{where} must be a JSON object")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    _check(not unknown, f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**data)


def spec_from_dict(data: dict) -> ModelSpec:
    spec = _build(ModelSpec, data, "spec")
    _check(isinstance(spec.conv_blocks, list), "conv_blocks must be a list")
    _check(isinstance(spec.dense_layers, list), "dense_layers must be a list")
    spec.conv_blocks = [_build(ConvBlock, b, f"conv_blocks[{i}]") for i, b in enumerate(spec.conv_blocks)]
    spec.dense_layers = [_build(DenseLayer, d, f"dense_layers[{i}]") for i, d in enumerate(spec.dense_layers)]
    return spec.validate()


def config_from_dict(data: dict) -> TrainConfig:
    return _build(TrainConfig, data, "config").validate()


def to_dict(obj) -> dict:
    return asdict(obj)


def to_json(obj) -> str:
    return json.dumps(asdict(obj), indent=2)


def _read_json(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LabError(f"{path}: no such file") from None
    except OSError as exc:  # a folder, no permission, ...
        raise LabError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, 5000-digit ints, [[[[...
        raise LabError(f"{path}: not valid JSON ({exc})") from None


def load_spec(path: str | Path) -> ModelSpec:
    return spec_from_dict(_read_json(path))


def load_config(path: str | Path) -> TrainConfig:
    return config_from_dict(_read_json(path))


def bundle_json(spec: ModelSpec, config: TrainConfig) -> str:
    """The file the dashboard exports: {"spec": ..., "config": ...}."""
    return json.dumps({"spec": asdict(spec), "config": asdict(config)}, indent=2)


def parse_bundle(text: str | bytes) -> tuple[ModelSpec, TrainConfig | None]:
    """Read an exported {"spec", "config"} file, or a bare spec (then the config is None)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, 5000-digit ints, [[[[...
        raise LabError(f"not valid JSON ({exc})") from None
    _check(isinstance(data, dict), "the file must hold a JSON object")
    if "spec" in data:
        unknown = sorted(set(data) - {"spec", "config"})
        _check(not unknown, f"unknown field(s) {', '.join(unknown)}; known: spec, config")
        return spec_from_dict(data["spec"]), (config_from_dict(data["config"]) if "config" in data else None)
    return spec_from_dict(data), None


def __getattr__(name: str):
    # PRESETS and Preset live in mnist_core.presets (which imports this module); older callers reach them here.
    if name in ("PRESETS", "Preset"):
        from mnist_core import presets

        return getattr(presets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def preset(name: str):
    """The named preset (mnist_core.presets.preset)."""
    from mnist_core import presets

    return presets.preset(name)
