"""Train: build a spec in the sidebar, measure it, train it as a background job, watch it live, see the results."""

import pandas as pd
import streamlit as st

from dashboard import cache
from dashboard.components import job_panel, messages, mnist_gate, model_results, spec_sidebar, train_estimate
from dashboard.components.session import browser_session
from mnist_core import cost, group_stats, groups, jobs, registry
from mnist_core import spec as specs
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

ss = st.session_state
NO_VARY = "nothing"
EXAMPLES = {int: "32, 128, 512", float: "0, 0.2, 0.5", bool: "true, false"}  # a placeholder per kind of setting


def _suggest_name(spec: specs.ModelSpec, grouped: bool = False) -> None:
    """Keep the name box on a free name derived from the spec, unless the user typed their own. A group's runs
    add suffixes (-s0, -units32), so for a group the name must also be no earlier group's base."""
    base = suggestion = registry.unique_name(spec.describe())
    taken = {e.name for e in cache.models()} if grouped else set()
    for i in range(2, 100):
        if not any(n.startswith(f"{suggestion}-") for n in taken):
            break
        suggestion = registry.unique_name(f"{base}-{i}")
    if ss.get("train_name") in (None, "", ss.get("train_name_suggested")):
        ss.train_name = suggestion
    ss.train_name_suggested = suggestion


def _group_request(spec: specs.ModelSpec) -> dict | None:
    """What the seed and vary controls ask for, as jobs.start_train's `group` (None: one run)."""
    request = {"seeds": int(ss.get("train_seeds") or 1)}
    path = ss.get("train_vary", NO_VARY)
    if path != NO_VARY and path in groups.settings_of(spec):
        request["vary"] = f"{path}={ss.get('train_values', '')}"
    return request if request["seeds"] > 1 or "vary" in request else None


def _plan(spec: specs.ModelSpec, config: specs.TrainConfig, request: dict) -> list[groups.Run]:
    setting, values = groups.parse_vary(request["vary"], spec) if "vary" in request else (None, None)
    return groups.plan(spec, config, ss.train_name.strip(), seeds=request["seeds"], setting=setting, values=values)


def _group_controls(spec: specs.ModelSpec, config: specs.TrainConfig) -> None:
    a, b = st.columns([2, 3])
    a.number_input("Repeat with seeds", 1, groups.MAX_SEEDS, key="train_seeds",
                   help=f"Train the same spec N times with seeds {config.seed}, {config.seed + 1}, ... (at most "
                        f"{groups.MAX_SEEDS}); Compare shows them as one group with mean ± sd.")
    options = [NO_VARY, *groups.settings_of(spec)]
    if ss.get("train_vary") not in options:  # a layer that has since been removed
        ss.train_vary = NO_VARY
    b.selectbox("Vary one setting", options, key="train_vary",
                format_func=lambda p: p if p == NO_VARY else groups.parse_setting(p, spec).label,
                help=f"Train one run per value (2 to {groups.MAX_VALUES} values; at most {groups.MAX_RUNS} runs with "
                     "the seeds): what does this setting do?")
    if ss.train_vary != NO_VARY:
        setting = groups.parse_setting(ss.train_vary, spec)
        example = EXAMPLES.get(setting.kind) or ", ".join(setting.kind[:3])
        st.text_input(f"Values of {setting.label} (now {groups.format_value(setting.current(spec, config))}), "
                      "separated by commas", key="train_values", placeholder=example, max_chars=200)


def _start() -> None:
    try:
        spec, config = spec_sidebar.current()
        busy = bool(jobs.others_running(browser_session()))
        estimate = train_estimate.for_start(specs.bundle_json(spec, config), busy)
        jobs.start_train(spec, config, ss.train_name.strip(), session=browser_session(), estimate=estimate,
                         group=_group_request(spec))
    except LabError as exc:
        messages.flash("train_start", "error", str(exc))


def _group_results(job: jobs.JobStatus) -> None:
    names = set((job.last("done") or {}).get("models") or [])
    found = [e for e in cache.models() if e.ok and e.name in names]
    for group in group_stats.collect((e.name, e.metadata) for e in found):
        rows = [{**({group.setting: groups.format_value(r["value"])} if group.setting else {}), "runs": r["n"],
                 "mean": r["mean"], "sd": r["sd"], "min": r["min"], "max": r["max"]} for r in group_stats.rows(group)]
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            k: st.column_config.NumberColumn(format="percent") for k in ("mean", "sd", "min", "max")})


def _results(job: jobs.JobStatus) -> None:
    if "group" in job.subject:
        _group_results(job)
    else:
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
    busy = bool((job and job.running) or others)
    parts = None
    if estimated:
        try:
            parts = train_estimate.show(specs.bundle_json(spec, config), busy)
        except LabError as exc:
            messages.error(exc)
            st.stop()
    _suggest_name(spec, grouped=_group_request(spec) is not None)
    _group_controls(spec, config)
    st.text_input("Save as", key="train_name", max_chars=64, help="Letters, digits, '-' or '_'; a group's runs "
                  "add a suffix each (-s1 for seed 1, -dropout0p2 for a value).")
    request, runs = _group_request(spec), None
    if request:
        try:
            runs = _plan(spec, config, request)
        except LabError as exc:
            messages.error(exc)
    if runs and parts:
        # One process trains the runs one after another: one start-up, then each run's epochs and evaluation.
        total = (parts["startup_seconds"] + groups.planned_seconds(runs, spec, parts["epoch_seconds"])
                 + len(runs) * parts["evaluation_seconds"])
        st.caption(f"{len(runs)} runs ({markdown_literal(runs[0].name)} ... {markdown_literal(runs[-1].name)}) ≈ "
                   f"{job_panel.duration(total)} in all, one after another, start-up and evaluation of each included")
    label = f"Start {len(runs)} runs" if runs else "Start training"
    st.button(label, type="primary", on_click=_start,
              disabled=bool(job and job.running) or estimated is None or bool(request and not runs))
    messages.show("train_start")
    job_panel.others_note(session)

if job:
    st.divider()
    job_panel.show(job, result=_results)
