"""Train: build a spec in the sidebar, measure it, train it as a background job, watch it live, see the results."""

import pandas as pd
import streamlit as st

from dashboard import cache
from dashboard.components import job_panel, messages, mnist_gate, model_results, spec_sidebar
from dashboard.components.session import browser_session
from mnist_core import cost, jobs, registry
from mnist_core import spec as specs
from mnist_core.errors import LabError

ss = st.session_state


def _suggest_name(spec: specs.ModelSpec) -> None:
    """Keep the name box on a free name derived from the spec, unless the user typed their own."""
    suggestion = registry.unique_name(spec.describe())
    if ss.get("train_name") in (None, "", ss.get("train_name_suggested")):
        ss.train_name = suggestion
    ss.train_name_suggested = suggestion


def _start() -> None:
    try:
        spec, config = spec_sidebar.current()
        estimate = {"epoch_seconds": cache.epoch_seconds(specs.bundle_json(spec, config))}
        jobs.start_train(spec, config, ss.train_name.strip(), session=browser_session(), estimate=estimate)
    except LabError as exc:
        messages.flash("train_start", "error", str(exc))


def _results(job: jobs.JobStatus) -> None:
    model_results.show(job.outcome["model"])


st.title("Train")
session = browser_session()
spec, config, preset = spec_sidebar.spec_editor()
job = jobs.latest(session, kinds=("train",))
others = jobs.others_running(session)

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
    try:
        estimated = cost.check(spec, config)  # over a limit: said here, and Start refuses it the same way
    except LabError as exc:
        messages.error(exc)
        estimated = None
    if estimated:
        st.caption(f"{estimated.parameters:,} parameters · {estimated.training_flops / 1e6:,.1f} MFLOPs per "
                   f"training image · {estimated.activation_bytes(config.batch_size) / 1024**2:,.1f} MiB of "
                   f"activations per batch (limits {cost.MAX_PARAMETERS:,} · "
                   f"{cost.MAX_TRAINING_FLOPS_PER_IMAGE / 1e6:,.0f} · "
                   f"{cost.MAX_ACTIVATION_BYTES_PER_BATCH / 1024**2:,.0f})")
    mnist_gate.require()
    if estimated and ((job and job.running) or others):
        st.caption("The estimate waits until the running jobs end: timing now would slow them down and be wrong.")
    elif estimated:
        try:
            per_epoch = cache.epoch_estimate(specs.bundle_json(spec, config))
        except LabError as exc:
            messages.error(exc)
            st.stop()
        label = "Measured time per epoch" if per_epoch["measured"] else "Estimated time per epoch"
        st.metric(label, job_panel.duration(per_epoch["seconds"]), help=per_epoch["note"])
        if not per_epoch["measured"]:
            st.caption(per_epoch["note"])
        epochs = f"{config.epochs} epoch{'s' if config.epochs > 1 else ''}"
        st.caption(f"{epochs} ≈ {job_panel.duration(per_epoch['seconds'] * config.epochs)} plus start-up and evaluation")
    _suggest_name(spec)
    st.text_input("Save as", key="train_name", max_chars=64, help="Letters, digits, '-' or '_'.")
    st.button("Start training", type="primary", on_click=_start,
              disabled=bool(job and job.running) or estimated is None)
    messages.show("train_start")
    job_panel.others_note(session)

if job:
    st.divider()
    job_panel.show(job, result=_results)
