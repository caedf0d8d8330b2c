"""The Train page's estimate of a whole training job: start-up, epochs and evaluation (mnist_core.estimate),
timed in this server once per spec and config, and never while jobs run (it would slow them and be wrong).
"""

from __future__ import annotations

import streamlit as st

from dashboard import cache
from dashboard.components import job_panel
from mnist_core import estimate
from mnist_core import spec as specs

IDLE = "It assumes an idle machine: jobs running now will make this run slower."
WAITS = ("The estimate waits until the running jobs end: timing now would slow them down and be wrong. "
         "It will assume an idle machine.")


@st.cache_resource
def _known() -> dict:
    """The last estimate of each bundle this server has made, for the sessions that cannot time now."""
    return {}


@st.cache_data(show_spinner="Timing a few training steps...", max_entries=32)
def job_estimate(bundle: str) -> dict:
    """mnist_core.estimate.job_estimate for a spec+config bundle (spec.bundle_json), cached per bundle.
    Raises LabError for a spec over the lab's limits, before any work."""
    spec, config = specs.parse_bundle(bundle)
    result = estimate.job_estimate(spec, config or specs.TrainConfig(), cache.mnist())
    _known()[bundle] = result
    return result


def last_known(bundle: str) -> dict | None:
    return _known().get(bundle)


def for_start(bundle: str, busy: bool) -> dict:
    """What a job records as its estimate: the parts, measured now if nothing runs, else the last known."""
    found = last_known(bundle) or (None if busy else job_estimate(bundle))
    return estimate.recorded(found) if found else {}


def in_words(parts: dict) -> str:
    epochs = parts["epochs"]
    return (f"About {job_panel.duration(parts['total_seconds'])} in all: start-up "
            f"{job_panel.duration(parts['startup_seconds'])}, {epochs} epoch{'s' if epochs != 1 else ''} × "
            f"{job_panel.duration(parts['epoch_seconds'])}, evaluation {job_panel.duration(parts['evaluation_seconds'])}.")


def show(bundle: str, busy: bool) -> dict | None:
    """Draw the estimate (a metric and its parts in words); with `busy` (jobs running), the last known one
    or that it waits, and in both cases that it assumes an idle machine. Returns the parts shown, if any.
    Raises LabError for a spec over the lab's limits."""
    parts = last_known(bundle) if busy else job_estimate(bundle)
    if parts is None:
        st.caption(WAITS)
        return None
    label = "Estimated job time" if busy or not parts["measured"] else "Measured job time"
    st.metric(label, job_panel.duration(parts["total_seconds"]), help=parts["note"])
    st.caption(in_words(parts) + (f" {parts['note']}" if not parts["measured"] else ""))
    if busy:
        st.caption(f"Measured before the running jobs started. {IDLE}")
    return parts
