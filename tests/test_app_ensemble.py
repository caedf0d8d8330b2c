"""AppTests of ensembles on the pages: saved from Compare, then a row of their own; usable on Draw; Inspect
says in one line that an ensemble has no single layer stack."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mnist_core import ensemble, evaluate, registry


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_compare_saves_an_ensemble_and_its_row_shows(app_page, registry_with, full_mnist):
    registry_with("tiny", default=True)
    at = app_page("views/compare.py", clean=True)
    assert sorted(at.multiselect(key="compare_pick").value) == ["default", "tiny"]
    name_box = next(t for t in at.text_input if t.label == "Ensemble name")
    assert name_box.value == "ensemble-default-tiny" or name_box.value == "ensemble-tiny-default"
    name_box.set_value("pair")
    at.button(key="ensemble_save").click().run()
    assert not at.exception, at.exception
    assert not _errors(at)
    assert "pair" in at.multiselect(key="compare_pick").value
    table = at.dataframe[0].value
    row = table[table["model"] == "pair"].iloc[0]
    assert row["type"] == "ensemble"
    # The row's accuracy is the averaged members' accuracy on the full test set, computed independently here.
    members = [m["name"] for m in registry.read_metadata("pair")["members"]]
    mean = sum(evaluate.probabilities(registry.load(m), full_mnist.x_test) for m in members) / len(members)
    assert row["test accuracy"] == pytest.approx(float((mean.argmax(1) == full_mnist.y_test).mean()))
    assert any("Saved **pair**" in s.value for s in at.success)
    assert sorted(p.name for p in (registry.models_dir() / "pair").iterdir()) == ["metadata.json"]


def test_a_bad_or_taken_ensemble_name_is_one_error_line(app_page, registry_with):
    models = registry_with("tiny", "other")
    at = app_page("views/compare.py", clean=True)
    for bad, fragment in (("two words", "bad model name 'two words'"), ("tiny", "a model named 'tiny' already exists")):
        next(t for t in at.text_input if t.label == "Ensemble name").set_value(bad)
        at.button(key="ensemble_save").click().run()
        assert not at.exception
        errors = _errors(at)
        assert len(errors) == 1 and fragment in errors[0] and "\n" not in errors[0]
    assert sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) == ["other", "tiny"]


def test_one_picked_model_offers_no_ensemble(app_page, registry_with):
    registry_with("tiny")
    at = app_page("views/compare.py", clean=True)
    assert not [t for t in at.text_input if t.label == "Ensemble name"]
    assert any("Pick two or more saved models" in c.value for c in at.caption)


def test_deleting_a_member_on_compare_is_refused_naming_the_ensemble(app_page, registry_with, small_mnist):
    registry_with("tiny", default=True)
    ensemble.save(["tiny", "default"], "pair", mnist=small_mnist)
    at = app_page("views/compare.py", clean=True)
    at.selectbox(key="compare_manage").set_value("tiny")
    next(b for b in at.button if b.label == "Delete...").click().run()
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not at.exception
    assert any("the ensemble 'pair' uses it" in e.value for e in at.error)
    assert registry.inspect("tiny").ok and registry.inspect("pair").ok


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_draw_picks_and_uses_a_saved_ensemble(app_page, registry_with, full_mnist, small_mnist):
    registry_with("tiny", default=True)
    ensemble.save(["tiny", "default"], "pair", mnist=small_mnist)
    at = app_page("views/draw.py")
    assert "pair" in at.selectbox(key="draw_model").options
    at.selectbox(key="draw_model").set_value("pair").run()
    digit = 255 - np.asarray(Image.fromarray(full_mnist.x_test[0]).resize((280, 280), Image.Resampling.BILINEAR))
    at.file_uploader(key="draw_upload").set_value(("seven.png", _png(digit), "image/png"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    prediction = next(m for m in at.metric if m.label == "Prediction")
    assert prediction.value == str(full_mnist.y_test[0]) == "7"


def test_inspect_says_an_ensemble_has_no_single_layer_stack(app_page, registry_with, small_mnist):
    registry_with("tiny", default=True)
    ensemble.save(["tiny", "default"], "pair", mnist=small_mnist)
    at = app_page("views/inspect.py")
    at.selectbox(key="inspect_model").set_value("pair").run()
    assert not at.exception and not at.error
    assert [i.value for i in at.info] == ["pair is an ensemble (the mean of tiny, default): pick one of its members "
                                          "to look inside."]
