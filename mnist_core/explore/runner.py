"""Running a study: the objective, one worker, worker processes, and keeping the best trial as a model.

Each trial starts from the fast-cnn preset, applies its parameters (space.build_trial), and trains with
`train.fit` on the first `train_limit` training images (split into train/validation by the config's
validation_split). It reports validation accuracy after each epoch to the study's pruner. The test set is
never used during a search; `save_best` retrains the best trial on train+validation and evaluates the test
set once.

A trial never trains parameters an earlier trial of the study trained or is training: it is recorded as
skipped instead, and in a finite space an untried point is queued so the next trial is new. Once every
point of a finite space has been tried, the study stops and says so.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mnist_core.errors import LabError
from mnist_core.explore import space as spaces
from mnist_core.explore import study as studies
from mnist_core.explore import workers as worker_processes
from mnist_core.paths import PROJECT_ROOT

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
MAX_SKIPS_IN_A_ROW = 10  # a sampler stuck on tried points in a space too big to list: give up, say so


class StoppedByRequest(LabError):
    pass


class RepeatedParams(LabError):
    """A trial drew parameters an earlier trial has: it is recorded as skipped, not trained."""


class _LabErrorsSaidOnce(logging.Filter):
    """Optuna logs a caught trial failure as two warnings with a traceback. For a LabError (a skipped
    repeat, a combination the model cannot take) the worker prints its own one line, so drop Optuna's."""

    def __init__(self):
        super().__init__()
        self.quiet: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        found = re.match(r"Trial (\d+) failed with", str(record.msg))
        if not found:
            return True
        if record.exc_info and isinstance(record.exc_info[1], LabError):
            self.quiet.add(found[1])
            return False
        return found[1] not in self.quiet


def _quieten_optuna_failures() -> None:
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _LabErrorsSaidOnce) for f in handler.filters):
            handler.addFilter(_LabErrorsSaidOnce())


def training_images(limit: int):
    """Real MNIST, cut to its first `limit` training images (0 = all). The test set stays whole."""
    from mnist_core import data

    mnist = data.load()
    if not limit or limit >= len(mnist.x_train):
        return mnist
    return data.Mnist(mnist.x_train[:limit], mnist.y_train[:limit], mnist.x_test, mnist.y_test,
                      source=f"{mnist.source}, first {limit} training images")


def _suggest(trial, dim: str, dom: dict):
    if "choices" in dom:
        return trial.suggest_categorical(dim, dom["choices"])
    if spaces.DIMENSIONS[dim][0] is int:
        return trial.suggest_int(dim, dom["low"], dom["high"], step=dom.get("step", 1), log=dom["log"])
    return trial.suggest_float(dim, dom["low"], dom["high"], step=dom.get("step"), log=dom["log"])


def _skip_if_repeated(trial, params: dict, search_space: spaces.SearchSpace) -> None:
    """Raise RepeatedParams if an earlier trial trained or is training `params`, after queueing an untried point."""
    optuna = studies.import_optuna()
    earlier = next((n for n, p in studies.taken_params(trial.study) if n != trial.number and p == params), None)
    if earlier is None:
        return
    trial.set_user_attr(studies.DUPLICATE_OF, earlier)
    trial.set_user_attr("error", f"skipped: same parameters as trial {earlier}")
    waiting = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    if search_space.finite and not waiting:
        untried = studies.untried_points(trial.study, search_space)
        if untried:
            trial.study.enqueue_trial(untried[0])
    raise RepeatedParams(f"same parameters as trial {earlier}")


def make_objective(search_space: spaces.SearchSpace, settings: dict, mnist,
                   should_stop: Callable[[], bool] = lambda: False):
    import keras

    optuna = studies.import_optuna()

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
        params = {dim: _suggest(trial, dim, dom) for dim, dom in search_space.dims.items()}
        _skip_if_repeated(trial, params, search_space)
        try:
            spec, config = spaces.build_trial(params, settings["epochs"], len(mnist.x_train))
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


def all_tried_message(search_space: spaces.SearchSpace) -> str:
    return (f"every combination of the search space has been tried ({search_space.grid_size()} points): "
            "nothing new to train; widen the space or start a new study")


