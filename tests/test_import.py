"""Importing models trained elsewhere (mnist_core.interop.importer): real foreign models written by tf-keras and
Keras 3, trained on differently scaled inputs; the imported model's accuracy and chosen scaling are checked
against the foreign tool's own predictions on the same scaled images."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from mnist_core import registry
from mnist_core.errors import LabError
from mnist_core.interop import importer
from tests import foreign_models


@pytest.fixture(scope="module")
def foreign(small_mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("foreign")
    h5_path, mlp = foreign_models.keras2_mlp_h5(folder, small_mnist, "l2_columns")
    json_path, weights_path, cnn = foreign_models.keras2_cnn_json(folder, small_mnist, "symmetric")
    keras_path, flat = foreign_models.keras3_flat(folder, small_mnist, "unit")
    return {"folder": folder, "h5": (h5_path, mlp), "json": (json_path, weights_path, cnn),
            "keras": (keras_path, flat)}


def independent_scores(model, mnist, shape: tuple) -> dict:
    """Per candidate scaling, the foreign model's own loss and accuracy on the lab's probe images, with the
    scaling done by the foreign tool (not by the lab's wrapper layers)."""
    images, labels = importer.probe_images(mnist)
    scores = {}
    for scaling in importer.SCALINGS:
        out = np.asarray(model.predict(foreign_models.scaled(images, scaling).reshape(-1, *shape), verbose=0))
        if not np.allclose(out.sum(1), 1, atol=1e-3):
            out = np.exp(out - out.max(1, keepdims=True))
            out /= out.sum(1, keepdims=True)
        picked = np.clip(out[np.arange(len(labels)), labels], 1e-7, 1)
        scores[scaling] = {"accuracy": float((out.argmax(1) == labels).mean()), "loss": float(-np.log(picked).mean())}
    return scores


def check_against_foreign(meta: dict, model, mnist, shape: tuple, trained_scaling: str) -> None:
    expected = independent_scores(model, mnist, shape)
    recorded = meta["import"]["scaling_scores"]
    for scaling, score in expected.items():
        assert recorded[scaling]["accuracy"] == pytest.approx(score["accuracy"], abs=0.006), scaling
        assert recorded[scaling]["loss"] == pytest.approx(score["loss"], rel=0.02, abs=1e-3), scaling
    assert min(expected, key=lambda s: expected[s]["loss"]) == trained_scaling
    assert meta["import"]["scaling"] == meta["provenance"]["scaling"] == trained_scaling
    # The imported model on the full (fixture) test set against the foreign tool on the same scaled images.
    foreign_probs = model.predict(foreign_models.scaled(mnist.x_test, trained_scaling).reshape(-1, *shape), verbose=0)
    foreign_accuracy = float((foreign_probs.argmax(1) == mnist.y_test).mean())
    assert meta["test"]["accuracy"] == pytest.approx(foreign_accuracy, abs=0.002)
    assert meta["test"]["accuracy"] > 0.7  # trained, not chance: the comparison above means something
    from mnist_core import evaluate

    lab_probs = evaluate.probabilities(registry.load(meta["name"]), mnist.x_test)
    assert (lab_probs.argmax(1) == foreign_probs.argmax(1)).mean() >= 0.998


def test_keras2_full_h5_trained_on_l2_rows(foreign, small_mnist):
    path, model = foreign["h5"]
    meta = importer.import_model(path, "from-h5", mnist=small_mnist)
    assert meta["import"]["input_shape"] == [28, 28] and meta["import"]["output"] == "scores"
    check_against_foreign(meta, model, small_mnist, (28, 28), "l2_columns")
    prov = meta["provenance"]
    assert prov["format"] == "h5" and prov["source_file"] == path.name and prov["keras_version"].startswith("2.")
    assert prov["files"][0]["sha256"] == registry.file_sha256(path)
    assert registry.inspect("from-h5").ok and meta["kind"] == importer.IMPORTED_KIND


def test_keras2_json_and_weights_trained_on_minus1_1(foreign, small_mnist):
    json_path, weights_path, model = foreign["json"]
    meta = importer.import_model(json_path, "from-json", weights=weights_path, mnist=small_mnist)
    assert meta["import"]["input_shape"] == [28, 28, 1] and meta["import"]["output"] == "probabilities"
    check_against_foreign(meta, model, small_mnist, (28, 28, 1), "symmetric")
    assert [f["role"] for f in meta["provenance"]["files"]] == ["model", "weights"]
    assert meta["provenance"]["files"][1]["sha256"] == registry.file_sha256(weights_path)


def test_keras3_file_on_flat_input_lists_loads_and_deletes(foreign, small_mnist):
    path, model = foreign["keras"]
    meta = importer.import_model(path, "from-keras", mnist=small_mnist)
    assert meta["import"]["input_shape"] == [784] and meta["provenance"]["format"] == "keras"
    check_against_foreign(meta, model, small_mnist, (784,), "unit")
    assert meta["provenance"]["keras_version"].startswith("3.")
    assert "from-keras" in [e.name for e in registry.list_models() if e.ok]
    registry.delete("from-keras")
    assert not registry.exists("from-keras")


def test_scaling_override_and_rescale_from_the_stored_layers(foreign, small_mnist, tmp_path):
    path, model = foreign["h5"]
    meta = importer.import_model(path, "forced", scaling="unit", mnist=small_mnist)
    assert meta["import"]["scaling"] == "unit" and meta["import"]["detected_scaling"] == "l2_columns"
    assert meta["import"]["scaling_overridden"]
    unit_accuracy = meta["test"]["accuracy"]
    path.rename(tmp_path / "gone.h5")  # rescaling needs no original file
    try:
        again = importer.rescale("forced", "l2_columns", mnist=small_mnist)
    finally:
        (tmp_path / "gone.h5").rename(path)
    assert again["import"]["scaling"] == "l2_columns" and not again["import"]["scaling_overridden"]
    foreign_probs = model.predict(foreign_models.scaled(small_mnist.x_test, "l2_columns"), verbose=0)
    assert again["test"]["accuracy"] == pytest.approx((foreign_probs.argmax(1) == small_mnist.y_test).mean(),
                                                      abs=0.002)
    assert again["test"]["accuracy"] != unit_accuracy
    assert registry.inspect("forced").ok and again["created"] == meta["created"]


@pytest.mark.parametrize("shape", [(28, 28), (784,), (28, 28, 1), (1, 28, 28)])
def test_every_input_shape_sees_the_same_pixels(shape, small_mnist):
    """The wrapper's Reshape puts pixel (r, c) where the foreign layout has it: a Dense model on flattened
    pixels gives the same outputs whatever shape its input layer declares."""
    import keras

    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(10)
    foreign = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), dense])
    wrapped = importer.wrap([foreign], shape, "unit", "scores")
    x = small_mnist.x_test[:16]
    expected = keras.ops.softmax(dense(x.reshape(16, 784).astype("float32") / 255.0))
    np.testing.assert_allclose(np.asarray(wrapped(x[..., None].astype("float32") / 255.0)), np.asarray(expected),
                               rtol=1e-5, atol=1e-6)


