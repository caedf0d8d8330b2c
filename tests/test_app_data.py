"""AppTest of the Data page: it renders with and without models, and its filters select the right test images."""

import numpy as np


def _caption(at) -> str:
    return next(c.value for c in at.caption if "matching test images" in c.value)


def test_empty_registry_renders_everything(app_page, full_mnist):
    at = app_page("views/data.py")
    assert not at.exception
    assert [s.value for s in at.subheader] == [
        "Images per digit", "Random training samples", "Mean image of each digit", "Test images"]
    assert at.selectbox(key="data_model").options == ["none"]
    assert _caption(at).startswith("10,000 matching")


def test_digit_filter(app_page, full_mnist):
    at = app_page("views/data.py")
    at.selectbox(key="data_digit").set_value(3).run()
    assert not at.exception
    assert _caption(at).startswith(f"{np.sum(full_mnist.y_test == 3):,} matching")


def test_wrong_answers_of_a_model_match_its_stored_confusion_matrix(app_page, registry_with):
    import json

    models = registry_with("tiny", default=True)
    cm = np.array(json.loads((models / "default" / "metadata.json").read_text())["test"]["confusion_matrix"])
    at = app_page("views/data.py")
    at.selectbox(key="data_model").set_value("default").run()
    at.radio(key="data_result").set_value("wrong").run()
    assert not at.exception
    assert _caption(at).startswith(f"{cm.sum() - np.trace(cm):,} matching")
    at.selectbox(key="data_digit").set_value(9).run()
    assert _caption(at).startswith(f"{cm[9].sum() - cm[9, 9]:,} matching")


def test_missing_mnist_offers_the_same_fetch_button_as_home(app_page, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "no-data-here"))
    monkeypatch.delenv("MNIST_DATA", raising=False)
    at = app_page("views/data.py")
    assert not at.exception
    assert "not downloaded yet" in at.warning[0].value
    assert [b.label for b in at.button] == ["Fetch MNIST"]
    assert not at.subheader  # nothing below needs data it does not have


def test_reroll_changes_the_samples(app_page):
    at = app_page("views/data.py")
    before = at.session_state["data_seed"]
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["data_seed"] == before + 1
