"""Statistics of seed groups and sweeps (mnist_core.groups) from the registry's metadata: per group, and per
sweep value, the mean ± sd and range of test accuracy, a mean training curve with its band, and Welch's
t-test between two sets of runs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from mnist_core.errors import LabError
from mnist_core.groups import KINDS, format_value

MAX_TEXT = 80  # characters of a group's name, setting or word value read from metadata (hand-editable)


@dataclass
class Member:
    name: str
    accuracy: float
    seed: object
    value: object
    metadata: dict


@dataclass
class Group:
    id: str
    name: str
    kind: str
    setting: str | None = None
    members: list[Member] = field(default_factory=list)

    def values(self) -> list:
        """The sweep's values, numbers in increasing order (words in the order first seen)."""
        seen = list(dict.fromkeys(m.value for m in self.members))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen)
        return sorted(seen) if numeric else seen

    def at(self, value) -> list[Member]:
        return [m for m in self.members if m.value == value]

    def label(self, value=None) -> str:
        return self.name if value is None else f"{self.name} with {self.setting}={format_value(value)}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def collect(entries: Iterable[tuple[str, dict]]) -> list[Group]:
    """The groups among (model name, metadata) pairs, in the order first met, each group's runs in the order
    they were trained (metadata["group"]["run"]); metadata whose "group" or test
    accuracy is not of the documented shape is left out (hand-edited or foreign files)."""
    found: dict[str, Group] = {}
    for name, meta in entries:
        record, test = meta.get("group"), meta.get("test")
        if not (isinstance(record, dict) and isinstance(test, dict) and _number(test.get("accuracy"))):
            continue
        gid, kind = record.get("id"), record.get("kind")
        if not isinstance(gid, str) or kind not in KINDS:
            continue
        setting = record.get("setting")[:MAX_TEXT] if kind == "sweep" and isinstance(record.get("setting"), str) else None
        value = record.get("value") if setting else None
        if setting and not isinstance(value, (int, float, str, bool)):
            continue
        value = value[:MAX_TEXT] if isinstance(value, str) else value  # a file's text, shown in tables and titles
        group = found.setdefault(gid, Group(gid, str(record.get("name") or gid)[:MAX_TEXT], kind, setting))
        group.members.append(Member(name, float(test["accuracy"]), record.get("seed"), value, meta))
    for group in found.values():  # in the order they were trained, whatever order the registry lists them in
        group.members.sort(key=lambda m: (_run(m.metadata["group"].get("run")), m.name))
    return list(found.values())


def _run(number) -> float:
    return number if isinstance(number, int) and not isinstance(number, bool) else math.inf


def describe(numbers: Iterable[float]) -> dict:
    """n, mean, sample standard deviation (nan below 2), min and max."""
    a = np.asarray(list(numbers), dtype=float)
    if not len(a):
        return {"n": 0, "mean": math.nan, "sd": math.nan, "min": math.nan, "max": math.nan}
    return {"n": len(a), "mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else math.nan,
            "min": float(a.min()), "max": float(a.max())}


def rows(group: Group) -> list[dict]:
    """The group as table rows: one for a seed group, one per value for a sweep."""
    parts = [(v, group.at(v)) for v in group.values()] if group.kind == "sweep" else [(None, group.members)]
    out = []
    for value, members in parts:
        stats = describe(m.accuracy for m in members)
        out.append({"group": group.name, "kind": group.kind, "setting": group.setting, "value": value,
                    **stats, "models": [m.name for m in members]})
    return out


def mean_curve(metadatas: list[dict], metric: str = "accuracy", points: int = 200) -> dict | None:
    """The runs' training curves (metadata["curve"], x = fractional epoch) on one grid over the epochs all of
    them cover: {"epoch", "mean", "sd", "min", "max", "n"}; None without two runs that have a curve."""
    curves = []
    for meta in metadatas:
        rows_ = meta.get("curve") if isinstance(meta.get("curve"), list) else []
        pts = sorted((p["epoch"], p[metric]) for p in rows_ if isinstance(p, dict)
                     and _number(p.get("epoch")) and _number(p.get(metric)))
        if len(pts) >= 2:
            curves.append(np.asarray(pts, dtype=float))
    if not curves:
        return None
    lo, hi = max(c[0, 0] for c in curves), min(c[-1, 0] for c in curves)
    if hi <= lo:
        return None
    grid = np.linspace(lo, hi, points)
    ys = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
    sd = ys.std(axis=0, ddof=1) if len(ys) > 1 else np.full(len(grid), np.nan)
    return {"epoch": grid.tolist(), "mean": ys.mean(axis=0).tolist(), "sd": sd.tolist(),
            "min": ys.min(axis=0).tolist(), "max": ys.max(axis=0).tolist(), "n": len(ys)}


def welch(a: Iterable[float], b: Iterable[float]) -> dict:
    """Welch's t-test (unequal variances) of two sets of accuracies: {"t", "p", "df", "mean_a", "mean_b",
    "n_a", "n_b"}. LabError unless each has at least 2 values and they are not all equal."""
    from scipy import stats

    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise LabError(f"Welch's t-test needs at least 2 runs on each side, got {len(a)} and {len(b)}")
    if a.std() == 0 and b.std() == 0:
        raise LabError("every run on both sides has the same accuracy: there is no spread to test")
    result = stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(result.statistic), "p": float(result.pvalue), "df": float(result.df),
            "mean_a": float(a.mean()), "mean_b": float(b.mean()), "n_a": len(a), "n_b": len(b)}


def welch_sentence(label_a: str, label_b: str, result: dict, alpha: float = 0.05) -> str:
    """The test's outcome in plain words."""
    diff = (result["mean_a"] - result["mean_b"]) * 100
    better, worse = (label_a, label_b) if diff > 0 else (label_b, label_a)
    means = (f"{label_a} averages {result['mean_a']:.2%} over {result['n_a']} runs, {label_b} "
             f"{result['mean_b']:.2%} over {result['n_b']} runs")
    if result["p"] < alpha:
        return (f"{means}: {better} is better by {abs(diff):.2f} points, and a difference this large would be "
                f"unlikely from seeds alone (Welch's t-test, p = {result['p']:.3g} < {alpha}).")
    return (f"{means}: the difference of {abs(diff):.2f} points is within what different seeds give "
            f"(Welch's t-test, p = {result['p']:.3g} ≥ {alpha}); {better} is not shown to beat {worse}.")
