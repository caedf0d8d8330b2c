"""The one job panel: every page that starts background jobs (Train, Explore, My digits) shows them here.

Running: what the job works on, Stop in a fragment of its own (outside the polling fragment, so the button
is not redrawn under the pointer every second, and a click reruns only the Stop controls), and a fragment
that polls the job's events: progress with an ETA, live curves. When the job ends the fragment reruns the
whole page, which then shows the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import streamlit as st

from dashboard import charts
from dashboard.components import messages
from mnist_core import jobs, registry
from mnist_core import spec as specs
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

POLL_SECONDS = 1.0
KEEPS_ON_STOP = ("train", "save-best")  # the kinds that can save their best epoch so far when stopped
ss = st.session_state


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "estimating..."
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def title(job: jobs.JobStatus) -> str:
    subject = job.subject
    if job.kind == "train" and isinstance(subject.get("group"), dict):
        return f"Training group {job.name} ({subject['group'].get('runs', '?')} runs)"
    return {
        "train": f"Training {job.name}",
        "finetune": f"Fine-tuning {subject.get('parent', '?')} into {job.name}",
        "study": f"Study {subject.get('study', job.name)}",
        "save-best": f"Retraining the best trial of {subject.get('study', '?')} as {job.name}",
    }.get(job.kind, job.name)


def describe(job: jobs.JobStatus) -> str:
    """What the job works on, from its own record (never from whatever the sidebar holds now)."""
    subject = job.subject
    if job.kind == "train" and "spec" in subject:
        try:
            spec = specs.spec_from_dict(subject["spec"])
            config = specs.config_from_dict(subject["config"])
        except (LabError, KeyError, TypeError, ValueError):
            return ""
        return (f"{spec.describe()} · {config.epochs} epoch{'s' if config.epochs != 1 else ''}, batch "
                f"{config.batch_size}, {config.optimizer} at {config.learning_rate:g}" + _group_words(subject))
    if job.kind == "study":
        trials = subject.get("trials", "?")
        return (f"{trials} more trial{'' if trials == 1 else 's'} on {subject.get('workers', 1)} worker(s), "
                f"sampler {subject.get('sampler', '?')}")
    if job.kind == "finetune":
        return f"{subject.get('epochs', 1)} epoch(s) on my digits mixed with MNIST"
    return ""


def _group_words(subject: dict) -> str:
    group = subject.get("group")
    if not isinstance(group, dict):
        return ""
    seeds = group.get("seeds", 1)
    words = f" · {seeds} seeds each" if seeds != 1 else ""
    if group.get("setting"):
        values = ", ".join(str(v) for v in group.get("values") or [])
        words = f" · varying {group['setting']} over {values}" + words
    return words


def others_note(session: str | None, where=None) -> None:
    """Other sessions' running jobs: a reason for slower training here, not this session's result."""
    others = jobs.others_running(session)
    if others:
        n = len(others)
        (where or st).caption(f":material/info: {n} other job{'s' if n > 1 else ''} running on this machine "
                              "(from other tabs or users): training here may be slower than estimated.")


def _progress_text(job: jobs.JobStatus, p: dict) -> str:
    last = job.events[-1]["event"] if job.events else None
    if last is None:
        return f"Starting: loading TensorFlow and MNIST... (about {duration(p['eta'])} in all)"
    run = f"Run {p['run']}/{p['runs']} · " if "run" in p else ""
    if last == "evaluating":
        return f"{run}Evaluating on the 10,000 test images and saving..."
    return (f"{run}Epoch {p['epoch']}/{p['epochs']} · batch {p['batch']}/{p['steps']} · "
            f"{duration(p['elapsed'])} elapsed · about {duration(p['eta'])} left")


def _live_body(job_id: str, extra: Callable[[jobs.JobStatus], None] | None) -> None:
    # A fragment's own reruns do not pass through app.py's page boundary, so it has its own.
    try:
        job = jobs.status(job_id)
    except LabError as exc:  # its folder was removed or its job.json damaged while it was polled
        st.warning(f"Job {job_id}: {jobs.job_dir(job_id) / jobs.INFO} is gone or damaged (its folder was removed "
                   f"while it ran?); nothing more to show. ({exc})")
        return
    if not job.running:
        st.rerun(scope="app")  # the whole page shows the outcome once; polling ends with this fragment
    try:
        _live_view(job, extra)
    except Exception as exc:  # st.rerun/st.stop are BaseExceptions and pass
        messages.error(exc)


def _live_view(job: jobs.JobStatus, extra: Callable[[jobs.JobStatus], None] | None) -> None:
    if job.kind == "study":
        st.caption(f"Running for {duration(job.progress()['elapsed'])}; trials appear as they finish.")
    else:
        p = job.progress()
        st.progress(p["fraction"], text=_progress_text(job, p))
        # Drawn from the first second, empty until the first batch: the browser loads the chart code while
        # TensorFlow starts, and the axes are fixed so nothing jumps when points arrive.
        if "run" in p:  # a group's runs one after another: the current run's curves
            job = replace(job, events=[e for e in job.events if e.get("run") == p["run"]])
        points, epochs = job.curve_points(), p["epochs"]
        left, right = st.columns(2)
        for col, metric in ((left, "loss"), (right, "accuracy")):
            fig = charts.training_curves({job.name: points}, metric)
            fig.update_xaxes(range=[0, epochs])
            col.plotly_chart(fig, key=f"live_{metric}", config={"displayModeBar": False})
    if extra:
        extra(job)


def _stop(job_id: str, keep: bool = False) -> None:
    """Stop's callback: a job already gone (folder removed, disk read-only) is said in words, never raised."""
    try:
        jobs.stop(job_id, keep)
    except (LabError, OSError) as exc:
        messages.flash("job_panel", "error", f"could not stop job {job_id}: {messages.words(exc)}")


