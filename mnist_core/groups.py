"""Seed groups and one-setting sweeps: several runs of one spec as one job, and their statistics.

A seed group trains the same spec and config with seeds s, s+1, ..., s+N-1: the spread of its test
accuracies is what chance alone does. A sweep varies ONE setting over a list of values (each value with
one or more seeds): "what does this setting do?". Every run is an ordinary registry model whose
metadata["group"] = {"id", "name", "kind": "seeds" | "sweep", "setting" and "value" (sweep only), "seed",
"run", "runs"}.

Settings that may vary (SETTINGS_HELP): a dense layer's units, dropout or activation
(`dense_layers[i].units`); a conv block's filters, kernel, dropout, activation, batch_norm, padding or
pooling (`conv_blocks[i].filters`); and the training config's learning_rate, batch_size, epochs,
optimizer, schedule, warmup_fraction or augment (`learning_rate`). The seed is the repeat axis, not a
setting; the validation split and patience change what is measured, so they stay fixed.
Their statistics (mean ± sd, mean curves, Welch's t-test) are in mnist_core.group_stats.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, replace

from mnist_core import spec as specs
from mnist_core.errors import LabError

MAX_SEEDS = 10
MAX_VALUES = 8
MAX_RUNS = 10  # per job: each run is a full training, one after another
KINDS = ("seeds", "sweep")
LAYER_FIELDS = {
    "dense_layers": {"units": int, "dropout": float, "activation": specs.ACTIVATIONS},
    "conv_blocks": {"filters": int, "kernel": int, "dropout": float, "activation": specs.ACTIVATIONS,
                    "batch_norm": bool, "padding": specs.PADDINGS, "pooling": specs.POOLINGS},
}
CONFIG_FIELDS = {"learning_rate": float, "batch_size": int, "epochs": int, "optimizer": specs.OPTIMIZERS,
                 "schedule": specs.SCHEDULES, "warmup_fraction": float, "augment": bool}
LAYER_PATH = re.compile(r"^(dense_layers|conv_blocks)\[(\d{1,2})\]\.([a-z_]+)$")
SETTINGS_HELP = ("dense_layers[i].units|dropout|activation, conv_blocks[i].filters|kernel|dropout|activation|"
                 "batch_norm|padding|pooling, " + ", ".join(CONFIG_FIELDS))
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


# ---------- settings ----------


@dataclass(frozen=True)
class Setting:
    path: str  # e.g. "dense_layers[0].dropout" or "learning_rate"
    kind: type | tuple  # int, float, bool, or the tuple of allowed words
    layers: str | None = None  # "dense_layers" / "conv_blocks"; None for a config field
    index: int = 0
    field: str = ""

    @property
    def label(self) -> str:
        if self.layers is None:
            return self.field.replace("_", " ")
        what = "dense layer" if self.layers == "dense_layers" else "conv block"
        return f"{what} {self.index + 1} {self.field.replace('_', ' ')}"

    def current(self, spec: specs.ModelSpec, config: specs.TrainConfig):
        return getattr(getattr(spec, self.layers)[self.index] if self.layers else config, self.field)


def parse_setting(path: str, spec: specs.ModelSpec) -> Setting:
    """The setting `path` names in this spec; LabError (one line) for anything not in the documented list."""
    path = str(path).strip()
    if path in CONFIG_FIELDS:
        return Setting(path, CONFIG_FIELDS[path], field=path)
    match = LAYER_PATH.match(path)
    if not match or match[3] not in LAYER_FIELDS[match[1]]:
        raise LabError(f"cannot vary {path[:60]!r}: choose one of {SETTINGS_HELP}")
    layers, index = match[1], int(match[2])
    count = len(getattr(spec, layers))
    if index >= count:
        raise LabError(f"cannot vary {path!r}: this spec has {count} {layers.replace('_', ' ')} "
                       f"(indices 0 to {count - 1})" if count else f"cannot vary {path!r}: this spec has no "
                       f"{layers.replace('_', ' ')}")
    return Setting(path, LAYER_FIELDS[layers][match[3]], layers, index, match[3])


def settings_of(spec: specs.ModelSpec) -> list[str]:
    """Every setting this spec offers to vary, layers first."""
    paths = [f"{layers}[{i}].{name}" for layers in ("conv_blocks", "dense_layers")
             for i in range(len(getattr(spec, layers))) for name in LAYER_FIELDS[layers]]
    return paths + list(CONFIG_FIELDS)


def parse_value(setting: Setting, text: str):
    """One value of `setting` from text: a number, true/false, or one of its words."""
    word = str(text).strip()
    wanted = {int: "a whole number", float: "a number", bool: "true or false"}.get(setting.kind)
    try:
        if setting.kind is bool:
            if word.lower() not in TRUE + FALSE:
                raise ValueError
            return word.lower() in TRUE
        if setting.kind is int:
            number = float(word)
            if not math.isfinite(number) or number != int(number):
                raise ValueError
            return int(number)
        if setting.kind is float:
            number = float(word)
            if not math.isfinite(number):
                raise ValueError
            return number
    except (ValueError, OverflowError):
        raise LabError(f"{setting.path}: {word[:40]!r} is not {wanted}") from None
    if word not in setting.kind:
        raise LabError(f"{setting.path}: {word[:40]!r} is not one of {', '.join(setting.kind)}")
    return word


def parse_values(setting: Setting, text: str) -> list:
    """Comma-separated values, 2 to MAX_VALUES of them, no repeats."""
    words = [w for w in str(text).split(",") if w.strip()]
    if not 2 <= len(words) <= MAX_VALUES:
        raise LabError(f"{setting.path}: give 2 to {MAX_VALUES} values separated by commas, got {len(words)}")
    values = [parse_value(setting, w) for w in words]
    if len(set(values)) != len(values):
        raise LabError(f"{setting.path}: a value is repeated in {text.strip()[:60]!r}")
    return values


def parse_vary(text: str, spec: specs.ModelSpec) -> tuple[Setting, list]:
    """`SETTING=V1,V2,...` (the CLI's --vary) as the setting and its values."""
    path, sep, values = str(text).partition("=")
    if not sep:
        raise LabError(f"--vary needs SETTING=V1,V2,... (e.g. dense_layers[0].dropout=0,0.2,0.5), got {text[:60]!r}")
    setting = parse_setting(path, spec)
    return setting, parse_values(setting, values)


def apply(spec: specs.ModelSpec, config: specs.TrainConfig, setting: Setting, value):
    """A new (spec, config) with `setting` at `value`, checked by the spec's and config's own validation."""
    new_spec = specs.spec_from_dict(specs.to_dict(spec))
    new_config = replace(config)
    target = getattr(new_spec, setting.layers)[setting.index] if setting.layers else new_config
    setattr(target, setting.field, value)
    try:
        return new_spec.validate(), new_config.validate()
    except LabError as exc:
        raise LabError(f"{setting.path}={format_value(value)}: {exc}") from None


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------- planning a job ----------


@dataclass(frozen=True)
class Run:
    index: int  # 1-based
    name: str
    spec: specs.ModelSpec
    config: specs.TrainConfig
    value: object = None

    def record(self, group_id: str, group_name: str, setting: str | None, runs: int) -> dict:
        """The run's metadata["group"]."""
        kind = "sweep" if setting else "seeds"
        extra = {"setting": setting, "value": self.value} if setting else {}
        return {"id": group_id, "name": group_name, "kind": kind, **extra, "seed": self.config.seed,
                "run": self.index, "runs": runs}


def _slug(value) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", format_value(value).replace(".", "p").replace("+", ""))


def plan(spec: specs.ModelSpec, config: specs.TrainConfig, base: str, *, seeds: int = 1,
         setting: Setting | None = None, values: list | None = None) -> list[Run]:
    """The runs of a group, every one checked (spec, config, cost limits, a free registry name) before any
    starts. Seeds are config.seed, config.seed + 1, ...; a sweep trains each value with each seed."""
    from mnist_core import cost, registry

    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise LabError(f"seeds must be a whole number from 1 to {MAX_SEEDS}, got {seeds!r}")
    sweep = [(value, *apply(spec, config, setting, value)) for value in values] if setting else [(None, spec, config)]
    total = len(sweep) * seeds
    registry.check_free(base)  # the group's own name: the job is named after it
    if total < 2:
        raise LabError("a group needs at least 2 runs: more than one seed, or a setting to vary")
    if total > MAX_RUNS:
        raise LabError(f"{total} runs ({len(sweep)} value(s) x {seeds} seed(s)) is over the limit of {MAX_RUNS} per job")
    runs = []
    for value, run_spec, run_config in sweep:
        for k in range(seeds):
            seeded = replace(run_config, seed=run_config.seed + k).validate()
            cost.check(run_spec, seeded)
            joint = "" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"
            tag = f"-{setting.field.replace('_', '')}{joint}{_slug(value)}" if setting else ""
            name = f"{base}{tag}" + (f"-s{seeded.seed}" if seeds > 1 else "")
            if not registry.NAME_RE.fullmatch(name):
                raise LabError(f"run name {name[:80]!r} is too long or not allowed: use a shorter name (at most 64 "
                               "characters with the run's suffix)")
            registry.check_free(name)
            runs.append(Run(len(runs) + 1, name, run_spec, seeded, value))
    return runs


def job_plan(spec: specs.ModelSpec, config: specs.TrainConfig, name: str, group: dict) -> tuple[dict, list[str]]:
    """For jobs.start_train: the group's record (the job's subject["group"]) and the job's command line, after
    planning, and so checking, every run. `group` is {"seeds": N, "vary": "SETTING=V1,V2,..."} (either left out)."""
    seeds, vary = group.get("seeds", 1), group.get("vary")
    setting, values = parse_vary(vary, spec) if vary else (None, None)
    runs = plan(spec, config, name, seeds=seeds, setting=setting, values=values)
    record = {"seeds": seeds, "vary": vary, "setting": setting.path if setting else None, "values": values,
              "runs": len(runs), "names": [r.name for r in runs]}
    return record, ["train", "--seeds", str(seeds), *(["--vary", vary] if vary else [])]


def new_group_id() -> str:
    return uuid.uuid4().hex[:12]


def planned_seconds(runs: list[Run], spec: specs.ModelSpec, epoch_seconds: float) -> float:
    """Training time of all runs from one spec's measured seconds per epoch, scaled by each run's FLOPs per
    image and epochs (a batch size's effect on speed is left out: an estimate, said as such)."""
    from mnist_core import cost

    base = max(1, cost.estimate(spec).training_flops)
    return sum(epoch_seconds * cost.estimate(r.spec).training_flops / base * r.config.epochs for r in runs)


def group_progress(job, now: float | None = None) -> dict:
    """A group job's progress: its current run's (JobStatus.progress on that run's events alone), plus the
    run number, the fraction over all runs, and an ETA adding the runs still to come, each taking as long as
    the finished ones did on average (or the estimate measured before the start)."""
    runs = job.subject["group"].get("runs", 1)
    runs = runs if isinstance(runs, int) and 1 <= runs <= MAX_RUNS else 1
    starts = [e for e in job.events if e.get("event") == "run" and isinstance(e.get("run"), int)]
    current = min(runs, starts[-1]["run"]) if starts else 1
    events = [e for e in job.events if e.get("run") == current and e.get("event") != "run"]
    if job.events and job.events[-1].get("event") not in ("run", "run_done", "run_stopped"):
        events += [job.events[-1]] if job.events[-1].get("run") is None else []  # the job's own last word
    single = replace(job, events=events, subject={k: v for k, v in job.subject.items() if k != "group"})
    p = single.progress(now)
    finished = [b["elapsed"] - a["elapsed"] for a, b in zip(starts, starts[1:], strict=False)
                if isinstance(a.get("elapsed"), (int, float)) and isinstance(b.get("elapsed"), (int, float))]
    per_run = sum(finished) / len(finished) if finished else None
    if per_run is None and job.estimate.get("epoch_seconds"):
        epochs = job.subject.get("config", {}).get("epochs", 1)
        # Records from mnist_core.estimate say "evaluation_seconds"; older ones "eval_seconds".
        evaluation = job.estimate.get("evaluation_seconds", job.estimate.get("eval_seconds", 0.0))
        per_run = job.estimate["epoch_seconds"] * epochs + evaluation
    eta = p["eta"] + (runs - current) * per_run if p["eta"] is not None and per_run is not None else None
    fraction = 1.0 if job.state == "done" else (current - 1 + p["fraction"]) / runs
    return {**p, "fraction": min(1.0, fraction), "eta": eta if job.running else 0.0, "run": current, "runs": runs}
