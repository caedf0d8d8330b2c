"""Train: build a spec in the sidebar, measure it, train it as a background job, watch it live, see the results."""

import pandas as pd
import streamlit as st

from dashboard import cache, charts
from dashboard.components import model_results, spec_sidebar
from mnist_core import jobs, registry
from mnist_core import spec as specs
from mnist_core.errors import LabError

POLL_SECONDS = 1.0
ss = st.session_state


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _suggest_name(spec: specs.ModelSpec) -> None:
    """Keep the name box on a free name derived from the spec, unless the user typed their own."""
    suggestion = registry.unique_name(spec.describe())
    if ss.get("train_name") in (None, "", ss.get("train_name_suggested")):
        ss.train_name = suggestion
    ss.train_name_suggested = suggestion


def _start() -> None:
    try:
        spec, config = spec_sidebar.current()
        jobs.start(spec, config, ss.train_name.strip())
    except LabError as exc:
        ss.train_start_error = str(exc)


@st.fragment(run_every=POLL_SECONDS)
def _live(job_id: str) -> None:
    """Polls the job's event file; when the job ends, reruns the whole page to show the outcome."""
    job = jobs.status(job_id)
    if not job.running:
        st.rerun()
    p = job.progress()
    last = job.events[-1]["event"] if job.events else None
    if last is None:
        text = "Starting: loading TensorFlow and MNIST..."
    elif last == "evaluating":
        text = "Evaluating on the 10,000 test images and saving..."
    else:
        text = (f"Epoch {p['epoch']}/{p['epochs']} · batch {p['batch']}/{p['steps']} · "
                f"{_duration(p['elapsed'])} elapsed · ETA {_duration(p['eta'])}")
    st.progress(p["fraction"], text=text)
    # Drawn from the start, empty until the first batch: the browser loads the chart code while TensorFlow starts.
    points = job.curve_points()
    left, right = st.columns(2)
    left.plotly_chart(charts.training_curves({job.name: points}, "loss"), key="live_loss")
    right.plotly_chart(charts.training_curves({job.name: points}, "accuracy"), key="live_accuracy")


def _job_panel(job: jobs.JobStatus) -> None:
    if job.running:
        st.subheader(f"Training {job.name}")
        # Outside the fragment, so the button is not redrawn every second under the user's pointer.
        stopping = jobs.stop_requested(job.id)
        st.button("Stopping at the next batch..." if stopping else "Stop", disabled=stopping, key="train_stop",
                  on_click=jobs.stop, args=(job.id,))
        _live(job.id)
    elif job.state == "done":
        st.subheader(f"Last run: {job.name}")
        if registry.exists(job.name):
            st.success(f"Saved as **{job.name}**. See it beside the others on the Compare page.")
            model_results.show(job.name)
        else:
            st.info(f"{job.name} finished, but it has since been renamed or deleted.")
    elif job.state == "stopped":
        st.info(f"Training {job.name} was stopped; nothing was saved.")
    else:
        st.error(f"Training {job.name} failed: {job.message or 'see the job log'}")


st.title("Train")
spec, config, preset = spec_sidebar.spec_editor()
job = jobs.latest()

try:
    spec.validate()
    config.validate()
except LabError as exc:
    st.error(str(exc))
    st.stop()

left, right = st.columns([3, 2])
with left:
    st.subheader(f"Model: {spec.describe()}" + (f" (preset {preset})" if preset else ""))
    rows = cache.summary(specs.to_json(spec))
    st.dataframe(pd.DataFrame(rows), hide_index=True, height=min(420, 38 + 35 * len(rows)))
    st.caption(f"Total parameters: {sum(r['parameters'] for r in rows):,}")
with right:
    st.subheader("Cost")
    if job and job.running:
        st.caption("The estimate waits until the running job ends: timing now would slow it down and be wrong.")
    else:
        try:
            per_epoch = cache.epoch_seconds(specs.bundle_json(spec, config))
        except LabError as exc:  # e.g. MNIST not downloaded yet
            st.error(str(exc))
            st.stop()
        st.metric("Measured time per epoch", _duration(per_epoch),
                  help="Timed on a few real training batches on this machine, not guessed.")
        epochs = f"{config.epochs} epoch{'s' if config.epochs > 1 else ''}"
        st.caption(f"{epochs} ≈ {_duration(per_epoch * config.epochs)} plus start-up and evaluation")
    _suggest_name(spec)
    st.text_input("Save as", key="train_name", max_chars=64, help="Letters, digits, '-' or '_'.")
    st.button("Start training", type="primary", on_click=_start)
    if ss.get("train_start_error"):
        st.error(ss.pop("train_start_error"))

if job:
    st.divider()
    _job_panel(job)
