"""Hyperparameter search on Optuna (the `explore` command and page): search spaces, the objective,
workers, resume, save-best.

A study lives in an Optuna storage. The embedded default is one SQLite file, explore/studies.db;
`postgresql://...` lets workers on many machines join one study (Optuna's own distributed mode).

Why SQLite through RDBStorage rather than a JournalStorage file: only RDBStorage has Optuna's
heartbeat, which marks a killed worker's trial FAIL instead of leaving it RUNNING forever, and it is
the same storage class for the embedded file and PostgreSQL. SQLite's one-writer lock is harmless
here: workers write a few rows per epoch and a heartbeat every few seconds, while a trial trains for
seconds to minutes. WAL mode and a long busy timeout keep concurrent readers (the dashboard) and
writers from failing with "database is locked".

Each trial starts from the fast-cnn preset, applies its parameters, and trains with `train.fit` on the
first `train_limit` training images (split into train/validation by the config's validation_split).
It reports validation accuracy after each epoch to Optuna's percentile pruner (see make_pruner). The test set is never used
during a search; `save_best` retrains the best trial on train+validation and evaluates the test set once.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.paths import PROJECT_ROOT, explore_dir

BASE_PRESET = "fast-cnn"
DEFAULT_EPOCHS = 2  # a search compares candidates; short runs rank them well enough and cost little
DEFAULT_TRAIN_LIMIT = 10000  # first N training images per trial (0 = all 60,000); documented in the README
HEARTBEAT_SECONDS = 5
SAMPLERS = ("tpe", "random", "grid")
STUDY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

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


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the lab prints its own one line per trial
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


# ---------- search space ----------


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
    """'0.001,0.01' -> [0.001, 0.01] for a flag; numbers stay numbers, names stay names."""
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


def normalise_space(raw: dict) -> dict:
    """Check a search space and bring it to one form: {dim: {"choices": [...]}} or
    {dim: {"low", "high", "log", "step"}}. A bare list means choices. Every value is checked by
    applying it to the base model, so a bad one fails here, with its name, not in trial 37."""
    if not isinstance(raw, dict) or not raw:
        raise LabError("search space: expected a JSON object with at least one dimension")
    space = {}
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
            values = list(dict.fromkeys(_coerce(dim, v) for v in dom["choices"]))
            space[dim] = {"choices": values}
            probes = values
        else:
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
            space[dim] = entry
            probes = [low, high]
        for value in probes:
            try:
                build_trial({dim: value})
            except LabError as exc:
                raise LabError(f"search space: {dim}={value!r}: {exc}") from None
    return space


def load_space(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LabError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabError(f"{path}: not valid JSON ({exc})") from None


def grid_size(space: dict) -> int | None:
    if any("choices" not in d for d in space.values()):
        return None
    return math.prod(len(d["choices"]) for d in space.values())


# ---------- one trial ----------


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


def _suggest(trial, dim: str, dom: dict):
    if "choices" in dom:
        return trial.suggest_categorical(dim, dom["choices"])
    if DIMENSIONS[dim][0] is int:
        return trial.suggest_int(dim, dom["low"], dom["high"], step=dom.get("step", 1), log=dom["log"])
    return trial.suggest_float(dim, dom["low"], dom["high"], step=dom.get("step"), log=dom["log"])


def training_images(limit: int):
    """Real MNIST, cut to its first `limit` training images (0 = all). The test set stays whole."""
    from mnist_core import data

    mnist = data.load()
    if not limit or limit >= len(mnist.x_train):
        return mnist
    return data.Mnist(mnist.x_train[:limit], mnist.y_train[:limit], mnist.x_test, mnist.y_test,
                      source=f"{mnist.source}, first {limit} training images")


class StoppedByRequest(LabError):
    pass


def make_objective(space: dict, settings: dict, mnist, should_stop: Callable[[], bool] = lambda: False):
    import keras

    optuna = _optuna()

    class PruneOnEpoch(keras.callbacks.Callback):
        """Reports validation accuracy each epoch; stops training once the pruner says so."""

        def __init__(self, trial):
            super().__init__()
            self.trial, self.pruned_at = trial, None

        def on_epoch_end(self, epoch, logs=None):
            self.trial.report(float((logs or {}).get("val_accuracy", 0.0)), step=epoch + 1)
            if self.trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    def objective(trial):
        trial.set_user_attr("worker", WORKER_ID)
        params = {dim: _suggest(trial, dim, dom) for dim, dom in space.items()}
        try:
            spec, config = build_trial(params, settings["epochs"], len(mnist.x_train))
        except LabError as exc:  # a combination no single value showed, e.g. too many blocks for 28x28
            trial.set_user_attr("error", str(exc))
            raise
        from mnist_core.train import fit

        keras.backend.clear_session()  # trials share a process; free the previous graph
        pruning = PruneOnEpoch(trial)
        result = fit(spec, config, should_stop=should_stop, mnist=mnist, extra_callbacks=[pruning])
        trial.set_user_attr("history", result.history)
        trial.set_user_attr("parameters", int(result.model.count_params()))
        if result.stopped:
            trial.set_user_attr("error", "stopped by request")
            trial.study.stop()
            raise StoppedByRequest("stopped by request")
        if pruning.pruned_at:
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
        return result.history[-1]["val_accuracy"]

    return objective


# ---------- storage and studies ----------


def default_storage_url() -> str:
    return f"sqlite:///{explore_dir() / 'studies.db'}"


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable storage URL>"


def open_storage(url: str | None = None, heartbeat: int = HEARTBEAT_SECONDS):
    """An Optuna RDBStorage with heartbeats: a trial whose worker stops beating for 3 intervals is
    marked FAIL (and retried once) by the next worker that asks for a trial, or by `trials()`."""
    optuna = _optuna()
    url = url or default_storage_url()
    engine_kwargs = {}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=60) as con:  # WAL is a property of the file: set once, kept
            con.execute("PRAGMA journal_mode=WAL")
        engine_kwargs = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        # psycopg 3 is the driver the lab installs; name it, as SQLAlchemy before 2.1 would pick psycopg2
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url
        engine_kwargs = {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as exc:  # bad URL, server down, missing driver: one line, password hidden
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabError(f"cannot open study storage {shown_url(url)}: {first[:200]}") from None


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not STUDY_RE.fullmatch(name):
        raise LabError(f"bad study name {name!r}: use 1-64 letters, digits, '.', '-' or '_'")
    return name


def load_study(name: str, storage, sampler=None):
    optuna = _optuna()
    try:
        return optuna.load_study(study_name=check_study_name(name), storage=storage, sampler=sampler,
                                 pruner=make_pruner())
    except KeyError:
        raise LabError(f"no study named {name!r}; start it with: python -m mnist_core explore --study {name}") from None


def make_pruner():
    # Prune only a trial that is behind three quarters of the finished trials at the same epoch. The median
    # pruner was too eager for 2-epoch trials: epoch-1 accuracy under a one-cycle schedule says little
    # about the end, and a resumed demo study pruned all 6 new trials after epoch 1. The first two trials
    # always run to the end, so there is something to compare with.
    return _optuna().pruners.PercentilePruner(75.0, n_startup_trials=2, n_warmup_steps=0)


def make_sampler(kind: str, space: dict, seed: int | None):
    optuna = _optuna()
    if kind == "grid":
        if grid_size(space) is None:
            raise LabError("the grid sampler needs lists of values, not ranges")
        return optuna.samplers.GridSampler({d: v["choices"] for d, v in space.items()}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        # Few startup trials: lab studies are small, and TPE should steer after a handful.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    raise LabError(f"unknown sampler {kind!r}; choose from {', '.join(SAMPLERS)}")


def create_or_resume(name: str, storage, space: dict | None, train_limit: int | None, epochs: int | None = None):
    """Create the study, or resume it. Its space and training settings are stored with it, so a re-run
    without flags continues the same search; a re-run with a different space is refused."""
    optuna = _optuna()
    check_study_name(name)
    new_space = normalise_space(space) if space is not None else None  # a bad space creates nothing
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                pruner=make_pruner())
    stored = study.user_attrs.get("space")
    if stored is None:
        space = new_space or normalise_space(DEFAULT_SPACE)
        settings = {"train_limit": DEFAULT_TRAIN_LIMIT if train_limit is None else train_limit,
                    "epochs": epochs or DEFAULT_EPOCHS, "base": BASE_PRESET}
        study.set_user_attr("space", space)
        study.set_user_attr("settings", settings)
        return study, space, settings
    settings = study.user_attrs["settings"]
    if new_space is not None and new_space != stored:
        raise LabError(f"study {name!r} was created with another search space; re-run without space flags "
                       "to resume it, or pick a new study name")
    for key, value in (("train_limit", train_limit), ("epochs", epochs)):
        if value is not None and value != settings[key]:
            raise LabError(f"study {name!r} was created with {key} {settings[key]}; "
                           "re-run without it to resume, or pick a new study name")
    return study, stored, settings


def list_studies(storage) -> list[dict]:
    optuna = _optuna()
    rows = []
    for s in optuna.get_all_study_summaries(storage, include_best_trial=True):
        rows.append({"study": s.study_name, "trials": s.n_trials,
                     "best_val_accuracy": s.best_trial.value if s.best_trial else None,
                     "started": s.datetime_start.strftime("%Y-%m-%d %H:%M") if s.datetime_start else ""})
    return rows


def delete_study(name: str, storage) -> None:
    optuna = _optuna()
    try:
        optuna.delete_study(study_name=check_study_name(name), storage=storage)
    except KeyError:
        raise LabError(f"no study named {name!r}") from None


def trials(study) -> list[dict]:
    """One row per trial: number, state, validation accuracy, duration, parameters, best mark.

    Stale RUNNING trials (a worker that stopped beating) are failed first, so nothing shows as running
    forever."""
    optuna = _optuna()
    optuna.storages.fail_stale_trials(study)
    all_trials = study.get_trials(deepcopy=False)
    done = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value).number if done else None
    rows = []
    for t in all_trials:
        rows.append({"trial": t.number, "best": "*" if t.number == best else "", "state": t.state.name.lower(),
                     "val_accuracy": t.value,
                     "epochs_run": len(t.intermediate_values),
                     "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
                     **{f"p:{k}": v for k, v in t.params.items()},
                     "note": t.user_attrs.get("error", "")})
    return rows


# ---------- running workers ----------


@dataclass
class RunResult:
    study: object
    rows: list[dict]
    worker_codes: list[int]


def work(name: str, storage_url: str | None, n_trials: int, sampler: str = "tpe", seed: int | None = None,
         timeout: float | None = None, heartbeat: int = HEARTBEAT_SECONDS,
         should_stop: Callable[[], bool] = lambda: False, say: Callable[[str], None] = print) -> None:
    """One worker: run up to n_trials trials of an existing study in this process."""
    optuna = _optuna()
    storage = open_storage(storage_url, heartbeat)
    probe = load_study(name, storage)
    if "space" not in probe.user_attrs:
        raise LabError(f"study {name!r} has no search space stored: start it with the explore command first")
    space, settings = probe.user_attrs["space"], probe.user_attrs["settings"]
    study = load_study(name, storage, make_sampler(sampler, space, seed))
    mnist = training_images(settings["train_limit"])

    def report(study, t):
        value = f"val_acc {t.value:.4f}" if t.value is not None else (t.user_attrs.get("error") or "")
        if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values:
            value = f"val_acc {list(t.intermediate_values.values())[-1]:.4f} at epoch {len(t.intermediate_values)}"
        secs = f"{t.duration.total_seconds():.1f}s" if t.duration else ""
        say(f"trial {t.number:>3} {t.state.name.lower():<8} {value}  {t.params}  {secs}  [{WORKER_ID}]")

    def stop_check(study, t):
        if should_stop():
            study.stop()

    study.optimize(make_objective(space, settings, mnist, should_stop), n_trials=n_trials, timeout=timeout,
                   catch=(LabError,), callbacks=[report, stop_check], gc_after_trial=True)


def split_trials(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def run(name: str, *, storage_url: str | None = None, space: dict | None = None, n_trials: int = 10,
        workers: int = 1, sampler: str = "tpe", seed: int | None = None, timeout: float | None = None,
        train_limit: int | None = None, epochs: int | None = None, heartbeat: int = HEARTBEAT_SECONDS,
        should_stop: Callable[[], bool] = lambda: False, stop_file: str | None = None,
        say: Callable[[str], None] = print) -> RunResult:
    """Create or resume the study and run `n_trials` more trials on `workers` processes of this machine.

    `n_trials` is split between the workers; a failed trial counts as one. Stopping (Ctrl-C, `should_stop`,
    `stop_file`) ends each worker's current trial as failed and keeps every finished one."""
    if n_trials < 1 or workers < 1:
        raise LabError("--trials and --workers must be at least 1")
    if sampler not in SAMPLERS:
        raise LabError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if space is not None:
        make_sampler(sampler, normalise_space(space), seed)  # grid with ranges: refuse before creating the study
    storage = open_storage(storage_url, heartbeat)
    study, space, settings = create_or_resume(name, storage, space, train_limit, epochs)
    make_sampler(sampler, space, seed)  # refuse grid-with-ranges before starting anyone
    say(f"study {name!r} in {shown_url(storage_url or default_storage_url())}: {len(study.trials)} trials so far; "
        f"running {n_trials} more on {workers} worker(s), sampler {sampler}")
    say(describe(space, settings))
    codes = []
    if workers == 1:
        work(name, storage_url, n_trials, sampler, seed, timeout, heartbeat, should_stop, say)
        codes = [0]
    else:
        procs = []
        for i, n in enumerate(split_trials(n_trials, workers)):
            cmd = [sys.executable, "-m", "mnist_core", "explore", "--worker", "--study", name, "--trials", str(n),
                   "--sampler", sampler, "--heartbeat", str(heartbeat)]
            cmd += ["--storage", storage_url] if storage_url else []
            cmd += ["--seed", str(seed + i)] if seed is not None else []
            cmd += ["--timeout", str(timeout)] if timeout else []
            cmd += ["--stop-file", stop_file] if stop_file else []
            procs.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, env=os.environ.copy()))
        asked = False
        while any(p.poll() is None for p in procs):
            if should_stop() and not asked:  # pass a stop on: each worker fails its current trial and exits
                asked = True
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGINT)
            time.sleep(0.3)
        codes = [p.returncode for p in procs]
        for i, code in enumerate(codes):
            if code != 0:
                say(f"warning: worker {i + 1} ended with exit code {code}; a trial it was running is marked "
                    "failed once its heartbeat goes stale")
    _settle_stale(study, heartbeat)
    return RunResult(study, trials(study), codes)


