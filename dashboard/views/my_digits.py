"""My digits: the drawings saved from /draw. Relabel, delete, export/import, and fine-tune a model on them."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, charts, host_guard
from dashboard.components import job_panel, messages, mnist_gate
from dashboard.components.session import browser_session
from mnist_core import jobs, my_digits, registry
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

PER_PAGE = 40
COLS = 6
ss = st.session_state


def _relabel(digit_id: int) -> None:
    try:
        my_digits.relabel(digit_id, ss[f"my_label_{digit_id}"])
        messages.flash("my_digits", "success", f"Digit {digit_id} is now a {ss[f'my_label_{digit_id}']}.")
    except LabError as exc:
        messages.flash("my_digits", "error", str(exc))


def _delete(digit_id: int) -> None:
    try:
        my_digits.delete(digit_id)
        messages.flash("my_digits", "success", f"Deleted digit {digit_id}.")
    except LabError as exc:
        messages.flash("my_digits", "error", str(exc))


def _import() -> None:
    upload = ss.get("my_import")
    if upload is None:
        messages.flash("my_digits", "error", "choose a zip to import first")
        return
    try:
        messages.flash("my_digits", "success", f"Imported {my_digits.import_zip(upload.getvalue())} digits from {markdown_literal(upload.name)}.")
    except LabError as exc:
        messages.flash("my_digits", "error", markdown_literal(f"{upload.name}: {exc}"))  # names from the zip


def _fine_tune(parent: str, name: str, epochs: int) -> None:
    try:
        jobs.start_fine_tune(parent, name.strip(), epochs, session=browser_session())
    except LabError as exc:
        messages.flash("my_finetune", "error", str(exc))


def _move_aside() -> None:
    try:
        kept = my_digits.move_aside()
        messages.flash("my_digits", "success", f"The damaged file was kept as {kept.name} (with its journal files, "
                       "if any); a new, empty collection starts now.")
    except LabError as exc:  # busy again, or not damaged after all: said in words, nothing moved
        messages.flash("my_digits", "error", str(exc))


st.title("My digits")
try:
    digits = my_digits.all_digits()
except Exception as exc:  # busy, full, read-only or damaged, each in words; anything else is logged
    messages.show("my_digits")
    messages.error(exc)
    if getattr(exc, "can_move_aside", False):  # only real damage: a busy or full database is left alone
        st.button("Move the damaged file aside and start a new one", on_click=_move_aside,
                  icon=":material/restore_page:")
    else:
        st.button("Try again", icon=":material/refresh:")
    st.stop()

messages.show("my_digits")

if not digits:
    st.info("No saved digits yet. Draw one on the Draw page and press \"Save to my digits\", or import a zip below.")
else:
    counts = np.bincount([d.label for d in digits], minlength=10)
    left, right = st.columns([1, 2])
    left.metric("Saved digits", len(digits))
    left.caption("Per digit: " + ", ".join(f"{d}: {n}" for d, n in enumerate(counts)))
    right.plotly_chart(charts.class_distribution({"my digits": counts}), config={"displayModeBar": False})

    newest = digits[::-1]
    pages = max(1, -(-len(newest) // PER_PAGE))
    page = st.number_input("Page", 1, pages, 1, key="my_page") if pages > 1 else 1
    shown = newest[(page - 1) * PER_PAGE : page * PER_PAGE]
    for start in range(0, len(shown), COLS):
        for col, d in zip(st.columns(COLS), shown[start : start + COLS], strict=False):
            with col.container(border=True, key=f"my_tile_{d.id}"):
                st.image(d.png, width=84, caption=f"#{d.id}, saved {d.created[5:16].replace('T', ' ')}")
                st.selectbox("label", range(10), index=d.label, key=f"my_label_{d.id}", on_change=_relabel,
                             args=(d.id,), label_visibility="collapsed")
                st.button("Delete", key=f"my_del_{d.id}", on_click=_delete, args=(d.id,), icon=":material/delete:")

st.subheader("Export and import")
left, right = st.columns(2)
left.download_button("Export as zip (PNGs + labels.csv)", my_digits.export_zip(), "my_digits.zip", "application/zip",
                     disabled=not digits, icon=":material/download:")
right.file_uploader("Import a zip exported here (or PNGs with a labels.csv: file,label)", type=["zip"], key="my_import",
                    max_upload_size=host_guard.MAX_UPLOAD_MB)
right.button("Import", on_click=_import, icon=":material/upload:")

st.subheader("Fine-tune a model on my digits")
names = cache.usable_models()
if not digits or not names:
    st.caption("Needs at least one saved digit and one saved model.")
    st.stop()
st.caption("Trains a copy of the chosen model for a few passes over a sample of 6,000 MNIST training images mixed "
           "with your digits (repeated to about a tenth of the mix), as a background job. The copy is saved as a "
           "new model that names its parent; the parent stays as it was. With 8 or more digits, a quarter of "
           "them is held out of the tuning, so the score on your digits is not on digits the model has seen.")
left, mid, right = st.columns([2, 2, 1])
parent = left.selectbox("Start from", names, key="my_parent")
name = mid.text_input("Name of the new model", registry.unique_name(f"{parent}-mine"), key=f"my_new_name_{parent}")
epochs = right.number_input("Epochs", 1, 5, 1, key="my_epochs")
mnist_gate.require()  # fine-tuning mixes in MNIST training images
job = jobs.latest(browser_session(), kinds=("finetune",))
st.button("Fine-tune", on_click=_fine_tune, args=(parent, name, epochs), icon=":material/model_training:",
          disabled=bool(job and job.running))
messages.show("my_finetune")


def result(job: jobs.JobStatus) -> None:
    done = job.last("done") or {}
    summary = done.get("fine_tune")
    if not summary:
        return
    held = summary.get("held_out", 0)  # jobs from before the hold-out existed have no such field
    st.caption(f"Fine-tuned from {summary['parent']} on {summary['my_digits'] - held} of your digits.")
    before, after = f"before ({summary['parent']})", f"after ({job.name})"
    st.dataframe(pd.DataFrame({
        "accuracy on": [f"my digits: {held} held out of the tuning" if held
                        else "my digits (also used for tuning: too few to hold any out)", "MNIST test (10,000)"],
        before: [summary["before"]["my_digits_accuracy"], summary["before"]["mnist_test_accuracy"]],
        after: [summary["after"]["my_digits_accuracy"], summary["after"]["mnist_test_accuracy"]],
    }), hide_index=True, column_config={c: st.column_config.NumberColumn(format="percent") for c in (before, after)})


if job:
    job_panel.show(job, result=result)
