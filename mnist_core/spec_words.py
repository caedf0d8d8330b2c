"""Specs and configs in words, aspect by aspect, so two models' differences read as a sentence.

"3 conv blocks 16-32-64 with batch-norm vs none; dense 128 vs 512-512 with dropout 0.2" says what
twenty rows of `spec.conv_blocks[0].padding` do not. Works on metadata dicts, which may be old or partial.
"""

from __future__ import annotations

# TrainConfig.augment's levels in words (mnist_core/augment.py defines what each does).
AUGMENT_WORDS = {False: "none", True: "light: small shifts and rotations",
                 "real-input": "real input: shifts, turns, scale, slant, stroke width, elastic, blur, noise"}


def _same(values: list):
    return values[0] if values and all(v == values[0] for v in values) else None


def _joined(values: list) -> str:
    return "-".join(_number(v) for v in values)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def conv_words(blocks: list[dict]) -> str:
    if not blocks:
        return "none"
    n = len(blocks)
    parts = [f"{n} conv block{'s' if n > 1 else ''} {_joined([b.get('filters') for b in blocks])}"]
    kernel = _same([b.get("kernel", 3) for b in blocks])
    details = [f"{kernel}x{kernel}" if kernel else "kernels " + _joined([b.get("kernel") for b in blocks])]
    activation = _same([b.get("activation", "relu") for b in blocks])
    details.append(activation or "activations " + "-".join(str(b.get("activation")) for b in blocks))
    padding = _same([b.get("padding", "valid") for b in blocks])
    details.append(f"{padding} padding" if padding else "padding " + "-".join(str(b.get("padding")) for b in blocks))
    pooling = _same([b.get("pooling", "max") for b in blocks])
    details.append({"none": "no pooling", None: "pooling " + "-".join(str(b.get("pooling")) for b in blocks)}
                   .get(pooling, f"{pooling}-pool"))
    parts.append(f"({', '.join(details)})")
    norms = [i + 1 for i, b in enumerate(blocks) if b.get("batch_norm")]
    if norms:
        parts.append("with batch-norm" if len(norms) == n else f"with batch-norm in block {_joined(norms)}")
    parts.append(_dropout_words([b.get("dropout", 0.0) for b in blocks]))
    return " ".join(p for p in parts if p)


def dense_words(layers: list[dict]) -> str:
    if not layers:
        return "none (straight to the 10 outputs)"
    activation = _same([d.get("activation", "relu") for d in layers])
    words = f"dense {_joined([d.get('units') for d in layers])} " + (
        activation or "-".join(str(d.get("activation")) for d in layers))
    dropout = _dropout_words([d.get("dropout", 0.0) for d in layers])
    return f"{words} {dropout}".strip()


def _dropout_words(rates: list[float]) -> str:
    if not any(rates):
        return ""
    same = _same(rates)
    return f"with dropout {_number(same)}" if same is not None else f"with dropout {_joined(rates)}"


def training_words(config: dict) -> dict[str, str]:
    schedule = config.get("schedule", "constant")
    warmup = config.get("warmup_fraction", 0.0)
    optimizer = f"{config.get('optimizer', '?')}, learning rate {_number(config.get('learning_rate', '?'))}"
    if schedule != "constant":
        optimizer += f", {schedule} schedule" + (f" ({warmup:.0%} warm-up)" if warmup else "")
    epochs = config.get("epochs", "?")
    patience = config.get("patience", 0)
    augment = config.get("augment", False)
    split = config.get("validation_split", 0.1)
    return {
        "Optimizer": optimizer,
        "Batch and epochs": f"batch {config.get('batch_size', '?')}, {epochs} epoch{'s' if epochs != 1 else ''}"
                            + (f", early stopping after {patience} without improvement" if patience else ""),
        "Augmentation": AUGMENT_WORDS.get(augment, str(augment)),
        "Adversarial training": (f"FGSM at eps {_number(config['adversarial_eps'])} on half of each batch"
                                 if config.get("adversarial_eps") else "none"),
        "Validation and seed": (f"{split:.0%} held out" if split else "no validation split")
                               + f", seed {config.get('seed', '?')}",
    }


def aspects(metadata: dict) -> dict[str, str]:
    """{aspect: words} for one model's metadata; an imported model without a spec says so."""
    spec, config = metadata.get("spec") or {}, metadata.get("config") or {}
    if metadata.get("kind") == "ensemble":
        return {"Network": str(metadata.get("description") or "an ensemble")}
    if not spec:
        network = {"Network": "not described (no lab spec)"}
    else:
        network = {"Conv blocks": conv_words(spec.get("conv_blocks") or []),
                   "Dense layers": dense_words(spec.get("dense_layers") or [])}
    return network | (training_words(config) if config else {})


def diff_rows(metadata: dict[str, dict]) -> tuple[list[dict], list[str]]:
    """One row per aspect with each model's words, and the aspects whose words differ."""
    words = {name: aspects(m) for name, m in metadata.items()}
    keys = list(dict.fromkeys(k for w in words.values() for k in w))
    rows = [{"aspect": k, **{name: w.get(k, "—") for name, w in words.items()}} for k in keys]
    differing = [r["aspect"] for r in rows if len({r[name] for name in words}) > 1]
    return rows, differing


def one_line(meta_a: dict, meta_b: dict) -> str:
    """What differs between two models, e.g. "conv blocks: 3 conv blocks 16-32-64 ... vs none; dense ...";
    "same spec and config" when nothing does."""
    a, b = aspects(meta_a), aspects(meta_b)
    parts = [f"{k.lower()}: {a.get(k, '—')} vs {b.get(k, '—')}" for k in dict.fromkeys([*a, *b])
             if a.get(k) != b.get(k)]
    return "; ".join(parts) if parts else "same spec and config"
