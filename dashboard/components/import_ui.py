"""Home's "Import a model" control and the per-model "Download .keras" buttons (mnist_core.interop).

An upload is written to a private temp folder under a cleaned copy of its name (letters, digits, '_' and '-'
plus its suffix: never a path), imported there, and the folder goes. The import itself checks everything as data first;
its one-line refusals are shown through components/messages.py. Uploads are bounded by the server's
maxUploadSize, which dashboard/host_guard.py sets to host_guard.MAX_UPLOAD_MB.
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import cache, host_guard, warmup
from dashboard.components import messages
from mnist_core import registry
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError
from mnist_core.interop import export, importer

ss = st.session_state
log = logging.getLogger(__name__)
SLOT = "import"
MEASURE = "measure"  # the scaling select's first option: keep the measured best
MODEL_TYPES = ["keras", "h5", "hdf5", "json"]


def _default_name(file_name: str) -> str:
    return registry.unique_name(Path(file_name).stem.replace(".weights", "") or "imported")


def _safe_file_name(uploaded: str, fallback: str) -> str:
    """The upload's name as a plain file name in the temp folder (so errors name the user's file); never a path."""
    suffix = Path(uploaded).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(uploaded).stem)[:80].strip("_") or fallback
    return f"{stem}{suffix if re.fullmatch(r'[.][a-z0-9]{1,8}', suffix) else ''}"


def _scaling_label(key: str) -> str:
    if key == MEASURE:
        return "Measure it (recommended): the best of all candidates on 1,000 validation images"
    return f"{key}: {importer.SCALINGS[key]}"


def render() -> None:
    """The import form, then the scaling of the model imported last in this session (with its override)."""
    with st.expander("Import a model trained elsewhere", icon=":material/upload_file:",
                     expanded=bool(ss.get("import_last"))):
        st.caption("A Keras 3 **.keras** file, a Keras 2 full-model **.h5** (`model.save`), or an architecture "
                   "**.json** (`model.to_json()`) with its **.h5** weights (`model.save_weights`); up to "
                   f"{host_guard.MAX_UPLOAD_MB} MB each. Nothing in a file is run: Lambda layers, custom objects "
                   "and classes from outside Keras are refused.")
        model_file = st.file_uploader("Model file", type=MODEL_TYPES, key="import_model_file",
                                      max_upload_size=host_guard.MAX_UPLOAD_MB)
        weights_file = st.file_uploader("Weights (.h5), only with an architecture .json", type=["h5", "hdf5"],
                                        key="import_weights_file", max_upload_size=host_guard.MAX_UPLOAD_MB)
        if model_file is not None and ss.get("import_name_for") != model_file.name:
            ss.import_name_for, ss.import_name = model_file.name, _default_name(model_file.name)
        st.text_input("Name", key="import_name", max_chars=64,
                      help="1-64 letters, digits, '-' or '_', starting with a letter or digit.")
        st.selectbox("Input scaling the model was trained with", [MEASURE, *importer.SCALINGS],
                     format_func=_scaling_label, key="import_scaling")
        if st.button("Import", icon=":material/download_for_offline:", key="import_go",
                     disabled=model_file is None):
            _import(model_file, weights_file, str(ss.get("import_name", "")).strip(), ss.get("import_scaling"))
        messages.show(SLOT)
        if ss.get("import_last"):
            _scaling_panel(ss.import_last)


def _import(model_file, weights_file, name: str, scaling: str | None) -> None:
    bar = st.progress(0.0, text=f"Importing {markdown_literal(model_file.name)}...")
    try:
        registry.check_free(registry.check_name(name))  # before the upload is written anywhere
        with tempfile.TemporaryDirectory(prefix="mnist-import-") as tmp:
            path = Path(tmp) / _safe_file_name(model_file.name, "model")
            path.write_bytes(model_file.getvalue())
            weights = None
            if weights_file is not None:
                weights = Path(tmp) / "weights" / _safe_file_name(weights_file.name, "weights")
                weights.parent.mkdir()  # its own folder: the two uploads may share a name
                weights.write_bytes(weights_file.getvalue())
            meta = importer.import_model(
                path, name, weights=weights, scaling=None if scaling == MEASURE else scaling, mnist=cache.mnist(),
                display_name=model_file.name, weights_display_name=weights_file.name if weights_file else None,
                progress=lambda fraction, text: bar.progress(min(1.0, fraction), text=text))
    except Exception as exc:  # noqa: BLE001  one line on the page, never a traceback
        bar.empty()
        if not isinstance(exc, LabError):
            log.error("importing a model failed", exc_info=exc)
        messages.flash(SLOT, "error", messages.words(exc))  # the core's line names the file
        return
    bar.empty()
    ss.import_last = name
    messages.flash(SLOT, "success", f"Imported **{markdown_literal(name)}**: {meta['test']['accuracy']:.2%} on the "
                   f"{meta['test']['n']:,} test images. It is on Compare, Draw and Inspect now.")
    st.rerun()  # the saved-models table above shows it


def _scaling_panel(name: str) -> None:
    try:
        meta = registry.read_metadata(name)
    except LabError:
        ss.pop("import_last", None)  # deleted or renamed since
        return
    details = meta.get("import") or {}
    scores = details.get("scaling_scores") or {}
    if not scores:
        return
    how = (f"your choice; measured best: {markdown_literal(details.get('detected_scaling', ''))}"
           if details.get("scaling_overridden") else "measured best")
    st.markdown(f"**Input scaling of {markdown_literal(name)}**: {markdown_literal(details['scaling'])} ({how}). "
                f"Input shape {tuple(details.get('input_shape', []))}, output {details.get('output')}.")
    st.dataframe(pd.DataFrame([
        {"scaling": key, "accuracy": s["accuracy"], "loss": s["loss"], "chosen": key == details["scaling"],
         "what the model is fed": importer.SCALINGS.get(key, "")} for key, s in scores.items()]),
        hide_index=True, column_config={"accuracy": st.column_config.NumberColumn(format="percent"),
                                        "loss": st.column_config.NumberColumn(format="%.3f")})
    st.caption(f"Measured on {details.get('scaling_images', 'validation images')}; the lowest loss wins.")
    options = list(importer.SCALINGS)
    choice = st.selectbox("Use another input scaling", options, index=options.index(details["scaling"]),
                          format_func=_scaling_label, key=f"import_override:{name}")
    if st.button("Rebuild with this scaling", key=f"import_rescale:{name}", disabled=choice == details["scaling"]):
        bar = st.progress(0.0, text=f"Rebuilding {markdown_literal(name)}...")
        try:
            meta = importer.rescale(name, choice, mnist=cache.mnist(),
                                    progress=lambda f, text: bar.progress(min(1.0, f), text=text))
        except Exception as exc:  # noqa: BLE001
            bar.empty()
            messages.error(exc)
            return
        bar.empty()
        messages.flash(SLOT, "success", f"Rebuilt **{markdown_literal(name)}** with input scaling {choice}: "
                       f"{meta['test']['accuracy']:.2%} on the test images.")
        st.rerun()


def _keras_bundle(name: str) -> bytes:
    warmup.wait()  # Streamlit runs a download's callable in a thread of its own, which loads Keras
    return export.keras_bundle(name)


def render_downloads(entries: list[registry.Entry]) -> None:
    """One "Download .keras" button per usable model: a zip of model.keras, metadata.json and input.json,
    built only when clicked."""
    usable = [e.name for e in entries if e.ok]
    if not usable:
        return
    with st.expander("Download models (.keras with its metadata)", icon=":material/download:"):
        for name in usable:
            st.download_button(f"Download {name}.keras", data=functools.partial(_keras_bundle, name),
                               file_name=f"{name}-keras.zip", mime="application/zip", key=f"download_keras:{name}",
                               icon=":material/download:")