def _stop_controls(job: jobs.JobStatus) -> None:
    # Drawn as a fragment of its own: with a job training on both cores, a Stop that reran the whole Train page
    # took 0.80 s (median) to show its question; rerunning only these buttons, 0.28 s (benchmarks/stop_latency.py).
    if messages.pending("job_panel"):  # _stop failed: the whole page shows why, with the job as it now is
        st.rerun(scope="app")
    if jobs.stop_requested(job.id):
        st.button("Stopping...", disabled=True, key=f"stopping_{job.id}")
        return
    if job.kind not in KEEPS_ON_STOP:
        help_text = ("Each worker ends its current trial (marked failed); finished trials stay." if job.kind == "study"
                     else "Nothing is saved.")
        st.button("Stop", key=f"stop_{job.id}", on_click=_stop, args=(job.id,), help=help_text)
        return
    asking = f"stop_ask_{job.id}"
    if not ss.get(asking):
        st.button("Stop", key=f"stop_{job.id}", on_click=lambda: ss.update({asking: True}))
        return
    group = " (the group's runs already saved stay)" if "group" in job.subject else ""
    st.caption(f"Stop now: keep the model as it is at its best epoch so far, or discard it?{group}")
    a, b, c = st.columns(3)
    a.button("Keep best epoch", key=f"keep_{job.id}", type="primary", on_click=_stop, args=(job.id, True),
             help="Saved under its name and marked as stopped early. Needs at least one finished epoch.")
    b.button("Discard", key=f"discard_{job.id}", on_click=_stop, args=(job.id, False))
    c.button("Keep training", key=f"resume_{job.id}", on_click=lambda: ss.update({asking: False}))


def _model_exists(name) -> bool:
    try:
        return registry.exists(name)
    except LabError:  # a done event naming no valid model (a hand-edited or damaged events file)
        return False


def show(job: jobs.JobStatus, *, live_extra: Callable[[jobs.JobStatus], None] | None = None,
         result: Callable[[jobs.JobStatus], None] | None = None) -> None:
    """The panel for `job`: live while it runs, its outcome once it has ended.

    `live_extra(job)` draws page-specific live content inside the polling fragment (e.g. the trials table);
    `result(job)` draws page-specific results under a successful outcome (e.g. the saved model's metrics).
    """
    messages.show("job_panel")
    running = job.running
    st.subheader(title(job) if running else f"Last run: {title(job)}")
    if text := describe(job):
        st.caption(text)
    if running:
        st.fragment(_stop_controls)(job)
        st.fragment(run_every=POLL_SECONDS)(_live_body)(job.id, live_extra)
        return
    outcome = job.outcome
    if job.state == "done" and "group" in job.subject:
        saved = (job.last("done") or {}).get("models") or []
        st.success(f"Saved {len(saved)} runs of group **{markdown_literal(job.name)}**: "
                   f"{markdown_literal(', '.join(str(n) for n in saved))}.")
        st.page_link("views/compare.py", label=f"Compare group {job.name}", icon=":material/compare:")
        if result:
            result(job)
    elif job.state == "done":
        model = outcome.get("model")
        if model and not _model_exists(model):
            st.info(f"{markdown_literal(model)} was saved, but it has since been renamed or deleted.")
            return
        if model:
            early = " at its best epoch (stopped early, on request)" if outcome.get("stopped_early") else ""
            st.success(f"Saved as **{markdown_literal(model)}**{early}.")
            st.page_link("views/compare.py", label=f"Compare {model} with the other models", icon=":material/compare:")
        else:
            st.success(f"{markdown_literal(title(job))}: {markdown_literal(job.message or 'done')}.")
        if result:
            result(job)
    elif job.state == "stopped":
        st.info(f"{markdown_literal(title(job))} was stopped: {markdown_literal(job.message or 'nothing was saved')}.")
    else:
        st.error(f"{markdown_literal(title(job))} failed: {markdown_literal(job.message or 'see the job log')}")
