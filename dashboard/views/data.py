"""Data: the class balance, random samples and mean image per digit, and a browser of the test images."""

import numpy as np
import streamlit as st

from dashboard import cache, charts
from dashboard.components import messages, mnist_gate
from mnist_core import browse
from mnist_core.errors import LabError

SAMPLES_PER_DIGIT = 12
PAGE_SIZE = 40

st.title("Data")
mnist = mnist_gate.require()

st.subheader("Images per digit")
st.plotly_chart(charts.class_distribution({"train": browse.class_counts(mnist.y_train),
                                           "test": browse.class_counts(mnist.y_test)}))

st.subheader("Random training samples")
st.session_state.setdefault("data_seed", 0)
if st.button("Re-roll", icon=":material/casino:"):
    st.session_state.data_seed += 1
picks = browse.samples_per_digit(mnist.y_train, SAMPLES_PER_DIGIT, st.session_state.data_seed)
st.caption("One row per digit, 0 to 9.")
st.plotly_chart(charts.image_grid(mnist.x_train[picks.ravel()], cols=SAMPLES_PER_DIGIT, tile_px=48,
                                  hover=[f"train #{i}, label {mnist.y_train[i]}" for i in picks.ravel()]),
                config={"displayModeBar": False})

st.subheader("Mean image of each digit")
st.plotly_chart(charts.image_grid(cache.mean_images(), [str(d) for d in range(10)], cols=10, tile_px=90),
                config={"displayModeBar": False})

st.subheader("Test images")
digit_col, model_col, result_col = st.columns(3)
digit = digit_col.selectbox("Digit", ["all", *range(10)], key="data_digit")
model = model_col.selectbox("Model", ["none", *cache.usable_models()], key="data_model",
                            help="Pick a saved model to see its prediction for each image.")
result = result_col.radio("Model's answer", ["all", "correct", "wrong"], horizontal=True, key="data_result",
                          disabled=model == "none")

predicted = None
if model != "none":
    try:
        predicted = cache.test_probabilities(model).argmax(axis=1)
    except LabError as exc:
        messages.error(exc)
chosen = browse.select(mnist.y_test, None if digit == "all" else digit, predicted,
                        None if predicted is None or result == "all" else result == "correct")
if not len(chosen):
    st.info("No test image matches these filters.")
    st.stop()

pages = -(-len(chosen) // PAGE_SIZE)
page = st.columns(4)[0].number_input(f"Page (of {pages})", 1, pages, 1, key="data_page") if pages > 1 else 1
shown = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
if predicted is None:
    titles = [str(mnist.y_test[i]) for i in shown]
else:
    titles = [f"{mnist.y_test[i]}→{predicted[i]}" for i in shown]
st.caption(f"{len(chosen):,} matching test images" + ("" if predicted is None else
           f"; tiles read true→predicted by {model} ({np.mean(predicted == mnist.y_test):.2%} right overall)"))
st.plotly_chart(charts.image_grid(mnist.x_test[shown], titles, cols=10, tile_px=64,
                                  hover=[f"test #{i}: {t}" for i, t in zip(shown, titles, strict=True)]),
                config={"displayModeBar": False})
