"""AppTest of the Draw page. AppTest cannot draw on the canvas component (it returns its empty default),
so a drawing is fed in through the upload box, which goes through the same preprocessing and model."""

import io

import numpy as np
from PIL import Image


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
