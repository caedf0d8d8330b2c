"""Draw a digit (or upload one) and see what the saved models make of it."""

import numpy as np
import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas  # must be imported inside the running app

from dashboard import cache, charts
from dashboard.components import messages, my_digits_ui, page_state
from dashboard.components.page_state import sticky
from mnist_core import preprocess, verdict
from mnist_core.display import markdown_literal
from mnist_core.errors import LabError

CANVAS_PX = 280
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
# streamlit-drawable-canvas 0.13 sends a stroke 200 ms after mouse-up (a fixed debounce, no parameter), while
# its toolbar's "Update the app with this drawing" button sends at once. So a stroke on this page's canvas
# presses that button as soon as the stroke is finished: the answer shows ~200 ms sooner
# (benchmarks/stroke_latency.py). The button cancels the pending send, so the drawing still goes once.
# A stroke that ends off the canvas is sent too (Fabric.js ends it on any mouse-up); toolbar clicks and the
# other mouse buttons draw nothing and are left alone. If the button is ever renamed, the debounced send
# remains (tests/browser/test_draw.py catches that).
SEND_STROKE_AT_ONCE = """<script>
(() => {
  if (window.mnistLabSendStrokeAtOnce) return;  // one listener per tab; each visit to the page runs this again
  window.mnistLabSendStrokeAtOnce = true;
  let strokeOn = null;
  const onDrawCanvas = path => path.some(e => [...(e.classList || [])].some(c => c.startsWith("st-key-canvas-")));
  document.addEventListener("pointerdown", event => {
    const path = event.composedPath();
    const drawing = event.button === 0 && path.some(e => e.classList?.contains("upper-canvas")) && onDrawCanvas(path);
    strokeOn = drawing ? path.find(e => e.classList?.contains("dc-root")) : null;
  }, true);
  document.addEventListener("pointerup", () => {
    const root = strokeOn;
    strokeOn = null;
    // After Fabric.js has added the stroke and scheduled its own send, which the button's send cancels.
    if (root) setTimeout(() => root.querySelector('button[aria-label="Update the app with this drawing"]')?.click());
  }, true);
})();
</script>"""

