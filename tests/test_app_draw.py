"""AppTest of the Draw page. AppTest cannot draw on the canvas component (it returns its empty default),
so a drawing is fed in through the upload box, which goes through the same preprocessing and model."""

import io
import json
import shutil

import numpy as np
from PIL import Image

from dashboard.components import page_state
from tests.conftest import plotly_array


def _encode(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


def test_empty_registry_says_train_first(app_page):
    at = app_page("views/draw.py")
    assert not at.exception
    assert "No saved model" in at.warning[0].value


def test_empty_canvas_shows_draw_a_digit(app_page, registry_with):
    registry_with("tiny", default=True)
    at = app_page("views/draw.py")
    assert not at.exception
    assert [i.value for i in at.info] == ["draw a digit"]
    assert not at.metric  # no prediction without a drawing
    # ...but the empty chart where it will go, so the browser has loaded plotly.js before the first stroke
    [chart] = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    [bars] = chart["data"]
    assert plotly_array(bars["y"]).tolist() == [0.0] * 10 and "#ff4b4b" not in bars["marker"]["color"]
    assert at.selectbox(key="draw_model").value == "default"
    assert at.selectbox(key="draw_model").options == ["default", "tiny"]


def test_broken_entry_is_not_offered_and_page_still_works(app_page, registry_with):
    models = registry_with("tiny", default=True)
    (models / "broken").mkdir()
    (models / "broken" / "model.keras").write_bytes(b"")
    at = app_page("views/draw.py")
    assert not at.exception
    assert at.selectbox(key="draw_model").options == ["default", "tiny"]
    assert [i.value for i in at.info] == ["draw a digit"]


def _upload(at, name: str, content: bytes, mime: str = "image/png"):
    at.file_uploader(key="draw_upload").set_value((name, content, mime))
    return at.run()


def test_uploaded_digits_are_predicted(app_page, registry_with, full_mnist):
    """Real test digits, scanned-style (dark ink on white, 280x280), as PNG and JPEG."""
    registry_with(default=True)
    at = app_page("views/draw.py")
    for i in range(4):
        digit = 255 - np.asarray(Image.fromarray(full_mnist.x_test[i]).resize((280, 280), Image.Resampling.BILINEAR))
        fmt, mime = ("PNG", "image/png") if i % 2 == 0 else ("JPEG", "image/jpeg")
        _upload(at, f"digit{i}.{fmt.lower()}", _encode(digit, fmt), mime)
        assert not at.exception
        prediction = next(m for m in at.metric if m.label == "Prediction")
        assert prediction.value == str(full_mnist.y_test[i])
        assert not at.info


def test_compare_all_mode_has_one_row_per_model(app_page, registry_with, full_mnist):
    registry_with("tiny", default=True)
    at = app_page("views/draw.py")
    at.toggle(key="draw_compare_all").set_value(True)
    _upload(at, "seven.png", _encode(255 - full_mnist.x_test[0], "PNG"))
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["model"]) == ["default", "tiny"]
    assert table.loc[0, "prediction"] == full_mnist.y_test[0] == 7


def test_bad_upload_is_one_error_line(app_page, registry_with):
    registry_with(default=True)
    at = app_page("views/draw.py")
    _upload(at, "fake.png", b"this is not an image at all")
    assert not at.exception
    assert len(at.error) == 1 and "not a PNG, JPEG" in at.error[0].value
    assert not at.metric


def test_digit_photographed_on_ruled_paper_is_read_and_its_steps_shown(app_page, registry_with, small_mnist):
    """tests/paper_digits.py: a real 5 under uneven light on ruled paper, as a phone photo would be."""
    from tests.paper_digits import paper_photo, png

    registry_with(default=True)
    at = app_page("views/draw.py")
    at.toggle(key="draw_steps").set_value(True)
    _upload(at, "five_ruled.png", png(paper_photo([small_mnist.x_test[15]], paper="ruled")))
    assert not at.exception and not at.warning
    assert next(m for m in at.metric if m.label == "Prediction").value == "5"
    captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith("ruled lines removed") for c in captions), captions
    assert any(c.startswith("main ink kept") for c in captions)


