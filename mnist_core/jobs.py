"""Background training jobs: a subprocess per job, events in a JSON-lines file, stop by file.

The dashboard never trains in its own thread. A job is `python -m mnist_core train ... --events FILE`,
so it survives reruns, page switches and closed tabs, and costs the same as the CLI.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mnist_core import registry
from mnist_core import spec as specs
from mnist_core.errors import LabError
from mnist_core.paths import PROJECT_ROOT, jobs_dir

EVENTS = "events.jsonl"
STOP = "stop"
INFO = "job.json"
START_LOCK = ".start.lock"
TERMINAL = {"done", "stopped", "failed"}


@dataclass
class JobStatus:
    id: str
    name: str
    state: str  # "running", "done", "stopped", "failed"
    events: list[dict] = field(default_factory=list)
    started: float = 0.0
    message: str = ""
    kind: str = "train"  # "train" (training, fine-tuning) or "explore" (hyperparameter searches, save-best)

    @property
    def running(self) -> bool:
        return self.state == "running"

    def last(self, kind: str) -> dict | None:
        return next((e for e in reversed(self.events) if e.get("event") == kind), None)

    @property
    def history(self) -> list[dict]:
        return [e for e in self.events if e.get("event") == "epoch"]

    @property
    def batches(self) -> list[dict]:
        return [e for e in self.events if e.get("event") == "batch"]

    def curve_points(self) -> list[dict]:
        """Points for live curves, in charts.training_curves' history format.

        Train metrics come from batch events at fractional epochs (Keras reports the running mean of the
        epoch so far), so the curve moves smoothly within an epoch; validation metrics come once per epoch.
        """
        points = [{"epoch": e["epoch"] - 1 + e["batch"] / max(1, e["steps"]), "loss": e["loss"],
                   "accuracy": e["accuracy"]} for e in self.batches]
        for e in self.history:
            if "val_loss" in e:
                points.append({"epoch": e["epoch"], "val_loss": e["val_loss"], "val_accuracy": e["val_accuracy"]})
        return sorted(points, key=lambda p: p["epoch"])

    def progress(self) -> dict:
        """Fraction done, epoch, batch, elapsed and ETA seconds, from the latest events."""
        start = self.last("start") or {}
        epochs, steps = start.get("epochs", 1), start.get("steps_per_epoch", 1)
        batch = self.last("batch")
        epoch_no, batch_no = (batch["epoch"], batch["batch"]) if batch else (1, 0)
        done_steps = (epoch_no - 1) * steps + batch_no
        fraction = 1.0 if self.state == "done" else min(1.0, done_steps / max(1, epochs * steps))
        elapsed = batch["elapsed"] if batch else 0.0
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else None
        return {"fraction": fraction, "epoch": epoch_no, "epochs": epochs, "batch": batch_no, "steps": steps,
                "elapsed": elapsed, "eta": eta}


def _job_dir(job_id: str) -> Path:
    return jobs_dir() / job_id


def read_events(path: Path) -> list[dict]:
    events = []
    try:
        with open(path, errors="replace") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    break  # the writer is mid-line; the rest arrives on the next poll
                if isinstance(event, dict):
                    events.append(event)
    except OSError:
        pass
    return events


def _alive(pid: int, job_id: str) -> bool:
    """True if `pid` is still this job's process (not a zombie, not a recycled pid)."""
    try:
        pid = int(pid)
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        # Right after Popen returns, the child can still be inside exec() with an empty cmdline
        # (seen here in about 1 start in 5); that is our process starting, not a dead one.
        return not cmdline or job_id in cmdline.decode(errors="replace")
    except (OSError, ValueError, TypeError, IndexError):
        return False


def status(job_id: str) -> JobStatus:
    folder = _job_dir(job_id)
    try:
        info = json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        raise LabError(f"no job {job_id!r}") from None
    if not isinstance(info, dict) or not {"pid", "name", "started"} <= info.keys():
        raise LabError(f"job {job_id!r} is damaged (job.json lacks pid, name or started)")
    events = read_events(folder / EVENTS)
    final = next((e for e in reversed(events) if e.get("event") in TERMINAL), None)
    if final:
        state, message = final["event"], final.get("message", "")
    elif _alive(info["pid"], job_id):
        state, message = "running", ""
    else:
        state, message = "failed", "the training process ended without finishing (killed or crashed)"
    return JobStatus(job_id, info["name"], state, events, info["started"], message, info.get("kind", "train"))