def describe(space: dict, settings: dict) -> str:
    """One line saying what each trial trains, on what, for the CLI and the page."""
    dims = []
    for dim, dom in space.items():
        if "choices" in dom:
            dims.append(f"{dim} {'|'.join(str(v) for v in dom['choices'])}")
        else:
            dims.append(f"{dim} {dom['low']}..{dom['high']}{' (log)' if dom['log'] else ''}")
    limit = settings["train_limit"] or specs.TRAIN_SIZE
    n_val = int(round(limit * specs.preset(BASE_PRESET).config.validation_split))  # as data.split does
    return (f"each trial: {settings['base']} with {'; '.join(dims)}; trained on the first {limit:,} training images "
            f"({limit - n_val:,} train / {n_val:,} validation), "
            f"{settings['epochs']} epoch{'s' if settings['epochs'] != 1 else ''} unless searched; trials behind 3/4 of the finished ones are pruned; "
            "the test set is not used")


def _settle_stale(study, heartbeat: int) -> None:
    """Once our workers are gone, wait out the grace period for a killed worker's RUNNING trial so the
    table shows it failed. Trials of live workers elsewhere keep beating and are left alone."""
    optuna = _optuna()
    running = lambda: [t for t in study.get_trials(deepcopy=False)  # noqa: E731
                       if t.state == optuna.trial.TrialState.RUNNING]
    deadline = time.monotonic() + 4 * heartbeat + 2
    while running() and time.monotonic() < deadline:
        optuna.storages.fail_stale_trials(study)
        time.sleep(min(1.0, heartbeat))