def test_l2_columns_layer_matches_tf_keras_normalize(small_mnist):
    import keras

    x = small_mnist.x_test[:8]
    layer_out = np.asarray(keras.Sequential(importer.scaling_layers("l2_columns"))(x / 255.0))
    np.testing.assert_allclose(layer_out, foreign_models.scaled(x, "l2_columns"), rtol=1e-5, atol=1e-6)


def test_lambda_payload_is_refused_and_never_runs(tmp_path, monkeypatch, small_mnist):
    """A Lambda's marshalled bytecode in an .h5 and in a .json: refused before anything is built, the marker
    never appears. Control: tf-keras itself runs the payload when it loads the same .h5."""
    import tf_keras

    monkeypatch.setenv("IMPORT_MARKER", str(tmp_path / "while_building"))
    full, architecture, weights = foreign_models.lambda_payload(tmp_path, "IMPORT_MARKER")
    marker = tmp_path / "MARKER"
    monkeypatch.setenv("IMPORT_MARKER", str(marker))
    with pytest.raises(LabError, match=r"^evil\.h5: refusing to import: config contains 'Lambda'"):
        importer.import_model(full, "evil", mnist=small_mnist)
    with pytest.raises(LabError, match=r"^evil\.json: refusing to import: config contains 'Lambda'"):
        importer.import_model(architecture, "evil", weights=weights, mnist=small_mnist)
    assert not marker.exists() and not registry.exists("evil")
    tf_keras.models.load_model(full)  # the payload is live: Keras 2 runs it on load
    assert marker.read_text() == "ran"