def all_jobs() -> list[JobStatus]:
    root = jobs_dir()
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        try:
            found.append(status(child.name))
        except LabError:
            continue
    return sorted(found, key=lambda j: j.started, reverse=True)


def current() -> JobStatus | None:
    """The running job, if any."""
    return next((j for j in all_jobs() if j.running), None)


def latest(kind: str = "train") -> JobStatus | None:
    """The newest job of this kind (the Train page shows training jobs, not searches)."""
    jobs = [j for j in all_jobs() if j.kind == kind]
    return jobs[0] if jobs else None


def start(spec: specs.ModelSpec, config: specs.TrainConfig, name: str) -> JobStatus:
    """Launch a training subprocess. Refused while another job runs, or if the name is taken."""
    spec.validate()
    config.validate()
    return launch(name, ["train"], files={"--spec": specs.to_json(spec), "--config": specs.to_json(config)})


def start_fine_tune(parent: str, name: str, epochs: int = 1) -> JobStatus:
    """Launch `python -m mnist_core finetune`: a copy of `parent` trained on my digits mixed with MNIST."""
    registry.check_name(parent)
    if not registry.exists(parent):
        raise LabError(f"no model named {parent!r}")
    return launch(name, ["finetune", "--parent", parent, "--epochs", str(int(epochs))])


def launch(name: str, args: list[str], *, kind: str = "train", saves_model: bool = True,
           files: dict[str, str] | None = None) -> JobStatus:
    """Run `python -m mnist_core ARGS` as a background job that survives reruns and closed tabs.

    Refused while another job runs, or, if the job will save a model called `name`, when that name is
    taken. `files` maps an option to text that is written into the job's folder and passed as that
    option's path (e.g. {"--spec": json}), so the subprocess reads exactly what was checked here.
    """
    with _one_start_at_a_time():
        folder, job_id = _new_job(name if saves_model else None)
        for option, text in (files or {}).items():
            path = folder / f"{option.lstrip('-')}.json"
            path.write_text(text)
            args = [*args, option, str(path)]
        cmd = [sys.executable, "-m", "mnist_core", *args, "--name", name, "--events", str(folder / EVENTS),
               "--stop-file", str(folder / STOP), "--job-id", job_id]
        log = open(folder / "log.txt", "wb")
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=os.environ.copy())
        log.close()
        (folder / INFO).write_text(json.dumps({"id": job_id, "name": name, "pid": proc.pid, "started": time.time(),
                                               "kind": kind}))
        return status(job_id)


@contextmanager
def _one_start_at_a_time():
    """Check-then-launch under an exclusive lock (other processes included): without it, two sessions
    pressing Train together both saw no running job and both launched one."""
    jobs_dir().mkdir(parents=True, exist_ok=True)
    with open(jobs_dir() / START_LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released on close, or by the kernel if the holder dies
        yield


def _new_job(model_name: str | None) -> tuple[Path, str]:
    """Check no job runs (and that the model name, if any, is free), then make the job's folder."""
    if model_name is not None:
        registry.check_free(model_name)
    running = current()
    if running:
        what = f"training {running.name!r}" if running.kind == "train" else repr(running.name)
        raise LabError(f"a job is already running ({what}); stop it or wait for it")
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    folder = _job_dir(job_id)
    folder.mkdir(parents=True)
    return folder, job_id


def stop(job_id: str) -> None:
    """Ask the job to stop at its next batch; it then exits without saving."""
    folder = _job_dir(job_id)
    if not folder.is_dir():
        raise LabError(f"no job {job_id!r}")
    (folder / STOP).touch()


def stop_requested(job_id: str) -> bool:
    return (_job_dir(job_id) / STOP).exists()


def wait(job_id: str, timeout: float = 600, poll: float = 0.2) -> JobStatus:
    deadline = time.monotonic() + timeout
    while True:
        st = status(job_id)
        if not st.running or time.monotonic() > deadline:
            return st
        time.sleep(poll)