def test_two_digits_in_one_photo_say_not_sure_instead_of_a_prediction(app_page, registry_with, small_mnist):
    from tests.paper_digits import paper_photo, png

    registry_with(default=True)
    at = app_page("views/draw.py")
    photo = paper_photo([small_mnist.x_test[0], small_mnist.x_test[1]], paper="squared", shape=(200, 340))
    _upload(at, "seven_two.png", png(photo))
    assert not at.exception
    assert [w.value for w in at.warning] == ["Not sure: two separate marks of similar size. Crop the image to one digit."]
    assert not [m for m in at.metric if m.label == "Prediction"]


def test_a_shaky_answer_names_its_candidates_instead_of_a_prediction(app_page, registry_with, full_mnist, monkeypatch):
    """With the bar for "sure" raised above 100%, every answer is shaky: the page names the candidates with
    their probabilities (those of the model on this input) in place of the Prediction metric."""
    import re

    from mnist_core import preprocess, verdict
    from mnist_core.predict import Predictor

    registry_with(default=True)
    monkeypatch.setattr(verdict, "UNSURE_BELOW", 1.01)
    at = app_page("views/draw.py")
    data = _encode(255 - full_mnist.x_test[0], "PNG")
    _upload(at, "seven.png", data)
    assert not at.exception and not [m for m in at.metric if m.label == "Prediction"]
    [text] = [w.value for w in at.warning]
    probs = Predictor.load("default").classify(preprocess.image_to_mnist(data).input).probabilities
    named = [(int(d), int(p)) for d, p in re.findall(r"(\d) \((\d+)%\)", text)]
    assert text.startswith("Not sure: 7 (") and named and named[0][0] == 7
    assert named == [(d, round(100 * float(probs[d]))) for d, _ in named]
    assert all(probs[d] >= verdict.CANDIDATE_FROM for d, _ in named)


# --- State that survives a page switch (Streamlit drops the widget keys of a page that is not drawn) ---

def _canvas_image(digit28: np.ndarray) -> np.ndarray:
    """What the browser's canvas sends for a digit: 280x280 RGBA, white ink on black."""
    gray = np.asarray(Image.fromarray(digit28).resize((280, 280), Image.Resampling.BILINEAR))
    return np.dstack([gray, gray, gray, np.full_like(gray, 255)])


def test_toggles_model_and_stroke_survive_a_visit_to_inspect(app_page, registry_with):
    registry_with("tiny", default=True)
    at = app_page("views/draw.py")
    at.selectbox(key="draw_model").set_value("tiny")
    at.toggle(key="draw_compare_all").set_value(True)
    at.toggle(key="draw_steps").set_value(True)
    at.slider(key="draw_stroke").set_value(31)
    at.run()
    at.switch_page("views/inspect.py").run()
    assert not at.exception
    assert "draw_compare_all" not in at.session_state  # what Streamlit does to an undrawn widget's key
    at.switch_page("views/draw.py").run()
    assert not at.exception and not at.warning  # no "default value and Session State" warning either
    assert at.selectbox(key="draw_model").value == "tiny"
    assert at.toggle(key="draw_compare_all").value is True
    assert at.toggle(key="draw_steps").value is True
    assert at.slider(key="draw_stroke").value == 31


def test_a_kept_model_that_was_deleted_falls_back_to_the_first(app_page, registry_with):
    models = registry_with("tiny", default=True)
    at = app_page("views/draw.py")
    at.selectbox(key="draw_model").set_value("tiny").run()
    at.switch_page("views/home.py").run()
    shutil.rmtree(models / "tiny")
    at.switch_page("views/draw.py").run()
    assert not at.exception
    assert at.selectbox(key="draw_model").options == ["default"]
    assert at.selectbox(key="draw_model").value == "default"


