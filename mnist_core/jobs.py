"""Every background action of the lab: train, fine-tune, explore study, save best. One module launches
them, records them, reports their status and stops them; it is the only code that builds a job's
command line.

A job is `python -m mnist_core <command> ... --events FILE --stop-file FILE` in its own process, so it
survives reruns, page switches, reloads and closed tabs, and costs what the CLI costs. Its folder holds
job.json (the record: kind, owner session, subject, estimate), events.jsonl (what it reports as it goes),
log.txt and, once asked to stop, the stop file ("keep" in it means: save the best epoch so far).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mnist_core import fsutil, groups, registry
from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.job_events import LIST_EVENT_BYTES, MAX_EVENT_BYTES, is_number, read_events
from mnist_core.paths import PROJECT_ROOT, jobs_dir

EVENTS = "events.jsonl"
STOP = "stop"
INFO = "job.json"
START_LOCK = ".start.lock"
TERMINAL = {"done", "stopped", "failed"}
KINDS = ("train", "finetune", "study", "save-best")
MODEL_KINDS = ("train", "finetune", "save-best")  # the kinds whose outcome is a saved model
MAX_RUNNING = 2  # jobs at once on this machine: each one wants a core
@dataclass
class JobStatus:
    id: str
    name: str
    state: str  # "running", "done", "stopped", "failed"
    events: list[dict] = field(default_factory=list)
    started: float = 0.0
    message: str = ""
    kind: str = "train"
    session: str | None = None  # the browser session that started it (None: the CLI or a test)
    subject: dict = field(default_factory=dict)  # what it works on: {"spec", "config"}, {"study"}, {"parent"}
    estimate: dict = field(default_factory=dict)  # mnist_core.estimate's parts, measured before the start

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def outcome(self) -> dict:
        """What the job produced: {"model": name} or {"study": name}; empty unless it is done."""
        done = self.last("done")
        if done is None:
            return {}
        if self.kind == "study":
            return {"study": self.subject.get("study", self.name)}
        return {"model": done.get("name", self.name), "stopped_early": bool(done.get("stopped_early"))}

    def last(self, kind: str) -> dict | None:
        return next((e for e in reversed(self.events) if e.get("event") == kind), None)

    @property
    def history(self) -> list[dict]:
        return [e for e in self.events if e.get("event") == "epoch"]

    @property
    def batches(self) -> list[dict]:
        return [e for e in self.events if e.get("event") == "batch"]

    def curve_points(self) -> list[dict]:
        """Live curve points: train metrics from batch events at fractional epochs (Keras reports the running
        mean of the epoch so far), validation metrics once per epoch; each with images seen and seconds."""
        points = [{"epoch": e["epoch"] - 1 + e["batch"] / max(1, e["steps"]), "images": e.get("images"),
                   "seconds": e.get("elapsed"), "loss": e["loss"], "accuracy": e["accuracy"]} for e in self.batches]
        for e in self.history:
            if "val_loss" in e:
                points.append({"epoch": e["epoch"], "images": e.get("images"), "seconds": e.get("elapsed"),
                               "val_loss": e["val_loss"], "val_accuracy": e["val_accuracy"]})
        return sorted(points, key=lambda p: p["epoch"])

    def progress(self, now: float | None = None) -> dict:
        """Fraction done, epoch, batch, elapsed seconds and an ETA in seconds (None while unknown)."""
        from mnist_core.eta import estimate_remaining

        if "group" in self.subject:  # several runs one after another: groups adds them up (+ "run", "runs")
            return groups.group_progress(self, now)

        start = self.last("start") or {}
        planned = self.subject.get("config", {}).get("epochs", 1) if isinstance(self.subject.get("config"), dict) else 1
        planned = planned if is_number(planned) and planned >= 1 else 1
        epochs, steps = start.get("epochs", planned), start.get("steps_per_epoch", 1)
        batch = self.last("batch")
        epoch_no, batch_no = (batch["epoch"], batch["batch"]) if batch else (1, 0)
        done_steps = (epoch_no - 1) * steps + batch_no
        fraction = 1.0 if self.state == "done" else min(1.0, done_steps / max(1, epochs * steps))
        wall = (now or time.time()) - self.started
        eta = estimate_remaining(self.batches, self.history, epochs, steps, self.estimate, wall) if self.running else 0.0
        return {"fraction": fraction, "epoch": epoch_no, "epochs": epochs, "batch": batch_no, "steps": steps,
                "elapsed": wall, "eta": eta}


def job_dir(job_id: str) -> Path:
    return jobs_dir() / job_id


def _read_info(job_id: str) -> dict:
    try:
        info = json.loads((job_dir(job_id) / INFO).read_text())
    except (OSError, ValueError, RecursionError):  # also a folder removed while it was polled
        raise LabError(f"no job {job_id!r}") from None
    if not isinstance(info, dict) or not {"pid", "name", "started"} <= info.keys():
        raise LabError(f"job {job_id!r} is damaged (job.json lacks pid, name or started)")
    if not isinstance(info["started"], (int, float)) or not isinstance(info["name"], str):
        raise LabError(f"job {job_id!r} is damaged (job.json has a bad name or start time)")
    return info


def status(job_id: str, max_event_bytes: int = MAX_EVENT_BYTES) -> JobStatus:
    info = _read_info(job_id)
    events = read_events(job_dir(job_id) / EVENTS, max_event_bytes)
    final = next((e for e in reversed(events) if e.get("event") in TERMINAL), None)
    if final:
        state, message = final["event"], str(final.get("message", ""))
    elif fsutil.pid_alive(info["pid"], job_id, _started_ticks(info)):
        state, message = "running", ""
    else:
        state, message = "failed", "the process ended without finishing (killed or crashed)"
    kind = info.get("kind") if info.get("kind") in KINDS else "train"
    dicts = {k: info.get(k) if isinstance(info.get(k), dict) else {} for k in ("subject", "estimate")}
    dicts["estimate"] = {k: v for k, v in dicts["estimate"].items() if is_number(v) and v >= 0}
    session = info.get("session") if isinstance(info.get("session"), str) else None
    return JobStatus(job_id, info["name"], state, events, float(info["started"]), message, kind, session,
                     dicts["subject"], dicts["estimate"])


def _started_ticks(info: dict) -> int | None:
    """The start time recorded at launch (None in records from before it was kept: then only the marker
    and a non-empty command line vouch for the process)."""
    ticks = info.get("started_ticks")
    return ticks if isinstance(ticks, int) and not isinstance(ticks, bool) else None


def all_jobs() -> list[JobStatus]:
    """Every job, newest first, read cheaply (each one's last events only)."""
    root = jobs_dir()
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.name.startswith("."):
            continue
        try:
            found.append(status(child.name, LIST_EVENT_BYTES))
        except LabError:
            continue
    return sorted(found, key=lambda j: j.started, reverse=True)


def running_jobs() -> list[JobStatus]:
    return [j for j in all_jobs() if j.running]


def current() -> JobStatus | None:
    """A running job, if any (the newest)."""
    return next(iter(running_jobs()), None)


def latest(session: str | None = None, kinds: tuple[str, ...] = ("train",)) -> JobStatus | None:
    """The newest job of these kinds that this session started (read in full, for its panel)."""
    job = next((j for j in all_jobs() if j.kind in kinds and j.session == session), None)
    if job is None:
        return None
    try:
        return status(job.id)
    except LabError:  # removed between the listing and this read
        return None


def others_running(session: str | None) -> list[JobStatus]:
    """Jobs other sessions are running: a reason this machine is slower, not this session's result."""
    return [j for j in running_jobs() if j.session != session]


# ---------- starting ----------


def start_train(spec: specs.ModelSpec, config: specs.TrainConfig, name: str, *, session: str | None = None,
                estimate: dict | None = None, group: dict | None = None) -> JobStatus:
    """Train `spec` with `config` and save it as `name`. `estimate` (mnist_core.estimate.recorded: "startup_seconds",
    "epoch_seconds", "validation_seconds", "evaluation_seconds", "total_seconds"; or only "epoch_seconds"),
    measured before the start, guides the ETA until the job's own batches say otherwise. `group` ({"seeds": N,
    "vary": "SETTING=V1,V2"}) makes it a seed group or sweep, every run checked first (groups.job_plan)."""
    from mnist_core import cost
    from mnist_core.eta import evaluation_seconds

    spec.validate()
    config.validate()
    cost.check(spec, config)  # refused here, in one line, not in a job's log
    subject, args = {"spec": specs.to_dict(spec), "config": specs.to_dict(config)}, ["train"]
    if group:
        subject["group"], args = groups.job_plan(spec, config, name, group)
    if estimate and estimate.get("epoch_seconds") and not {"eval_seconds", "evaluation_seconds"} & estimate.keys():
        train_images = int(specs.TRAIN_SIZE * (1 - config.validation_split))
        estimate = {**estimate, "eval_seconds": evaluation_seconds(estimate["epoch_seconds"], train_images)}
    return _launch("train", name, args, session=session, subject=subject, estimate=estimate,
                   files={"--spec": specs.to_json(spec), "--config": specs.to_json(config)})


def start_fine_tune(parent: str, name: str, epochs: int = 1, *, session: str | None = None) -> JobStatus:
    """A copy of `parent` trained on my digits mixed with MNIST, saved as `name`; the parent stays as it is."""
    registry.check_name(parent)
    if not registry.exists(parent):
        raise LabError(f"no model named {parent!r}")
    return _launch("finetune", name, ["finetune", "--parent", parent, "--epochs", str(int(epochs))],
                   session=session, subject={"parent": parent, "epochs": int(epochs)})


def start_study(study: str, space: dict | None, *, n_trials: int, workers: int = 1, sampler: str = "tpe",
                train_limit: int | None = None, epochs: int | None = None, session: str | None = None) -> JobStatus:
    """Run `n_trials` more trials of an explore study. `space` None continues the study with its stored space."""
    from mnist_core.explore import space as spaces
    from mnist_core.explore import study as studies

    studies.check_study_name(study)
    if space is not None:
        studies.make_sampler(sampler, spaces.validate(space), None)  # bad values fail here, not in a log
    args = ["explore", "--study", study, "--trials", str(int(n_trials)), "--workers", str(int(workers)),
            "--sampler", sampler]
    args += ["--train-limit", str(int(train_limit))] if train_limit is not None else []
    args += ["--train-epochs", str(int(epochs))] if epochs is not None else []
    files = {"--space": json.dumps(space)} if space is not None else None
    subject = {"study": study, "trials": int(n_trials), "workers": int(workers), "sampler": sampler}
    return _launch("study", study, args, session=session, subject=subject, files=files)


def start_save_best(study: str, model_name: str, *, train_limit: int | None = None,
                    session: str | None = None) -> JobStatus:
    """Retrain a study's best trial on its training and validation images and save it as `model_name`."""
    args = ["explore", "--study", study, "--save-best", model_name]
    args += ["--train-limit", str(int(train_limit))] if train_limit is not None else []
    return _launch("save-best", model_name, args, session=session, subject={"study": study})


def _launch(kind: str, name: str, args: list[str], *, session: str | None, subject: dict,
            estimate: dict | None = None, files: dict[str, str] | None = None) -> JobStatus:
    """Run `python -m mnist_core ARGS` as a background job. `files` maps an option to text written into the
    job's folder and passed as that option's path, so the process reads exactly what was checked here.

    Check-then-launch happens under an exclusive lock (other processes included): without it, two
    sessions pressing Start together both saw room and both launched."""
    with fsutil.exclusive_lock(jobs_dir() / START_LOCK):
        if kind in MODEL_KINDS:
            registry.check_free(name)
        _check_room(session)
        job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        folder = job_dir(job_id)
        folder.mkdir(parents=True)
        for option, text in (files or {}).items():
            path = folder / f"{option.lstrip('-')}.json"
            path.write_text(text)
            args = [*args, option, str(path)]
        cmd = [sys.executable, "-m", "mnist_core", *args, "--name", name, "--events", str(folder / EVENTS),
               "--stop-file", str(folder / STOP), "--job-id", job_id]
        with open(folder / "log.txt", "wb") as log:
            proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, env=os.environ.copy())
        # pid + start time name this process for good: a later process given the same pid is not the job.
        fsutil.write_json_atomic(folder / INFO, {
            "id": job_id, "name": name, "kind": kind, "pid": proc.pid,
            "started_ticks": fsutil.process_start_ticks(proc.pid), "started": time.time(), "session": session,
            "subject": subject, "estimate": estimate or {}})
        return status(job_id)


