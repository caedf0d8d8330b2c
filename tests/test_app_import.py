"""Home's "Import a model" control (AppTest): a tf-keras .h5 uploaded and imported with its measured scaling
shown, the scaling overridden, a Lambda payload refused in one line, and a Download .keras button per model."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from mnist_core import registry
from mnist_core.interop import export
from tests import foreign_models


@pytest.fixture(scope="module")
def foreign_h5(small_mnist, tmp_path_factory):
    path, model = foreign_models.keras2_mlp_h5(tmp_path_factory.mktemp("app_foreign"), small_mnist, "symmetric")
    return path, model


def _upload(at, key: str, name: str, content: bytes) -> None:
    at.file_uploader(key=key).set_value((name, content, "application/octet-stream"))


def test_upload_import_shows_the_measured_scaling_and_overrides_it(app_page, foreign_h5, full_mnist):
    path, model = foreign_h5
    at = app_page("views/home.py", clean=True)
    _upload(at, "import_model_file", "notebook_model.h5", path.read_bytes())
    at.run()
    assert at.text_input(key="import_name").value == "notebook_model"
    at.text_input(key="import_name").set_value("notebook")
    at.button(key="import_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    meta = registry.read_metadata("notebook")
    assert meta["import"]["scaling"] == "symmetric" and meta["provenance"]["source_file"] == "notebook_model.h5"
    success = " ".join(s.value for s in at.success)
    assert f"Imported **notebook**: {meta['test']['accuracy']:.2%} on the 10,000 test images" in success
    foreign_probs = model.predict(foreign_models.scaled(full_mnist.x_test, "symmetric"), verbose=0)
    assert meta["test"]["accuracy"] == pytest.approx((foreign_probs.argmax(1) == full_mnist.y_test).mean(), abs=0.002)
    scores = next(df.value for df in at.dataframe if "scaling" in df.value.columns)
    chosen = scores[scores["chosen"]]
    assert list(chosen["scaling"]) == ["symmetric"]
    assert scores.set_index("scaling")["accuracy"].to_dict() == {
        k: v["accuracy"] for k, v in meta["import"]["scaling_scores"].items()}
    models_table = next(df.value for df in at.dataframe if "test_accuracy" in df.value.columns)
    assert "notebook" in list(models_table["name"])

    at.selectbox(key="import_override:notebook").set_value("unit").run()
    at.button(key="import_rescale:notebook").click().run()
    assert not at.exception and not at.error
    again = registry.read_metadata("notebook")
    assert again["import"]["scaling"] == "unit" and again["import"]["scaling_overridden"]
    assert again["test"]["accuracy"] != meta["test"]["accuracy"]
    assert any("Rebuilt **notebook** with input scaling unit" in s.value for s in at.success)
    assert "Download notebook.keras" in [b.label for b in at.get("download_button")]
    with zipfile.ZipFile(io.BytesIO(export.keras_bundle("notebook"))) as bundle:  # what the button serves
        assert json.loads(bundle.read("metadata.json"))["provenance"]["source_file"] == "notebook_model.h5"


def test_a_lambda_upload_is_one_error_line_and_never_runs(app_page, tmp_path, monkeypatch):
    monkeypatch.setenv("APP_IMPORT_MARKER", str(tmp_path / "while_building"))
    full, _, _ = foreign_models.lambda_payload(tmp_path, "APP_IMPORT_MARKER")
    marker = tmp_path / "MARKER"
    monkeypatch.setenv("APP_IMPORT_MARKER", str(marker))
    at = app_page("views/home.py", clean=True)
    _upload(at, "import_model_file", "evil.h5", full.read_bytes())
    at.run()
    at.button(key="import_go").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors == ["evil.h5: refusing to import: config contains 'Lambda', a layer whose "
                      "stored Python code would run"]
    assert not marker.exists() and not registry.exists("evil")


def test_a_json_without_weights_is_one_error_line(app_page, tmp_path):
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.Flatten(input_shape=(28, 28)), tf_keras.layers.Dense(10)])
    at = app_page("views/home.py", clean=True)
    _upload(at, "import_model_file", "arch.json", model.to_json().encode())
    at.run()
    at.button(key="import_go").click().run()
    assert [e.value for e in at.error] == [
        "arch.json: an architecture .json holds no weights; give the .h5 that save_weights "
        "wrote with it (--weights W.h5)"]


def test_an_imported_model_works_on_compare_inspect_and_draw(app_page, foreign_h5, full_mnist):
    """Nothing downstream knows about imports: the wrapper is an ordinary lab model. Its foreign layers sit flat
    in it, so Inspect reads its Dense layers as in a lab MLP."""
    from mnist_core.interop import importer

    path, _ = foreign_h5
    importer.import_model(path, "outside", mnist=full_mnist)
    assert [layer.name for layer in registry.load("outside").layers][:3] == ["image", "pixels", "scale_minus1_1"]
    at = app_page("views/compare.py", clean=True, query={"models": "outside"})
    assert not at.error, [e.value for e in at.error]
    assert "outside" in at.multiselect(key="compare_pick").value
    at = app_page("views/inspect.py", clean=True)
    picker = next(sb for sb in at.selectbox if "outside" in sb.options)
    picker.set_value("outside").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at = app_page("views/draw.py", clean=True)
    assert "outside" in at.sidebar.selectbox[0].options
