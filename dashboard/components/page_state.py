"""Choices and drawings that outlive a page switch.

Streamlit drops a widget's entry from session_state on any run that does not draw the widget, so going
from Draw to Inspect and back used to reset every toggle and empty the canvas. A page keeps a plain copy
of each choice under KEPT + key (plain keys are never dropped) and re-seeds the widget from it when the
widget comes back. Widgets seeded this way must not also be given a default (value=, index=, default=):
Streamlit warns when a widget has both.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import numpy as np
import streamlit as st

KEPT = "kept."


def sticky(key: str, default: Any, options: Container | None = None) -> str:
    """Call right before the widget keyed `key`; returns `key` for the widget's key= argument.

    The widget gets its value from this session's last visit (or `default` on the first), and that value
    is remembered for the next one. With `options`, a remembered value no longer offered (a deleted
    model, say) falls back to `default`.
    """
    ss = st.session_state
    value = ss[key] if key in ss else ss.get(KEPT + key, default)
    if options is not None and value not in options:
        value = default
    if key not in ss or ss[key] != value:
        ss[key] = value
    ss[KEPT + key] = value
    return key


def canvas_seed(canvas_key: str, name: str) -> dict | None:
    """The `initial_drawing` for the canvas keyed `canvas_key`: the strokes last drawn on canvas `name`.

    It is taken when the canvas mounts (its key is not in session_state yet: first visit, after a page
    switch, after Clear) and stays the same while the canvas stays mounted, because a new value makes the
    canvas reload itself and drop a stroke in progress.
    """
    ss = st.session_state
    if canvas_key not in ss:
        ss[f"{KEPT}{name}.seed"] = ss.get(f"{KEPT}{name}.strokes")
    return ss.get(f"{KEPT}{name}.seed")


def canvas_image(result: Any, name: str) -> np.ndarray | None:
    """The canvas's RGBA image: the browser's newest one, else (right after a remount, before any new stroke)
    the one kept for the strokes the canvas was seeded with. `result` is st_canvas's CanvasResult."""
    ss = st.session_state
    image = result.image_data
    if image is not None:
        ss[f"{KEPT}{name}.strokes"] = result.json_data
        ss[f"{KEPT}{name}.image"] = image
        return image
    seed = ss.get(f"{KEPT}{name}.seed")
    return ss.get(f"{KEPT}{name}.image") if seed and seed.get("objects") else None


def forget_canvas(name: str) -> None:
    """Clear: the next canvas mounts empty and nothing is kept for it."""
    for part in ("strokes", "image", "seed"):
        st.session_state.pop(f"{KEPT}{name}.{part}", None)
