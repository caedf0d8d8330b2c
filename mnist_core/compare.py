"""Side-by-side comparison of saved models: table rows, real best values, spec differences, pairwise tests, verdict.

Everything here works on stored metadata (so a comparison opens at once) or on a model already loaded;
the Compare page only draws what these functions return.
"""

from __future__ import annotations

import numpy as np

from mnist_core import evaluate, registry, speed
from mnist_core.data import Mnist


def table_rows(metadata: dict[str, dict], timings: dict[str, dict] | None = None) -> list[dict]:
    """One row per model from its stored metadata, plus timings measured side by side (speed.measure)."""
    rows = []
    for name, m in metadata.items():
        test = m.get("test", {})
        timing = (timings or {}).get(name, {})
        rows.append({
            "model": name,
            "type": m.get("spec", {}).get("kind") or m.get("kind", ""),
            "parameters": m.get("parameters"),
            "epochs": len(m.get("history") or []) or None,  # an ensemble was never trained
            "train seconds": m.get("train_seconds"),
            "test accuracy": test.get("accuracy"),
            "test loss": test.get("loss"),
            "macro F1": test.get("macro_f1"),
            "latency ms": timing.get("latency ms"),
            "images/s": timing.get("images/s"),
        })
    return rows


def significant_leader(accuracy: dict[str, float], pairs: list[dict]) -> str | None:
    """The most accurate model if McNemar (Holm-corrected) finds it better than every other; else None."""
    if len(accuracy) < 2:
        return None
    best = max(accuracy, key=accuracy.get)
    for row in pairs:
        if best in (row["model A"], row["model B"]):
            ahead = row["only A right"] > row["only B right"] if row["model A"] == best else \
                row["only B right"] > row["only A right"]
            if not (row["significant"] and ahead):
                return None
    return best


def best_rows(rows: list[dict], timings: dict[str, dict] | None = None,
              accuracy_leader: str | None = None) -> dict[str, list[int]]:
    """For each column with a clear best, the indices of the rows holding it.

    A mark means a real difference: parameters are exact (ties all win); test accuracy is marked only for a
    significant leader (significant_leader); timings only where the leader's interleaved samples beat every
    other model's (speed.clear_winner). Train seconds, loss and F1 are never marked: each is one number from
    one run, with nothing to tell its noise by.
    """
    index = {r["model"]: i for i, r in enumerate(rows)}
    marks = {}
    params = [(i, r["parameters"]) for i, r in enumerate(rows) if isinstance(r.get("parameters"), int)]
    if len(params) > 1:
        fewest = min(v for _, v in params)
        marks["parameters"] = [i for i, v in params if v == fewest]
    if accuracy_leader in index:
        marks["test accuracy"] = [index[accuracy_leader]]
    for column, higher_is_better in (("latency ms", False), ("images/s", True)):
        samples = {n: t["samples"][column] for n, t in (timings or {}).items() if n in index}
        winner = speed.clear_winner(samples, higher_is_better)
        if winner is not None:
            marks[column] = [index[winner]]
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
    test, rate = evaluate.evaluate_with_rate(model, mnist.x_test, mnist.y_test)
    changes = {"test": test, "eval_images_per_second": rate}
    registry.update_metadata(name, changes)
    return changes


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _digit_gaps(cm_best: np.ndarray, cm_other: np.ndarray, shown: int = 3) -> str:
    gaps = np.diag(np.asarray(cm_best)) - np.diag(np.asarray(cm_other))
    order = [int(d) for d in np.argsort(-np.abs(gaps), kind="stable")[:shown] if gaps[d]]
    more = [f"{d}s ({gaps[d]:+d})" for d in order if gaps[d] > 0]
    fewer = [f"{d}s ({gaps[d]:+d})" for d in order if gaps[d] < 0]
    words = []
    if more:
        words.append(f"more {_names(more)}")
    if fewer:
        words.append(f"fewer {_names(fewer)}")
    return " and ".join(words)


def verdict(accuracy: dict[str, float], pairs: list[dict], matrices: dict[str, np.ndarray]) -> list[str]:
    """A few plain sentences: which model is best, which differences are significant, and on which digits.

    `pairs` are pairwise_mcnemar rows (Holm-corrected); `matrices` the test confusion matrices.
    """
    if len(accuracy) < 2:
        return []
    ranked = sorted(accuracy, key=accuracy.get, reverse=True)
    best, runner_up = ranked[0], ranked[1]
    tied = [n for n in ranked if accuracy[n] == accuracy[best]]
    if len(tied) > 1:
        sentences = [f"{_names(tied)} share the best accuracy on the 10,000 test digits ({accuracy[best]:.2%}); "
                     f"{best} stands for them below."]
    else:
        sentences = [f"{best} is the most accurate on the 10,000 test digits ({accuracy[best]:.2%})."]
    beaten, level = [], []
    for row in pairs:
        if best not in (row["model A"], row["model B"]):
            continue
        other = row["model B"] if row["model A"] == best else row["model A"]
        best_only = row["only A right"] if row["model A"] == best else row["only B right"]
        other_only = row["only B right"] if row["model A"] == best else row["only A right"]
        (beaten if row["significant"] and best_only > other_only else level).append(other)
    if beaten:
        sentences.append(f"It is significantly better than {_names(beaten)} (Holm-corrected McNemar, p < 0.05).")
    if level:
        sentences.append(f"Its lead over {_names(level)} is within chance: not significant.")
    others = [r for r in pairs if best not in (r["model A"], r["model B"]) and r["significant"]]
    for row in others[:3]:
        winner, loser = ((row["model A"], row["model B"]) if row["only A right"] > row["only B right"]
                         else (row["model B"], row["model A"]))
        sentences.append(f"{winner} is also significantly better than {loser}.")
    if len(others) > 3:
        sentences.append(f"{len(others) - 3} more pairs differ significantly (see the table).")
    if best in matrices and runner_up in matrices:
        gaps = _digit_gaps(matrices[best], matrices[runner_up])
        if gaps:
            sentences.append(f"Against {runner_up}, {best} reads {gaps} correctly.")
    return sentences
