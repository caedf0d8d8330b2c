"""Where studies live and what they hold: storage, create/resume/list/delete, pruner, samplers, the trials table.

A study lives in an Optuna storage. The embedded default is one SQLite file, explore/studies.db;
`postgresql://...` lets workers on many machines join one study (Optuna's own distributed mode).

Why SQLite through RDBStorage rather than a JournalStorage file: only RDBStorage has Optuna's
heartbeat, which marks a killed worker's trial FAIL instead of leaving it RUNNING forever, and it is
the same storage class for the embedded file and PostgreSQL. SQLite's one-writer lock is harmless
here: workers write a few rows per epoch and a heartbeat every few seconds, while a trial trains for
seconds to minutes. WAL mode and a long busy timeout keep concurrent readers (the dashboard) and
writers from failing with "database is locked".

A study stores its search space and training settings as user attributes, so a re-run without flags
continues the same search.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.explore import space as spaces
from mnist_core.paths import explore_dir

HEARTBEAT_SECONDS = 5
SAMPLERS = ("tpe", "random", "grid")
STUDY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DUPLICATE_OF = "duplicate_of"  # user attribute of a trial skipped because an earlier one had its parameters


def import_optuna():
    """Optuna, imported on first use and quietened: the lab prints its own one line per trial."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


# ---------- storage ----------


def default_storage_url() -> str:
    return f"sqlite:///{explore_dir() / 'studies.db'}"


def shown_url(url: str | None) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url or default_storage_url()).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable storage URL>"


def open_storage(url: str | None = None, heartbeat: int = HEARTBEAT_SECONDS):
    """An Optuna RDBStorage with heartbeats: a trial whose worker stops beating for 3 intervals is
    marked FAIL (and retried once) by the next worker that asks for a trial, or by `trials()`."""
    optuna = import_optuna()
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


# ---------- studies ----------


def check_study_name(name: str) -> str:
    if not isinstance(name, str) or not STUDY_RE.fullmatch(name):
        raise LabError(f"bad study name {name!r}: use 1-64 letters, digits, '.', '-' or '_'")
    return name


def load_study(name: str, storage, sampler=None):
    optuna = import_optuna()
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
    return import_optuna().pruners.PercentilePruner(75.0, n_startup_trials=2, n_warmup_steps=0)


def make_sampler(kind: str, search_space: spaces.SearchSpace, seed: int | None):
    optuna = import_optuna()
    if kind == "grid":
        if not search_space.finite:
            raise LabError("the grid sampler needs lists of values, not ranges")
        return optuna.samplers.GridSampler({d: v["choices"] for d, v in search_space.dims.items()}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        # Few startup trials: lab studies are small, and TPE should steer after a handful.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    raise LabError(f"unknown sampler {kind!r}; choose from {', '.join(SAMPLERS)}")


def create_or_resume(name: str, storage, search_space: spaces.SearchSpace | None, train_limit: int | None,
                     epochs: int | None = None):
    """Create the study, or resume it: (study, its SearchSpace, its settings). `search_space` comes from
    space.validate (None: the default space for a new study, the stored one for an old one). A re-run with
    another space or other training settings is refused."""
    optuna = import_optuna()
    check_study_name(name)
    if search_space is not None and not isinstance(search_space, spaces.SearchSpace):
        raise TypeError("create_or_resume takes a SearchSpace from space.validate")
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                pruner=make_pruner())
    stored = study.user_attrs.get("space")
    if stored is None:
        search_space = search_space or spaces.validate(spaces.DEFAULT_SPACE)
        settings = {"train_limit": spaces.DEFAULT_TRAIN_LIMIT if train_limit is None else train_limit,
                    "epochs": epochs or spaces.DEFAULT_EPOCHS, "base": spaces.BASE_PRESET}
        study.set_user_attr("space", search_space.dims)
        study.set_user_attr("settings", settings)
        return study, search_space, settings
    settings = study.user_attrs["settings"]
    if search_space is not None and search_space.dims != stored:
        raise LabError(f"study {name!r} was created with another search space; re-run without space flags "
                       "to resume it, or pick a new study name")
    for key, value in (("train_limit", train_limit), ("epochs", epochs)):
        if value is not None and value != settings[key]:
            raise LabError(f"study {name!r} was created with {key} {settings[key]}; "
                           "re-run without it to resume, or pick a new study name")
    return study, spaces.SearchSpace.from_stored(stored), settings