def exhausted(study, search_space: spaces.SearchSpace) -> bool:
    """True when a finite space has no point left that no trial trained or is training."""
    return search_space.finite and not studies.untried_points(study, search_space)


def work(name: str, storage_url: str | None, n_trials: int, sampler: str = "tpe", seed: int | None = None,
         timeout: float | None = None, heartbeat: int = studies.HEARTBEAT_SECONDS,
         should_stop: Callable[[], bool] = lambda: False, say: Callable[[str], None] = print,
         mnist=None) -> None:
    """One worker: train up to n_trials new trials of an existing study in this process.

    A skipped repeat does not count; a failed trial does. The worker ends early on a stop request, at the
    timeout, or once every point of a finite space has been tried. `mnist` replaces the study's
    training images (the first train_limit of real MNIST), e.g. with a test fixture."""
    optuna = studies.import_optuna()
    _quieten_optuna_failures()
    storage = studies.open_storage(storage_url, heartbeat)
    search_space, settings = studies.stored_space(studies.load_study(name, storage))
    study = studies.load_study(name, storage, studies.make_sampler(sampler, search_space, seed))
    if exhausted(study, search_space):
        say(all_tried_message(search_space))
        return
    mnist = mnist or training_images(settings["train_limit"])
    counts = {"trained": 0, "skipped_in_a_row": 0}

    def report(study, t):
        if t.user_attrs.get(studies.DUPLICATE_OF) is not None:
            say(f"trial {t.number:>3} skipped  same parameters as trial {t.user_attrs[studies.DUPLICATE_OF]}  "
                f"{t.params}  [{WORKER_ID}]")
            return
        value = f"val_acc {t.value:.4f}" if t.value is not None else (t.user_attrs.get("error") or "")
        if t.state == optuna.trial.TrialState.PRUNED and t.intermediate_values:
            value = f"val_acc {list(t.intermediate_values.values())[-1]:.4f} at epoch {len(t.intermediate_values)}"
        secs = f"{t.duration.total_seconds():.1f}s" if t.duration else ""
        say(f"trial {t.number:>3} {t.state.name.lower():<8} {value}  {t.params}  {secs}  [{WORKER_ID}]")

    def decide_next(study, t):
        if t.user_attrs.get(studies.DUPLICATE_OF) is not None:
            counts["skipped_in_a_row"] += 1
        else:
            counts["trained"] += 1
            counts["skipped_in_a_row"] = 0
        if should_stop() or counts["trained"] >= n_trials:
            study.stop()
        elif exhausted(study, search_space):
            say(all_tried_message(search_space))
            study.stop()
        elif counts["skipped_in_a_row"] >= MAX_SKIPS_IN_A_ROW:
            say(f"the sampler proposed tried parameters {MAX_SKIPS_IN_A_ROW} times in a row; stopping this worker")
            study.stop()

    study.optimize(make_objective(search_space, settings, mnist, should_stop), n_trials=None, timeout=timeout,
                   catch=(LabError,), callbacks=[report, decide_next], gc_after_trial=True)


def split_trials(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


@dataclass
class RunResult:
    study: object
    rows: list[dict]
    worker_codes: list[int]
    exhausted: bool  # every point of a finite space has been tried


def _worker_processes(name: str, storage_url: str | None, n_trials: int, workers: int, sampler: str,
                      seed: int | None, timeout: float | None, heartbeat: int, should_stop: Callable[[], bool],
                      stop_file: str | None, say: Callable[[str], None]) -> list[int]:
    procs = []
    for i, n in enumerate(split_trials(n_trials, workers)):
        cmd = [sys.executable, "-m", "mnist_core", "explore", "--worker", "--study", name, "--trials", str(n),
               "--sampler", sampler, "--heartbeat", str(heartbeat)]
        cmd += ["--storage", storage_url] if storage_url else []
        cmd += ["--seed", str(seed + i)] if seed is not None else []
        cmd += ["--timeout", str(timeout)] if timeout else []
        cmd += ["--stop-file", stop_file] if stop_file else []
        env = {**os.environ, worker_processes.PARENT_PID_ENV: str(os.getpid())}
        procs.append(subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, env=env))
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
    return codes


