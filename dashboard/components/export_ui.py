"""Export a saved model as ONNX, TFLite (LiteRT) or .keras, checked in the format's own runtime first.

The check runs on the server (convert, 10,000 test digits through onnxruntime or the LiteRT interpreter, single-image
latency there), so it sits behind a button with a progress bar; its result stays in the session, keyed by the model
file, so a rerun never repeats it.
"""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import cache
from dashboard.components import messages
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError
from mnist_core.interop import export

ss = st.session_state
log = logging.getLogger(__name__)
FORMATS = {"onnx": "ONNX (onnxruntime)", "tflite": "TFLite (LiteRT)", "keras": "Keras 3 (.keras)"}
MIME = {"onnx": "application/octet-stream", "tflite": "application/octet-stream", "keras": "application/zip"}
KEPT_RESULTS = 4  # exported files kept in this session (each up to a few MB)


def _key(name: str, fmt: str) -> tuple:
    return (name, fmt, cache.model_stamp(name))


def _run(name: str, fmt: str) -> None:
    bar = st.progress(0.0, text=f"Exporting {markdown_literal(name)} as {FORMATS[fmt]}...")
    try:
        data, result = export.export_to_bytes(name, fmt, progress=lambda f, text: bar.progress(min(1.0, f), text))
    except Exception as exc:  # noqa: BLE001  one line, never a traceback
        if not isinstance(exc, LabError):
            log.error("export failed", exc_info=exc)
        messages.error(f"Cannot export {name} as {fmt}: {messages.words(exc)}")
        return
    finally:
        bar.empty()
    results = ss.setdefault("export_results", {})
    while len(results) >= KEPT_RESULTS:
        results.pop(next(iter(results)))
    results[_key(name, fmt)] = (data, result)


def render(name: str) -> None:
    left, right = st.columns([2, 1])
    fmt = left.selectbox("Export as", list(FORMATS), format_func=FORMATS.get, key="export_format")
    if right.button("Export and check", key="export_run", help="Converts the model, runs the 10,000 test digits "
                    "through the exported file in its own runtime, and times single images there."):
        _run(name, fmt)
    try:
        found = ss.get("export_results", {}).get(_key(name, fmt))
    except LabError:
        return
    if not found:
        return
    data, result = found
    parity, latency = result["parity"], result["latency"]
    a, b, c = st.columns(3)
    a.metric("Same digit as the lab's model", f"{parity['agreement']:.2%}",
             help=f"{parity['same_digit']:,} of {parity['images']:,} test images; the goal is at least "
                  f"{parity['min_agreement']:.1%}.")
    b.metric("Largest probability difference", f"{parity['max_abs_prob_diff']:.1e}")
    c.metric(f"Single image in {latency['runtime']}", f"{latency['median_ms']:.3f} ms",
             help=f"Median of {latency['calls']:,} calls; 90th percentile {latency['p90_ms']:.3f} ms.")
    if not parity["passed"]:
        st.warning("The exported file does not match the lab's model closely enough; it is offered for examination.")
    file_name = f"{name}.zip" if fmt == "keras" else f"{name}{'.onnx' if fmt == 'onnx' else '.tflite'}"
    st.download_button(f"Download {file_name}", data, file_name, MIME[fmt], on_click="ignore", key="export_download")
    shape = ", ".join("N" if d is None else str(d) for d in result["input"]["shape"])
    st.caption(f"Input: ({shape}) {result['input']['dtype']}, {result['input']['scaling']}. Output: "
               f"{result['output']['meaning']}. `python -m mnist_core models export` also writes this as JSON.")