st.title("Draw")
names = cache.usable_models()
if not names:
    st.warning("No saved model can be loaded. Train one on the Train page first.")
    st.page_link("views/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

with st.sidebar:  # sticky: the choices survive a visit to another page (no defaults here, sticky gives them)
    model_name = st.selectbox("Model", names, key=sticky("draw_model", names[0], names))
    compare_all = st.toggle("Compare all saved models", key=sticky("draw_compare_all", False))
    stroke = st.slider("Stroke width", 8, 40, key=sticky("draw_stroke", 20, range(8, 41)))
    show_steps_on = st.toggle("Show preprocessing steps", key=sticky("draw_steps", False))
    calibrated = st.toggle(cache.calibration_toggle_label(model_name), key=sticky("draw_calibrated", False),
                           help="Confidence from the model's logits divided by a temperature fitted on its own "
                                "validation split (Compare, Calibration). The predicted digit stays the same.")

try:
    predictor = cache.predictor(model_name)  # loaded (and cached) before the first stroke, not on it
except Exception as exc:  # noqa: BLE001  this model only: the sidebar still offers the others
    messages.error(exc)
    st.stop()
if calibrated:
    try:
        predictor = cache.calibrated_predictor(model_name)  # the same model and traced function, at T
    except LabError as exc:  # e.g. MNIST not downloaded: the model's own confidence is still shown
        messages.error(f"Calibrated confidence is off: {exc}")

st.session_state.setdefault("canvas_round", 0)


def prepare(canvas_image, upload):
    """The 28x28 input from the upload if there is one, else from the canvas; None when there is nothing."""
    if upload is not None:
        return preprocess.image_to_mnist(upload.getvalue(), upload.name)
    return None if canvas_image is None else preprocess.to_mnist(canvas_image)


def not_sure_text(judged: verdict.Verdict) -> str:
    if judged.several_marks:
        count = NUMBER_WORDS.get(judged.marks, str(judged.marks))
        return f"Not sure: {count} separate marks of similar size. Crop the image to one digit."
    return "Not sure: " + " or ".join(f"{digit} ({p:.0%})" for digit, p in judged.candidates)


def show_prediction(prepared, prediction, upload) -> None:
    judged = verdict.judge(prediction.probabilities, prepared.marks)
    seen, metrics = st.columns([1, 1])
    # The answer goes out first: figures take longer to build and to render (plotly.js loads lazily).
    if judged.sure:
        metrics.metric("Prediction", prediction.digit)
        calibrated_t = f" (calibrated, T={predictor.temperature:.2f})" if predictor.temperature != 1.0 else ""
        metrics.metric(f"Confidence{calibrated_t}", f"{prediction.confidence:.1%}")
    else:  # no big number: a shaky answer shown as one would be read as certain
        metrics.warning(not_sure_text(judged), icon=":material/help:")
    if upload is not None:
        metrics.caption(f"from the upload {markdown_literal(upload.name)}; remove it to use the canvas")
    seen.plotly_chart(charts.image_grid([prepared.input], ["what the model sees (28x28)"], cols=1, tile_px=150),
                      config={"displayModeBar": False})
    st.plotly_chart(charts.probability_bars(prediction.probabilities), config={"displayModeBar": False})
    my_digits_ui.save_control(prepared.steps["grayscale"], prepared.input, prediction.digit)


def step_tile(image: np.ndarray) -> np.ndarray:
    """The step centred on a square of the page's white, so the steps line up as tiles with gaps between."""
    h, w = image.shape
    side = max(h, w)
    margin = max(1, side // 12)
    tile = np.ones((side + 2 * margin, side + 2 * margin), np.float32)
    top, left = margin + (side - h) // 2, margin + (side - w) // 2
    tile[top : top + h, left : left + w] = np.clip(image, 0, 1)
    return tile


def show_steps(prepared) -> None:
    # One call: the tiles flow in rows that wrap to the page's width (a photo has up to eight steps).
    st.image([step_tile(image) for image in prepared.steps.values()], width=140,
             caption=[f"{title} ({image.shape[1]}x{image.shape[0]})" for title, image in prepared.steps.items()])


def compare_models(input28) -> None:
    rows, probs = [], []
    for name in names:
        try:
            p = cache.predictor(name).classify(input28)
        except Exception as exc:  # noqa: BLE001  one damaged model is one line; the others are still compared
            messages.error(f"{name}: {messages.words(exc)}")
            continue
        rows.append({"model": name, "prediction": p.digit, "confidence": p.confidence})
        probs.append(p.probabilities)
    if rows:
        st.subheader("All saved models")
        st.dataframe(pd.DataFrame(rows), hide_index=True,
                     column_config={"confidence": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
        st.plotly_chart(charts.probability_heatmap([r["model"] for r in rows], np.array(probs)),
                        config={"displayModeBar": False})


def clear_canvas() -> None:
    """Runs before the rerun the click causes, so that rerun already mounts the fresh canvas."""
    page_state.forget_canvas("draw")
    st.session_state.canvas_round += 1  # a fresh key gives a fresh, empty canvas


@st.fragment
def drawing_area() -> None:
    """A stroke reruns only this fragment, not the whole page: the shortest path from mouse-up to an answer."""
    with messages.boundary("Drawing"):  # a fragment's own reruns do not pass through app.py's page boundary
        _drawing_area()


def _drawing_area() -> None:
    # Equal halves with a medium gap keep the canvas column at least CANVAS_PX wide whenever the columns sit
    # side by side (main area >= 640 px); narrower, they stack (components/layout.py).
    left, right = st.columns(2, gap="medium")
    with left:
        canvas_key = f"canvas-{st.session_state.canvas_round}"
        canvas = st_canvas(stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
                           width=CANVAS_PX, height=CANVAS_PX, drawing_mode="freedraw", return_image_data=True,
                           initial_drawing=page_state.canvas_seed(canvas_key, "draw"), key=canvas_key)
        st.button("Clear", icon=":material/delete:", on_click=clear_canvas)
        upload = st.file_uploader("...or upload a photo or scan of a digit", type=["png", "jpg", "jpeg"],
                                  key="draw_upload", max_upload_size=preprocess.MAX_BYTES // 2**20)
    with right:
        try:
            prepared = prepare(page_state.canvas_image(canvas, "draw"), upload)
        except LabError as exc:
            st.error(markdown_literal(exc))  # the file's name is the browser's, any text
            return
        if prepared is None or prepared.empty:
            st.info("draw a digit" if prepared is None else prepared.message)
            st.session_state.pop("drawing_input", None)
            # Where the answer will go, empty: it also makes the browser load plotly.js now, not on the first
            # stroke, which then waited about 1.5 s for it (benchmarks/stroke_latency.py).
            st.plotly_chart(charts.probability_bars(np.zeros(10)), config={"displayModeBar": False})
            return
        st.session_state.drawing_input = prepared.input  # carried over to other pages (e.g. Inspect)
        show_prediction(prepared, predictor.classify(prepared.input), upload)
    if show_steps_on:
        show_steps(prepared)
    if compare_all:
        compare_models(prepared.input)


drawing_area()
st.html(SEND_STROKE_AT_ONCE, unsafe_allow_javascript=True)  # last: its empty block adds no gap between parts
