"""Side-by-side comparison of saved models: table rows, best values, spec differences, latency, re-evaluation.

Everything here works on stored metadata (so a comparison opens at once) or on a model already loaded;
the Compare page only draws what these functions return.
"""

from __future__ import annotations

import time

import numpy as np

from mnist_core import evaluate, registry
from mnist_core.data import Mnist

# Column -> "max" or "min": which end of the column is best. Columns not listed are not ranked.
BEST = {
    "parameters": "min",
    "train seconds": "min",
    "test accuracy": "max",
    "test loss": "min",
    "macro F1": "max",
    "latency ms": "min",
    "eval images/s": "max",
}


def table_rows(metadata: dict[str, dict], latency_ms: dict[str, float] | None = None) -> list[dict]:
    """One row per model from its stored metadata; latency (ms per single image) is measured by the caller."""
    rows = []
    for name, m in metadata.items():
        test = m.get("test", {})
        rows.append({
            "model": name,
            "type": m.get("spec", {}).get("kind", ""),
            "parameters": m.get("parameters"),
            "epochs": len(m.get("history", [])),
            "train seconds": m.get("train_seconds"),
            "test accuracy": test.get("accuracy"),
            "test loss": test.get("loss"),
            "macro F1": test.get("macro_f1"),
            "latency ms": (latency_ms or {}).get(name),
            "eval images/s": m.get("eval_images_per_second"),
        })
    return rows


def best_rows(rows: list[dict]) -> dict[str, list[int]]:
    """For each ranked column, the indices of the rows holding its best value (ties all win)."""
    marks = {}
    for column, direction in BEST.items():
        values = [(i, r.get(column)) for i, r in enumerate(rows) if isinstance(r.get(column), (int, float))]
        if len(values) < 2:
            continue
        pick = max if direction == "max" else min
        best = pick(v for _, v in values)
        marks[column] = [i for i, v in values if v == best]
    return marks


def _flatten(value, prefix: str, out: dict) -> None:
    if isinstance(value, dict):
        for key, v in value.items():
            _flatten(v, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        out[f"{prefix} (count)"] = len(value)
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def spec_table(metadata: dict[str, dict]) -> tuple[list[dict], list[str]]:
    """Every spec and config field as a row with one column per model, and the fields that differ.

    A field a model lacks (e.g. a third dense layer) shows as None and counts as different.
    """
    flat = {}
    for name, m in metadata.items():
        fields: dict = {}
        _flatten({"spec": m.get("spec", {}), "config": m.get("config", {})}, "", fields)
        flat[name] = fields
    keys = list(dict.fromkeys(k for fields in flat.values() for k in fields))
    rows, differing = [], []
    for key in keys:
        values = {name: flat[name].get(key) for name in flat}
        rows.append({"field": key, **values})
        if len({repr(v) for v in values.values()}) > 1:
            differing.append(key)
    return rows, differing


def single_image_latency_ms(predictor, images: np.ndarray, repeats: int = 50) -> float:
    """Mean wall time of one single-image prediction (what one canvas stroke costs), in milliseconds."""
    x = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
    for i in range(3):  # warm-up: the first call traces the function
        predictor.classify(x[i % len(x)])
    t0 = time.perf_counter()
    for i in range(repeats):
        predictor.classify(x[i % len(x)])
    return (time.perf_counter() - t0) / repeats * 1000


def predictions(probs: np.ndarray) -> np.ndarray:
    return np.asarray(probs).argmax(axis=1)


def disagreements(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Test indices where the two models predict different digits; those where one is right come first."""
    idx = np.flatnonzero(pred_a != pred_b)
    one_right = (pred_a[idx] == labels[idx]) | (pred_b[idx] == labels[idx])
    return idx[np.argsort(~one_right, kind="stable")]


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest p (k from 0) times (m - k), kept monotone, capped at 1.

    Rejecting where the adjusted p < alpha keeps the chance of any false "significant" across all pairs <= alpha.
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))  # never below a smaller p's adjustment
        adjusted[i] = running
    return adjusted


def pairwise_mcnemar(predicted: dict[str, np.ndarray], labels: np.ndarray, alpha: float = 0.05) -> list[dict]:
    """McNemar's exact test for every pair of models (in the given order), Holm-corrected across the pairs."""
    names = list(predicted)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    results = [evaluate.mcnemar(predicted[a], predicted[b], labels) for a, b in pairs]
    adjusted = holm([r["p_value"] for r in results])
    return [{"model A": a, "model B": b, "only A right": r["only_a_right"], "only B right": r["only_b_right"],
             "p": r["p_value"], "Holm p": p_holm, "significant": p_holm < alpha}
            for (a, b), r, p_holm in zip(pairs, results, adjusted, strict=True)]


def a_better_matrix(cm_a: np.ndarray, cm_b: np.ndarray) -> np.ndarray:
    """Confusion-matrix difference where positive always means A did better.

    On the diagonal, A's correct counts minus B's; off it, B's mistakes minus A's (fewer mistakes is better).
    """
    cm_a, cm_b = np.asarray(cm_a), np.asarray(cm_b)
    diff = cm_b - cm_a
    np.fill_diagonal(diff, np.diag(cm_a) - np.diag(cm_b))
    return diff


def disagreement_page(ids: np.ndarray, page: int, per_page: int = 40) -> np.ndarray:
    """The ids on one 1-based page; a page past the end is clamped to the last one."""
    pages = max(1, -(-len(ids) // per_page))
    page = min(max(1, page), pages)
    return ids[(page - 1) * per_page: page * per_page]


def disagreement_title(label: int, pred_a: int, pred_b: int) -> str:
    """e.g. "7: A✓ 7 | B✗ 9": the true digit, then each model's answer marked right or wrong."""
    def mark(pred: int) -> str:
        return "✓" if pred == label else "✗"

    return f"{label}: A{mark(pred_a)} {pred_a} | B{mark(pred_b)} {pred_b}"


def mcnemar_verdict(result: dict, name_a: str, name_b: str, alpha: float = 0.05) -> str:
    a, b, p = result["only_a_right"], result["only_b_right"], result["p_value"]
    if a + b == 0:
        return f"{name_a} and {name_b} are right and wrong on exactly the same images."
    if p >= alpha:
        return f"No significant difference (p = {p:.3g} >= {alpha}): the gap could be chance."
    better = name_a if a > b else name_b
    return f"{better} is significantly better (p = {p:.3g} < {alpha})."


def reevaluate(name: str, mnist: Mnist) -> dict:
    """Recompute a saved model's test metrics and evaluation speed, and store them in its metadata."""
    model = registry.load(name)
    t0 = time.perf_counter()
    test, _ = evaluate.evaluate(model, mnist.x_test, mnist.y_test)
    seconds = time.perf_counter() - t0
    changes = {"test": test, "eval_images_per_second": len(mnist.x_test) / seconds}
    registry.update_metadata(name, changes)
    return changes