def run(name: str, *, storage_url: str | None = None, search_space: spaces.SearchSpace | None = None,
        n_trials: int = 10, workers: int = 1, sampler: str = "tpe", seed: int | None = None,
        timeout: float | None = None, train_limit: int | None = None, epochs: int | None = None,
        heartbeat: int = studies.HEARTBEAT_SECONDS, should_stop: Callable[[], bool] = lambda: False,
        stop_file: str | None = None, say: Callable[[str], None] = print, mnist=None) -> RunResult:
    """Create or resume the study and train `n_trials` more trials on `workers` processes of this machine.

    `search_space` comes from space.validate (None: the default for a new study, the stored one to resume).
    `n_trials` is split between the workers; a failed trial counts as one, a skipped repeat does not.
    Stopping (Ctrl-C, `should_stop`, `stop_file`) ends each worker's current trial as failed and keeps
    every finished one. `mnist` (one worker only) replaces the training images, as in `work`."""
    worker_processes.check_workers(workers, n_trials)
    if mnist is not None and workers != 1:
        raise LabError("replacement training images work with one worker only")
    if sampler not in studies.SAMPLERS:
        raise LabError(f"unknown sampler {sampler!r}; choose from {', '.join(studies.SAMPLERS)}")
    if search_space is not None:
        studies.make_sampler(sampler, search_space, seed)  # grid with ranges: refuse before creating the study
    storage = studies.open_storage(storage_url, heartbeat)
    study, search_space, settings = studies.create_or_resume(name, storage, search_space, train_limit, epochs)
    studies.make_sampler(sampler, search_space, seed)  # a resumed study's stored space, checked the same way
    say(f"study {name!r} in {studies.shown_url(storage_url)}: {len(study.trials)} trials so far; "
        f"running {n_trials} more on {workers} worker(s), sampler {sampler}")
    say(studies.describe(search_space, settings))
    warning = spaces.too_small_for(search_space, settings["train_limit"], settings["epochs"])
    if warning:
        say(f"warning: {warning}")
    if exhausted(study, search_space):
        say(all_tried_message(search_space))
        codes = [0]
    elif workers == 1:
        work(name, storage_url, n_trials, sampler, seed, timeout, heartbeat, should_stop, say, mnist)
        codes = [0]
    else:
        codes = _worker_processes(name, storage_url, n_trials, workers, sampler, seed, timeout, heartbeat,
                                  should_stop, stop_file, say)
    studies.settle_stale(study, heartbeat)
    return RunResult(study, studies.trials(study), codes, exhausted(study, search_space))


def save_best(name: str, model_name: str, *, storage_url: str | None = None, train_limit: int | None = None,
              on_event=None, should_stop=None, keep_on_stop=None) -> dict | None:
    """Retrain the best trial on train+validation (validation_split=0) and save it to the registry.

    The test metrics are computed once, at save time, by train_and_save. `train_limit` defaults to the
    images the study searched on; 0 means all 60,000. `keep_on_stop` goes to train_and_save: asked on a
    stop, True keeps the model as it is at its best epoch so far."""
    from mnist_core import registry, train

    registry.check_free(model_name)
    study = studies.load_study(name, studies.open_storage(storage_url))
    number, value, params = studies.best_params(study)
    settings = study.user_attrs.get("settings", {"train_limit": spaces.DEFAULT_TRAIN_LIMIT,
                                                 "epochs": spaces.DEFAULT_EPOCHS})
    limit = settings["train_limit"] if train_limit is None else train_limit
    mnist = training_images(limit)
    spec, config = spaces.build_trial(params, settings["epochs"], len(mnist.x_train))
    config = replace(config, validation_split=0.0)
    extra = {"explore": {"study": name, "trial": number, "val_accuracy": value, "params": params,
                         "train_images": len(mnist.x_train)}}
    return train.train_and_save(spec, config, model_name, on_event, should_stop, mnist, extra_metadata=extra,
                                keep_on_stop=keep_on_stop)
