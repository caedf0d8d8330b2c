"""Compare's Ensembles section: save the picked models as "ensemble of A, B, C" (averaged probabilities).

The save runs in the button's callback: only a callback may add the new entry to Compare's model picker
(its widget is drawn above this section). A callback's elements go to the top of the page, so the progress
is also told in a toast, which shows wherever the page is scrolled.
"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import cache
from dashboard.components import messages
from mnist_core import ensemble, registry
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

ss = st.session_state
log = logging.getLogger(__name__)
SLOT = "ensemble"


def _name_key(members: list[str]) -> str:
    return "ensemble_name:" + ",".join(members)


def _save(members: list[str]) -> None:
    key = _name_key(members)
    name = str(ss.get(key, "")).strip()
    try:
        registry.check_free(registry.check_name(name))  # before the slow part, like every bound here
        ensemble.check_members(members)
        bar = st.progress(0.0, text=f"Saving {markdown_literal(name)}...")
        note = st.toast(f"Saving {markdown_literal(name)}...", duration="infinite")  # seen wherever one scrolled

        def progress(fraction: float, text: str) -> None:
            bar.progress(min(1.0, fraction), text=text)
            note.toast(f"{markdown_literal(name)}: {text}", duration="infinite")

        meta = ensemble.save(members, name, mnist=cache.mnist(), on_progress=progress)
        bar.empty()
        note.toast(f"Saved {markdown_literal(name)}.", duration="short")
    except Exception as exc:  # noqa: BLE001  one line in the section, never a traceback
        if not isinstance(exc, LabError):
            log.error("saving an ensemble failed", exc_info=exc)
        messages.flash(SLOT, "error", f"Cannot save the ensemble: {messages.words(exc)}")
        return
    ss.compare_pick = [*ss.get("compare_pick", []), name]
    ss[key] = ensemble.default_name(members)  # the saved name is taken now
    messages.flash(SLOT, "success", f"Saved **{markdown_literal(name)}** ({markdown_literal(meta['description'])}): "
                   f"{meta['test']['accuracy']:.2%} on the {meta['test']['n']:,} test images. Added to the picked models.")


def render(picked: list[str], colors: dict[str, str]) -> None:
    messages.show(SLOT)
    kinds = {e.name: e.metadata.get("kind") for e in cache.models()}
    members = [n for n in picked if kinds.get(n) != registry.ENSEMBLE_KIND]
    if len(members) < ensemble.MIN_MEMBERS:
        st.caption("Pick two or more saved models above to combine them into an ensemble that averages their "
                   "probabilities (ensembles themselves cannot be members).")
        return
    if len(members) > ensemble.MAX_MEMBERS:
        st.info(f"An ensemble takes at most {ensemble.MAX_MEMBERS} models; {len(members)} are picked. "
                "Unpick some to save one.")
        return
    left_out = [n for n in picked if n not in members]
    st.markdown(f"**{markdown_literal(ensemble.label(members))}**: the mean of their probabilities for each image."
                + (f" Left out (already ensembles): {markdown_literal(', '.join(left_out))}." if left_out else ""))
    key = _name_key(members)
    if key not in ss:
        ss[key] = ensemble.default_name(members)
    st.text_input("Ensemble name", key=key, max_chars=64,
                  help="1-64 letters, digits, '-' or '_'. The entry names its members and their checksums and "
                       "holds no copy of their weights; it stops working if a member changes.")
    st.button("Save as ensemble", on_click=_save, args=(members,), key="ensemble_save",
              help="Evaluates the ensemble on the 10,000 test images and saves it with its test metrics.")
    st.caption("Members cannot be deleted or renamed while an ensemble uses them: delete the ensemble first.")