def test_the_drawing_comes_back_after_inspect_and_is_inspect_input(app_page, registry_with, full_mnist):
    """AppTest's canvas always returns its empty default, so the browser's last drawing is kept the way
    canvas_image keeps it; the remounted canvas must be seeded with its strokes and predicted again."""
    registry_with(default=True)
    at = app_page("views/draw.py")
    assert [i.value for i in at.info] == ["draw a digit"]
    strokes = {"version": "6", "objects": [{"type": "Path", "path": [["M", 140, 45], ["L", 140, 235]]}]}
    at.session_state[f"{page_state.KEPT}draw.strokes"] = strokes
    at.session_state[f"{page_state.KEPT}draw.image"] = _canvas_image(full_mnist.x_test[0])
    at.switch_page("views/inspect.py").run()
    at.switch_page("views/draw.py").run()
    assert not at.exception
    assert at.session_state[f"{page_state.KEPT}draw.seed"] == strokes  # handed to st_canvas as initial_drawing
    assert next(m for m in at.metric if m.label == "Prediction").value == str(full_mnist.y_test[0]) == "7"
    at.switch_page("views/inspect.py").run()
    at.segmented_control(key="inspect_source").set_value("Drawing from /draw").run()
    assert not at.exception and at.metric[0].value == "7"
    assert "your drawing from /draw" in " ".join(c for img in at.image for c in img.captions)
    # Clear forgets it: the next canvas mounts empty and nothing is predicted.
    at.switch_page("views/draw.py").run()
    at.button[0].click().run()
    assert not at.exception and [i.value for i in at.info] == ["draw a digit"] and not at.metric
    at.switch_page("views/home.py").run()
    at.switch_page("views/draw.py").run()
    assert [i.value for i in at.info] == ["draw a digit"]


def test_canvas_image_keeps_what_the_browser_sent_and_seeds_a_remounted_canvas():
    """page_state's canvas functions in a script of their own: a run with the browser's image keeps it, a
    remount (new canvas key) is seeded with the kept strokes and gets the kept image back."""
    from streamlit.testing.v1 import AppTest

    def script():
        import types

        import numpy as np
        import streamlit as st

        from dashboard.components import page_state

        ss = st.session_state
        key = ss.get("key", "canvas-0")
        seed = page_state.canvas_seed(key, "pad")
        sent = ss.get("browser_sends")  # None: the canvas returns its default (no image yet)
        result = types.SimpleNamespace(image_data=None if sent is None else np.full((4, 4, 4), sent, np.uint8),
                                       json_data={"objects": [] if sent is None else [{"type": "Path", "n": sent}]})
        image = page_state.canvas_image(result, "pad")
        ss[key] = "mounted"  # stands in for the canvas widget's own state
        st.write(f"seed={seed} image={None if image is None else int(image[0, 0, 0])}")

    at = AppTest.from_function(script)
    at.run()
    assert at.markdown[0].value == "seed=None image=None"
    at.session_state["browser_sends"] = 200
    at.run()
    assert at.markdown[0].value == "seed=None image=200"
    at.session_state["browser_sends"] = None  # the same canvas, rerun without news: nothing kept changes
    at.session_state["key"] = "canvas-1"  # remounted (a page switch drops the old key)
    at.run()
    assert at.markdown[0].value == "seed={'objects': [{'type': 'Path', 'n': 200}]} image=200"
    at.session_state["browser_sends"] = 90  # a new stroke on the remounted canvas: the seed stays put
    at.run()
    assert at.markdown[0].value == "seed={'objects': [{'type': 'Path', 'n': 200}]} image=90"


def test_calibrated_confidence_divides_the_logits_by_the_fitted_temperature(app_page, registry_with, full_mnist):
    from mnist_core import calibration, calibration_report, registry
    from mnist_core.predict import Predictor

    registry_with(default=True)
    at = app_page("views/draw.py")
    digit = 255 - np.asarray(Image.fromarray(full_mnist.x_test[0]).resize((280, 280), Image.Resampling.BILINEAR))
    _upload(at, "seven.png", _encode(digit, "PNG"))
    plain = next(m for m in at.metric if m.label == "Confidence")
    toggle = next(t for t in at.toggle if t.label.startswith("Calibrated confidence"))
    toggle.set_value(True).run()
    assert not at.exception and not at.error
    shown = next(m for m in at.metric if m.label.startswith("Confidence (calibrated, T="))
    temperature = calibration_report.stored_temperature(registry.read_metadata("default")["model_sha256"])
    assert temperature is not None and temperature != 1.0 and f"T={temperature:.2f}" in shown.label
    from mnist_core import preprocess

    probs = Predictor.load("default").probabilities(preprocess.image_to_mnist(_encode(digit, "PNG"), "seven.png").input)
    expected = calibration.apply_temperature(probs, temperature)[0].max()
    assert shown.value == f"{expected:.1%}" and plain.value == f"{probs[0].max():.1%}"