def best_params(study) -> tuple[int, float, dict]:
    try:
        best = study.best_trial
    except ValueError:
        raise LabError(f"study {study.study_name!r} has no completed trial yet") from None
    return best.number, best.value, best.params


def save_best(name: str, model_name: str, *, storage_url: str | None = None, train_limit: int | None = None,
              on_event=None, should_stop=None) -> dict | None:
    """Retrain the best trial on train+validation (validation_split=0) and save it to the registry.

    The test metrics are computed once, at save time, by train_and_save. `train_limit` defaults to the
    images the study searched on; 0 means all 60,000."""
    from mnist_core import registry
    from mnist_core.train import train_and_save

    registry.check_free(model_name)
    study = load_study(name, open_storage(storage_url))
    number, value, params = best_params(study)
    settings = study.user_attrs.get("settings", {"train_limit": DEFAULT_TRAIN_LIMIT, "epochs": DEFAULT_EPOCHS})
    limit = settings["train_limit"] if train_limit is None else train_limit
    mnist = training_images(limit)
    spec, config = build_trial(params, settings["epochs"], len(mnist.x_train))
    config = replace(config, validation_split=0.0)
    extra = {"explore": {"study": name, "trial": number, "val_accuracy": value, "params": params,
                         "train_images": len(mnist.x_train)}}
    return train_and_save(spec, config, model_name, on_event, should_stop, mnist, extra_metadata=extra)


