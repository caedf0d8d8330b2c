"""Inspect: look inside a saved model for one input (a test image, the current drawing or an upload)."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, charts, charts_embedding
from dashboard.components import messages
from dashboard.components.page_state import KEPT, sticky
from mnist_core import ensemble, evaluate, inspect, preprocess, registry
from mnist_core.display import markdown_literal

NEIGHBOUR_POOL = 10000  # training images indexed for neighbours: ~1 s to embed with a CNN, all 60,000 take ~6x longer
MAP_POINTS = 2000
PLAIN = {"displayModeBar": False}
SOURCES = ["Test image", "Misclassified test image", "Drawing from /draw", "Upload"]
ss = st.session_state


@st.cache_resource(show_spinner="Preparing the model for inspection...", max_entries=4)
def _inspector(name: str, stamp: tuple) -> inspect.Inspector:
    return inspect.Inspector(registry.load(name))


@st.cache_resource(show_spinner=f"Embedding {NEIGHBOUR_POOL:,} training images for the neighbour search...", max_entries=4)
def _neighbours(name: str, stamp: tuple) -> inspect.NeighbourIndex:
    mnist = cache.mnist()
    return inspect.NeighbourIndex.build(_inspector(name, stamp), mnist.x_train, mnist.y_train, NEIGHBOUR_POOL)


@st.cache_resource(show_spinner=f"Mapping {MAP_POINTS:,} test images...", max_entries=4)
def _map(name: str, stamp: tuple) -> tuple[inspect.EmbeddingMap, pd.DataFrame]:
    mnist = cache.mnist()
    emap = inspect.embedding_map(_inspector(name, stamp), mnist.x_test, mnist.y_test, MAP_POINTS)
    return emap, charts_embedding.map_points(emap, mnist.x_test)


@st.cache_data(show_spinner=False, max_entries=64)
def _analyse(name: str, stamp: tuple, input28: np.ndarray, cls: int | None) -> dict:
    """Everything that depends on the input, computed once per (model file, input, class)."""
    insp = _inspector(name, stamp)
    acts = insp.activations(input28)
    probs = acts[insp.layers[-1].name]
    cls = int(probs.argmax()) if cls is None else cls
    embedding = insp.embed(input28)[0]
    return {"probs": probs, "cls": cls, "table": insp.layer_table(acts), "maps": insp.feature_maps(acts),
            "templates": insp.first_dense_templates(acts), "saliency": insp.saliency(input28, cls),
            "cam": insp.grad_cam(input28, cls), "neighbours": _neighbours(name, stamp).query(embedding, 8),
            "place": _map(name, stamp)[0].project(embedding)}


def signed(weights: np.ndarray) -> np.ndarray:
    """Signed weights to [0, 1] with zero at mid-grey, so sign stays visible."""
    return 0.5 + 0.5 * weights / max(float(np.abs(weights).max()), 1e-12)


def pick_input(mnist, name: str) -> tuple[np.ndarray | None, str]:
    """The chosen input (28x28 floats) and a caption, or (None, why not).

    Every choice here is sticky: it survives a visit to another page (so no widget defaults: sticky gives them).
    """
    source = st.segmented_control("Input", SOURCES, required=True, key=sticky("inspect_source", SOURCES[0], SOURCES))
    if source == "Test image":
        i = st.number_input("Test image index", 0, len(mnist.x_test) - 1,
                            key=sticky("inspect_index", 0, range(len(mnist.x_test))))
        return mnist.x_test[i] / 255.0, f"test image #{i}, label {mnist.y_test[i]}"
    if source == "Misclassified test image":
        wrong = evaluate.misclassified(cache.test_probabilities(name), mnist.y_test)
        if not len(wrong):
            return None, "this model gets every test image right"
        offered = wrong[:200]
        i = st.selectbox(f"{len(wrong)} misclassified test images, most confidently wrong first", offered,
                         key=sticky("inspect_wrong", offered[0], offered), format_func=lambda j: f"#{j} (label {mnist.y_test[j]})")
        return mnist.x_test[i] / 255.0, f"test image #{i}, label {mnist.y_test[i]}"
    if source == "Drawing from /draw":
        drawing = ss.get("drawing_input")
        if drawing is None:
            return None, "no drawing yet: draw a digit on the Draw page, then come back"
        return np.asarray(drawing, np.float32), "your drawing from /draw"
    upload = st.file_uploader("A photo or scan of one digit", type=["png", "jpg", "jpeg", "bmp", "gif"],
                              key="inspect_upload", max_upload_size=preprocess.MAX_BYTES // 2**20)
    if upload is None:
        return None, "upload an image of a digit"
    prepared = preprocess.image_to_mnist(upload.getvalue(), upload.name)
    return (None, prepared.message) if prepared.empty else (prepared.input, f"upload {markdown_literal(upload.name)}")


st.title("Inspect")
names = cache.usable_models()
if not names:
    st.warning("No saved model can be loaded. Train one on the Train page first.")
    st.stop()
try:
    mnist = cache.mnist()
    with st.sidebar:
        name = st.selectbox("Model", names, key=sticky("inspect_model", names[0], names))
    if members := ensemble.metadata_of(name).get("members"):  # no single layer stack to look inside
        st.info(f"{markdown_literal(name)} is an ensemble (the mean of "
                f"{markdown_literal(', '.join(m['name'] for m in members))}): pick one of its members to look inside.")
        st.stop()
    stamp = cache.model_stamp(name)
    insp = _inspector(name, stamp)
    input28, caption = pick_input(mnist, name)
except Exception as exc:  # noqa: BLE001  this model or input only: the sidebar still offers the others
    messages.error(exc)
    st.stop()
if input28 is None:
    st.info(caption)
    st.stop()

first = _analyse(name, stamp, input28, None)
left, mid, right = st.columns([1, 1, 2])
left.image(inspect.tint(input28, np.zeros((28, 28)), 6), caption=caption)
mid.metric("Prediction", first["cls"], f"{first['probs'][first['cls']]:.1%} confident", delta_color="off",
           delta_arrow="off")
cls_key = f"inspect_cls_{name}"
explained_input = (name, input28.tobytes())
if ss.get("inspect_cls_input") != explained_input:
    # A new input is explained for its own prediction: a digit picked for the last one would show the
    # saliency of, say, a 7 on a misclassified 5 read as 3. The same input (a page switch) keeps the pick.
    ss["inspect_cls_input"] = explained_input
    ss.pop(cls_key, None)
    ss.pop(KEPT + cls_key, None)
cls = mid.selectbox("Explain the score of digit", range(10), key=sticky(cls_key, first["cls"], range(10)))
right.plotly_chart(charts.probability_bars(first["probs"]), config=PLAIN)
result = first if cls == first["cls"] else _analyse(name, stamp, input28, cls)

st.subheader("Saliency")
cols = st.columns(3 if result["cam"] is not None else 2)
cols[0].image(inspect.tint(input28, result["saliency"], 6), caption=f"gradient saliency for {cls}: bright pixels "
              "change the score most")
if result["cam"] is not None:
    cols[1].image(inspect.tint(input28, result["cam"], 6), caption=f"Grad-CAM for {cls} at {insp.cam_layer}: "
                  "where the last conv layer found evidence")
cols[-1].caption("Both maps are scaled to their own maximum. Saliency asks which single pixels matter; Grad-CAM "
                 "asks which regions the last convolutional features respond to for this class." if insp.kind == "cnn"
                 else "Scaled to its maximum. An MLP has no conv layers, so no Grad-CAM. Speckle on the blank border "
                 "is real: pixels that are blank in every training image never change their first-layer weights, "
                 "which keep their random start.")

st.subheader("Layers")
st.dataframe(pd.DataFrame(result["table"]), hide_index=True, height=35 * len(result["table"]) + 38, column_config={
    c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "std", "max")} | {
    "zero %": st.column_config.NumberColumn(format="%.0f%%", help="units silent (exactly 0) for this input")})

if insp.kind == "cnn":
    st.subheader("Feature maps of this input")
    for layer, maps in result["maps"]:
        st.caption(f"{layer}: {maps.shape[0]} maps of {maps.shape[1]}x{maps.shape[2]}")
        st.image(inspect.mosaic(np.stack([inspect.unit_scale(m) for m in maps]), scale=max(1, 56 // maps.shape[1])))
    with st.expander("Filters of every conv layer"):
        for layer, kernels in insp.conv_filters():
            st.caption(f"{layer}: {kernels.shape[0]} filters of {kernels.shape[1]}x{kernels.shape[2]}"
                       + (" (averaged over input channels)" if layer != insp.layers[0].name else ""))
            st.image(inspect.mosaic(np.stack([signed(k) for k in kernels]), scale=36 // kernels.shape[1]))
elif result["templates"]:
    st.subheader("First-layer templates of the 16 most responsive units")
    st.caption("Each unit's 784 input weights drawn as 28x28: bright pixels raise its response, dark ones lower it, "
               "mid-grey is zero. Titles give the unit's response to this input.")
    units = [t[0] for t in result["templates"]]
    st.plotly_chart(charts.image_grid([signed(t[2]) for t in result["templates"]],
                                      [f"unit {u}: {a:.2f}" for u, a, _ in result["templates"]], cols=8, tile_px=90),
                    config=PLAIN, key=f"templates_{units}")

st.subheader("Nearest training images")
nb = result["neighbours"]
st.caption(f"In the penultimate layer's embedding, among {NEIGHBOUR_POOL:,} training images.")
st.plotly_chart(charts.image_grid(list(mnist.x_train[nb.indices]), [f"{lab} (d={d:.1f})" for lab, d in
                                  zip(nb.labels, nb.distances, strict=True)], cols=8, tile_px=80), config=PLAIN)

st.subheader("Embedding map")
emap, points = _map(name, stamp)
st.caption(f"{MAP_POINTS:,} test images on the first two principal axes of the penultimate layer "
           f"({emap.explained.sum():.0%} of its variance); crosses are misclassified, the black diamond is this input. "
           "Hover a point to see the image.")
st.vega_lite_chart(spec=charts_embedding.embedding_spec(points, result["place"]), width="stretch")
