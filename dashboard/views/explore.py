"""Explore: hyperparameter search on Optuna. Pick dimensions in the sidebar, run a study as a background job,
watch its trials live, read Optuna's charts, keep the best trial as a model."""

import pandas as pd
import streamlit as st

from mnist_core import jobs, registry, search
from mnist_core.errors import LabError

POLL_SECONDS = 2.0
ss = st.session_state


@st.cache_resource
def _storage(url: str):
    return search.open_storage(url)


def storage():
    return _storage(search.default_storage_url())  # keyed by URL: tests and users may move explore/


def _running_job() -> jobs.JobStatus | None:
    job = jobs.current()
    return job if job and job.kind == "explore" else None  # a search or a save-best retraining


def _sidebar(studies: list[str]) -> None:
    sb = st.sidebar
    sb.header("New or continued study")
    name = sb.text_input("Study name", value=ss.get("explore_new_name", "demo"), key="explore_new_name")
    exists = name in studies
    if exists:
        sb.caption(f"**{name}** exists: starting continues it with its stored search space.")
    else:
        dims = sb.multiselect("Dimensions to search", list(search.DIMENSIONS), default=list(search.DEFAULT_SPACE))
        for dim in dims:
            default = search.DEFAULT_SPACE.get(dim, {}).get("choices", [])
            sb.text_input(f"{dim} values", value=",".join(str(v) for v in default), key=f"explore_dim_{dim}",
                          help=f"{search.DIMENSIONS[dim][1]}; comma-separated, like the CLI flag --{dim}")
        sb.number_input("Training images per trial", 500, 60000, search.DEFAULT_TRAIN_LIMIT, 500,
                        key="explore_limit", help="The first N of the 60,000 (10% of them held out for validation).")
        sb.number_input("Epochs per trial", 1, 50, search.DEFAULT_EPOCHS, key="explore_epochs")
    sb.number_input("Trials to add", 1, 500, 6, key="explore_trials")
    sb.number_input("Worker processes", 1, 4, 1, key="explore_workers", help="Each trains one trial at a time.")
    sb.selectbox("Sampler", search.SAMPLERS, key="explore_sampler")
    if sb.button("Start study", type="primary", disabled=_running_job() is not None):
        try:
            space = None if exists else {d: search.parse_values(d, ss[f"explore_dim_{d}"]) for d in dims}
            if space == {}:
                raise LabError("choose at least one dimension to search")
            search.start_search_job(name, space, n_trials=ss.explore_trials, workers=ss.explore_workers,
                                    sampler=ss.explore_sampler, train_limit=None if exists else ss.explore_limit,
                                    epochs=None if exists else ss.explore_epochs)
            ss.explore_open = name
            st.rerun()
        except LabError as exc:
            sb.error(str(exc))


def _charts(study) -> None:
    from optuna import visualization as vis

    tabs = st.tabs(["Parallel coordinates", "History", "Importances", "Learning curves"])
    plots = [(vis.plot_parallel_coordinate, "parallel"), (vis.plot_optimization_history, "history"),
             (vis.plot_param_importances, "importances"), (vis.plot_intermediate_values, "curves")]
    for tab, (plot, key) in zip(tabs, plots, strict=True):
        with tab:
            try:
                fig = plot(study)
                fig.update_layout(height=420, margin={"t": 40, "b": 10})
                st.plotly_chart(fig, key=f"explore_{key}")
            except Exception as exc:  # Optuna refuses until it has enough finished trials (e.g. importances)
                st.caption(f"Not available yet: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def _trials_panel(name: str) -> None:
    study = search.load_study(name, storage())
    rows = search.trials(study)
    if not rows:
        st.info("No trials yet: the workers are loading TensorFlow and MNIST.")
        return
    table = pd.DataFrame(rows).rename(columns=lambda c: c.removeprefix("p:"))
    table["best"] = table["best"].map({"*": "★"}).fillna("")
    st.dataframe(table, hide_index=True, key="explore_trials_table",
                 column_config={"val_accuracy": st.column_config.NumberColumn(format="%.4f")})
    counts = table["state"].value_counts()
    st.caption(" · ".join(f"{n} {s}" for s, n in counts.items()) + " · ★ best completed trial")
    settings = study.user_attrs.get("settings")
    if settings:
        st.caption(search.describe(study.user_attrs["space"], settings))
    _charts(study)


@st.fragment(run_every=POLL_SECONDS)
def _live(name: str, job_id: str) -> None:
    job = jobs.status(job_id)
    if not job.running:
        st.rerun()  # show the final state with the whole page
    stopping = jobs.stop_requested(job_id)
    st.caption("Running in the background: this page, other pages and closed tabs do not stop it.")
    if st.button("Stopping..." if stopping else "Stop the study", disabled=stopping, key="explore_stop"):
        jobs.stop(job_id)
    _trials_panel(name)


def _save_best(name: str) -> None:
    st.subheader("Save best as model")
    st.caption("Retrains the best trial on its training and validation images together, then evaluates it once on "
               "the 10,000 test images and saves it, where Compare and Draw see it.")
    left, right = st.columns([3, 1])
    model = left.text_input("Model name", value=registry.unique_name(f"{name}-best"), key=f"explore_model_{name}")
    if right.button("Save best as model", disabled=_running_job() is not None):
        try:
            search.best_params(search.load_study(name, storage()))
            ss.explore_save_job = search.start_save_job(name, model.strip()).id
            st.rerun()
        except LabError as exc:
            st.error(str(exc))


def _last_save() -> None:
    if not ss.get("explore_save_job"):
        return
    job = jobs.status(ss.explore_save_job)
    if job.running:
        st.info(f"Retraining the best trial as **{job.name}**...")
    elif job.state == "done":
        st.success(f"Saved **{job.name}**: see it on the Compare and Draw pages.")
    else:
        st.error(f"Saving {job.name} {job.state}: {job.message or 'see the job log'}")


st.title("Explore")
st.caption("Hyperparameter search on Optuna: each trial trains a variant of fast-cnn and is pruned when its "
           "validation accuracy falls behind three quarters of the finished trials. The test set is not used "
           "until you save the best.")
try:
    rows = search.list_studies(storage())
except LabError as exc:
    st.error(str(exc))
    st.stop()
names = [r["study"] for r in rows]
_sidebar(names)
running = _running_job()
if not rows:
    st.info("No studies yet. Choose dimensions and values in the sidebar and start one, or run "
            "`python -m mnist_core explore --study demo --trials 6 --workers 2`.")
    st.stop()

st.dataframe(pd.DataFrame(rows), hide_index=True, key="explore_studies")
default = ss.get("explore_open") if ss.get("explore_open") in names else names[-1]
name = st.selectbox("Open study", names, index=names.index(default))
_last_save()
if running and running.name == f"explore:{name}":
    _live(name, running.id)
else:
    _trials_panel(name)
    _save_best(name)
    with st.expander("Delete this study"):
        st.caption("Removes its trials from the storage. Models saved from it stay in the registry.")
        if st.button(f"Delete study {name}", disabled=running is not None):
            search.delete_study(name, storage())
            ss.pop("explore_open", None)
            st.rerun()
