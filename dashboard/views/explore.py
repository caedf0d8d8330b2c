"""Explore: hyperparameter search on Optuna. Pick dimensions in the sidebar, run a study as a background job,
watch its trials live, read the charts, keep the best trial as a model."""

import pandas as pd
import streamlit as st

from dashboard.components import job_panel, messages, study_charts
from dashboard.components.session import browser_session
from mnist_core import jobs, registry
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError
from mnist_core.explore import space as spaces
from mnist_core.explore import study as studies

ss = st.session_state
KINDS = ("study", "save-best")


@st.cache_resource
def _storage(url: str):
    return studies.open_storage(url)


def storage():
    return _storage(studies.default_storage_url())  # keyed by URL: tests and users may move explore/


def _new_space(dims: list[str]) -> dict:
    space = {d: spaces.parse_values(d, ss[f"explore_dim_{d}"]) for d in dims}
    if not space:
        raise LabError("choose at least one dimension to search")
    return space


def _start(name: str, exists: bool, dims: list[str]) -> None:
    try:
        jobs.start_study(name, None if exists else _new_space(dims), n_trials=ss.explore_trials,
                         workers=ss.explore_workers, sampler=ss.explore_sampler,
                         train_limit=None if exists else ss.explore_limit,
                         epochs=None if exists else ss.explore_epochs, session=browser_session())
        ss.explore_open = name  # the page follows the study just started, whatever was open before
    except LabError as exc:
        messages.flash("explore_start", "error", str(exc))


def _sidebar(names: list[str], busy: bool) -> None:
    sb = st.sidebar
    sb.header("New or continued study")
    name = sb.text_input("Study name", value=ss.get("explore_new_name", "demo"), key="explore_new_name").strip()
    exists = name in names
    dims: list[str] = []
    if exists:
        sb.caption(f"**{markdown_literal(name)}** exists: starting continues it with its stored search space.")
        warning = studies.too_small(studies.load_study(name, storage()))
    else:
        dims = sb.multiselect("Dimensions to search", list(spaces.DIMENSIONS), default=list(spaces.DEFAULT_SPACE))
        for dim in dims:
            default = spaces.DEFAULT_SPACE.get(dim, {}).get("choices", [])
            sb.text_input(f"{dim} values", value=",".join(str(v) for v in default), key=f"explore_dim_{dim}",
                          help=f"{spaces.DIMENSIONS[dim][1]}; comma-separated, like the CLI flag --{dim}")
        sb.number_input("Training images per trial", 500, 60000, spaces.DEFAULT_TRAIN_LIMIT, 500,
                        key="explore_limit", help="The first N of the 60,000 (10% of them held out for validation).")
        sb.number_input("Epochs per trial", 1, 50, spaces.DEFAULT_EPOCHS, key="explore_epochs")
        try:
            batch = max(_new_space(dims).get("batch", [0])) or None
        except LabError:
            batch = None
        warning = spaces.too_small_warning(ss.explore_limit, ss.explore_epochs, batch)
    if warning:
        sb.warning(warning)
    sb.number_input("Trials to add", 1, 500, 6, key="explore_trials")
    sb.number_input("Worker processes", 1, 2, 1, key="explore_workers",
                    help="Each trains one trial at a time; this machine has 2 cores.")
    sb.selectbox("Sampler", studies.SAMPLERS, key="explore_sampler")
    sb.button("Start study", type="primary", disabled=busy, on_click=_start, args=(name, exists, dims))
    messages.show("explore_start", sb)


def _trials(name: str) -> None:
    try:
        study = studies.load_study(name, storage())
        rows = studies.trials(study)
    except LabError as exc:
        messages.error(exc)
        return
    if warning := studies.too_small(study):
        st.warning(warning)
    if not rows:
        st.info("No trials yet: the workers are loading TensorFlow and MNIST.")
        return
    table = pd.DataFrame(rows).rename(columns=lambda c: c.removeprefix("p:"))
    table["best"] = table["best"].map({"*": "★"}).fillna("")
    st.dataframe(table.rename(columns={"val_accuracy": "validation accuracy", "epochs_run": "epochs run"}),
                 hide_index=True, key=f"explore_trials_{name}",
                 column_config={"validation accuracy": st.column_config.NumberColumn(format="%.4f")})
    counts = table["state"].value_counts()
    st.caption(" · ".join(f"{n} {s}" for s, n in counts.items()) + " · ★ best completed trial")
    search_space, settings = studies.stored_space(study)
    st.caption(studies.describe(search_space, settings))
    study_charts.show(study)


def _live_trials(job: jobs.JobStatus) -> None:
    if job.kind != "study":
        return
    name = job.subject.get("study", job.name)
    if name not in [r["study"] for r in studies.list_studies(storage())]:
        st.info("Creating the study: loading TensorFlow and MNIST...")
        return
    _trials(name)


def _save_best(name: str, busy: bool) -> None:
    st.subheader("Save best as model")
    st.caption("Retrains the best trial on its training and validation images together, then evaluates it once on "
               "the 10,000 test images and saves it, where Compare and Draw see it.")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    key = f"explore_model_{name}"
    left.text_input("Model name", value=registry.unique_name(f"{name}-best"), key=key)

    def start() -> None:
        try:
            studies.best_params(studies.load_study(name, storage()))
            jobs.start_save_best(name, ss[key].strip(), session=browser_session())
        except LabError as exc:
            messages.flash("explore_save", "error", str(exc))

    right.button("Save best as model", disabled=busy, on_click=start)
    messages.show("explore_save")


def _delete(name: str) -> None:
    try:
        studies.delete_study(name, storage())
        ss.pop("explore_open", None)
    except LabError as exc:
        messages.flash("explore_delete", "error", str(exc))


st.title("Explore")
st.caption("Hyperparameter search on Optuna: each trial trains a variant of fast-cnn and is pruned when its "
           "validation accuracy falls behind three quarters of the finished trials. The test set is not used "
           "until you save the best.")
session = browser_session()
try:
    rows = studies.list_studies(storage())
except LabError as exc:
    messages.error(exc)
    st.stop()
names = [r["study"] for r in rows]
job = jobs.latest(session, KINDS)
busy = bool(job and job.running)
_sidebar(names, busy)
job_panel.others_note(session)
if job:
    job_panel.show(job, live_extra=_live_trials)
    st.divider()
if not rows:
    st.info("No studies yet. Choose dimensions and values in the sidebar and start one, or run "
            "`python -m mnist_core explore --study demo --trials 6 --workers 2`.")
    st.stop()

st.subheader("Studies")
st.dataframe(pd.DataFrame(rows).rename(columns={"best_val_accuracy": "best validation accuracy"}), hide_index=True,
             key="explore_studies")
live_study = job.subject.get("study") if busy and job.kind == "study" else None
if live_study and live_study not in names:
    names.append(live_study)  # just started: its process has not created it in the storage yet
if ss.get("explore_open") not in names:
    ss.explore_open = names[-1]
name = st.selectbox("Open study", names, key="explore_open")
if name == live_study:
    st.caption("This study is running: its trials are shown live above.")
else:
    _trials(name)
    _save_best(name, busy)
    with st.expander("Delete this study"):
        st.caption("Removes its trials from the storage. Models saved from it stay in the registry.")
        st.button(f"Delete study {markdown_literal(name)}", disabled=busy, on_click=_delete, args=(name,))
        messages.show("explore_delete")