# ---------- background jobs (for the dashboard) ----------


def start_search_job(study: str, space: dict | None, *, n_trials: int, workers: int = 1, sampler: str = "tpe",
                     train_limit: int | None = None, epochs: int | None = None):
    """`explore` as a background job (jobs.py's launcher: events file, stop file, survives reruns).
    space None continues an existing study with its stored space."""
    from mnist_core import jobs

    check_study_name(study)
    if space is not None:
        make_sampler(sampler, normalise_space(space), None)  # bad values fail here, not in a dead job's log
    args = ["explore", "--study", study, "--trials", str(n_trials), "--workers", str(workers), "--sampler", sampler]
    args += ["--train-limit", str(train_limit)] if train_limit is not None else []
    args += ["--train-epochs", str(epochs)] if epochs is not None else []
    files = {"--space": json.dumps(space)} if space is not None else None
    return jobs.launch(f"explore:{study}", args, kind="explore", saves_model=False, files=files)


def start_save_job(study: str, model_name: str, train_limit: int | None = None):
    """Retrain the best trial and save it, as a background job named after the model."""
    from mnist_core import jobs

    args = ["explore", "--study", study, "--save-best", model_name]
    args += ["--train-limit", str(train_limit)] if train_limit is not None else []
    return jobs.launch(model_name, args, kind="explore")