def _check_room(session: str | None) -> None:
    running = running_jobs()
    mine = next((j for j in running if j.session == session), None)
    if mine:
        what = f"training {mine.name!r}" if mine.kind == "train" else f"{mine.kind} {mine.name!r}"
        raise LabError(f"a job is already running ({what}); stop it or wait for it")
    if len(running) >= MAX_RUNNING:
        raise LabError(f"{len(running)} jobs are already running on this machine (at most {MAX_RUNNING} at once, "
                       "one per core); wait for one to end")


# ---------- stopping and waiting ----------


def stop(job_id: str, keep: bool = False) -> None:
    """Ask the job to stop at its next batch. With keep, a training job saves its best epoch so far
    (marked as stopped early); without, it saves nothing."""
    folder = job_dir(job_id)
    if not folder.is_dir():
        raise LabError(f"no job {job_id!r}")
    # Written whole, then renamed into place: the job acts on the file's existence, so it must never
    # see it empty and read a "keep" as a discard.
    tmp = folder / f".{STOP}-{uuid.uuid4().hex[:8]}"
    tmp.write_text("keep" if keep else "discard")
    os.replace(tmp, folder / STOP)


def stop_requested(job_id: str) -> bool:
    return (job_dir(job_id) / STOP).exists()


def wait(job_id: str, timeout: float = 600, poll: float = 0.2) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        st = status(job_id)
        if not st.running or time.monotonic() > deadline:
            return st
        time.sleep(poll)
