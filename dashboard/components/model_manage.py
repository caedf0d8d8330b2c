"""Compare's last section: rename, delete, download or export the model picked there."""

import streamlit as st

from dashboard.components import export_ui, messages
from mnist_core import registry
from mnist_core.errors import LabError
from mnist_core.interop import export

ss = st.session_state


def _forget(name: str) -> None:
    ss.compare_pick = [n for n in ss.get("compare_pick", []) if n != name]


def _rename() -> None:
    old, new = ss.compare_manage, ss.get("compare_new_name", "").strip()
    try:
        registry.rename(old, new)
    except LabError as exc:
        messages.flash("compare", "error", str(exc))
        return
    ss.compare_pick = [new if n == old else n for n in ss.get("compare_pick", [])]
    messages.flash("compare", "success", f"Renamed {old} to {new}.")


def _delete() -> None:
    name, ss.compare_confirm = ss.compare_confirm, None
    try:
        registry.delete(name)
    except LabError as exc:
        messages.flash("compare", "error", str(exc))
        return
    _forget(name)
    messages.flash("compare", "success", f"Deleted {name}.")


def render(entries: list[registry.Entry]) -> None:
    names = [e.name for e in entries if e.status != "foreign"]
    if not names:
        return
    name = st.selectbox("Model", names, key="compare_manage")
    left, right = st.columns(2)
    left.text_input("New name", key="compare_new_name")
    left.button("Rename", on_click=_rename)
    if ss.get("compare_confirm") == name:
        right.warning(f"Delete **{name}** for good? Its folder is removed.")
        right.button("Yes, delete", type="primary", on_click=_delete)
        right.button("Cancel", on_click=lambda: ss.update(compare_confirm=None))
    else:
        right.button("Delete...", on_click=lambda: ss.update(compare_confirm=ss.compare_manage))
    if next(e for e in entries if e.name == name).ok:
        with st.expander(f"Export {name} to run outside the lab (ONNX, TFLite)"):
            export_ui.render(name)
        right.download_button("Download .keras", lambda: export.keras_bundle(name), f"{name}.zip", "application/zip",
                              on_click="ignore", help="A zip of model.keras, its metadata.json and input.json (what "
                                                       "input the model expects), for use outside the lab.")