def test_refusals_are_one_line(tmp_path, foreign, small_mnist):
    json_path, weights_path, _ = foreign["json"]
    config = json.loads(json_path.read_text())
    config["config"]["layers"][1]["class_name"] = "MyConv"
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(config))
    config["config"]["layers"][1]["class_name"] = "Conv2D"
    config["config"]["layers"][1]["module"] = "my_project.layers"
    module = tmp_path / "module.json"
    module.write_text(json.dumps(config))
    config["config"]["layers"][1]["module"] = "keras.layers"
    config["config"]["layers"][1]["config"]["activation"] = "my_activation"
    activation = tmp_path / "activation.json"
    activation.write_text(json.dumps(config))
    config["config"]["layers"][1]["config"]["activation"] = "relu"
    config["config"]["layers"][1]["config"]["kernel_size"] = [5, 5]
    for layer in config["config"]["layers"]:  # as tf.keras before 2.13 wrote it: shapes follow from the input
        layer.pop("build_config", None)
    wider = tmp_path / "wider.json"
    wider.write_text(json.dumps(config))
    cases = [
        (unknown, unknown.name, "config contains 'MyConv'"), (module, module.name, "module 'my_project.layers'"),
        (activation, activation.name, "activation 'my_activation'"),
        (wider, weights_path.name, r"layer 'conv2d' weights have shapes \[\(3, 3, 1, 8\), \(8,\)\], the architecture "
                                   r"needs \[\(5, 5, 1, 8\), \(8,\)\]"),
    ]
    for path, named, reason in cases:
        with pytest.raises(LabError, match=f"^{named}: .*{reason}") as caught:
            importer.import_model(path, "bad", weights=weights_path, mnist=small_mnist)
        assert "\n" not in str(caught.value)
    assert not registry.exists("bad")


def test_size_bounds_stop_bombs(tmp_path, monkeypatch):
    many = tmp_path / "many.keras"
    with zipfile.ZipFile(many, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        for i in range(70):
            zf.writestr(f"m{i}", b"")
    with pytest.raises(LabError, match=r"^many\.keras: refusing to load: many\.keras has 71 members"):
        importer.import_model(many, "bomb")
    deep = tmp_path / "deep.json"
    deep.write_text('{"class_name": "Sequential", "config": ' + "[" * 200 + "]" * 200 + "}")
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"never opened: the config is refused first")
    with pytest.raises(LabError, match=r"^deep\.json: refusing to import: config is nested more than 64 deep"):
        importer.import_model(deep, "bomb", weights=weights)


def test_an_h5_never_reaches_keras_load_model(foreign, small_mnist, monkeypatch):
    """Keras's load_model ignores safe_mode for .h5 files: an .h5 import builds from the checked config instead."""
    import keras

    calls = []
    real = keras.saving.load_model

    def spy(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    monkeypatch.setattr(keras.models, "load_model", spy)
    json_path, weights_path, _ = foreign["json"]
    importer.import_model(foreign["h5"][0], "spied-h5", mnist=small_mnist)
    importer.import_model(json_path, "spied-json", weights=weights_path, mnist=small_mnist)
    assert not any(c.endswith((".h5", ".hdf5")) for c in calls), calls
    assert all(c.endswith("model.keras") for c in calls)  # only the registry's own files, after its checks