def stored_space(study) -> tuple[spaces.SearchSpace, dict]:
    """The study's search space and training settings, as create_or_resume stored them."""
    if "space" not in study.user_attrs:
        raise LabError(f"study {study.study_name!r} has no search space stored: start it with the explore "
                       "command first")
    return spaces.SearchSpace.from_stored(study.user_attrs["space"]), study.user_attrs["settings"]


def list_studies(storage) -> list[dict]:
    optuna = import_optuna()
    rows = []
    for s in optuna.get_all_study_summaries(storage, include_best_trial=True):
        rows.append({"study": s.study_name, "trials": s.n_trials,
                     "best_val_accuracy": s.best_trial.value if s.best_trial else None,
                     "started": s.datetime_start.strftime("%Y-%m-%d %H:%M") if s.datetime_start else ""})
    return rows


def delete_study(name: str, storage) -> None:
    optuna = import_optuna()
    try:
        optuna.delete_study(study_name=check_study_name(name), storage=storage)
    except KeyError:
        raise LabError(f"no study named {name!r}") from None


def describe(search_space: spaces.SearchSpace, settings: dict) -> str:
    """One line saying what each trial trains, on what, for the CLI and the page."""
    limit = settings["train_limit"] or specs.TRAIN_SIZE
    n_val = int(round(limit * specs.preset(spaces.BASE_PRESET).config.validation_split))  # as data.split does
    epochs = settings["epochs"]
    return (f"each trial: {settings['base']} with {search_space.describe()}; trained on the first {limit:,} "
            f"training images ({limit - n_val:,} train / {n_val:,} validation), "
            f"{epochs} epoch{'s' if epochs != 1 else ''} unless searched; trials behind 3/4 of the finished ones "
            "are pruned; the test set is not used")


def too_small(study) -> str | None:
    """too_small_warning for this study's settings (None if its trials are big enough to learn)."""
    search_space, settings = stored_space(study)
    return spaces.too_small_for(search_space, settings["train_limit"], settings["epochs"])


# ---------- trials ----------


def taken_params(study) -> list[tuple[int, dict]]:
    """(number, params) of every trial that trained or is training: complete, pruned, or running."""
    states = import_optuna().trial.TrialState
    return [(t.number, t.params) for t in study.get_trials(deepcopy=False)
            if t.state in (states.COMPLETE, states.PRUNED, states.RUNNING)]


def untried_points(study, search_space: spaces.SearchSpace) -> list[dict]:
    """The points of a finite space no trial has trained or is training, in grid order."""
    taken = [params for _, params in taken_params(study)]
    return [p for p in search_space.points() if p not in taken]


def trials(study) -> list[dict]:
    """One row per trial: number, state, validation accuracy, duration, parameters, best mark, note.

    Stale RUNNING trials (a worker that stopped beating) are failed first, so nothing shows as running
    forever. A trial skipped for repeating an earlier one's parameters shows as "skipped"."""
    optuna = import_optuna()
    optuna.storages.fail_stale_trials(study)
    all_trials = study.get_trials(deepcopy=False)
    done = [t for t in all_trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(done, key=lambda t: t.value).number if done else None
    rows = []
    for t in all_trials:
        duplicate_of = t.user_attrs.get(DUPLICATE_OF)
        rows.append({"trial": t.number, "best": "*" if t.number == best else "",
                     "state": "skipped" if duplicate_of is not None else t.state.name.lower(),
                     "val_accuracy": t.value,
                     "epochs_run": len(t.intermediate_values),
                     "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
                     **{f"p:{k}": v for k, v in t.params.items()},
                     "note": t.user_attrs.get("error", "")})
    return rows


def best_params(study) -> tuple[int, float, dict]:
    try:
        best = study.best_trial
    except ValueError:
        raise LabError(f"study {study.study_name!r} has no completed trial yet") from None
    return best.number, best.value, best.params


def settle_stale(study, heartbeat: int) -> None:
    """Once our workers are gone, wait out the grace period for a killed worker's RUNNING trial so the
    table shows it failed. Trials of live workers elsewhere keep beating and are left alone."""
    optuna = import_optuna()
    running = lambda: [t for t in study.get_trials(deepcopy=False)  # noqa: E731
                       if t.state == optuna.trial.TrialState.RUNNING]
    deadline = time.monotonic() + 4 * heartbeat + 2
    while running() and time.monotonic() < deadline:
        optuna.storages.fail_stale_trials(study)
        time.sleep(min(1.0, heartbeat))
