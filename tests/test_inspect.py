"""mnist_core.inspect on the real-digit fixture, with the shipped CNN and the tiny MLP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_core import inspect, registry
from tests.conftest import SHIPPED_MODELS

N_SALIENCY = 40


@pytest.fixture(scope="module")
def cnn():
    import keras

    from tests.conftest import SHIPPED_MODELS

    return inspect.Inspector(keras.saving.load_model(SHIPPED_MODELS / "default" / registry.MODEL_FILE, compile=False))


@pytest.fixture
def mlp(registry_with):
    registry_with("tiny")
    return inspect.Inspector(registry.load("tiny"))


def _digit(mnist, i: int) -> np.ndarray:
    return mnist.x_test[i].astype(np.float32) / 255.0


def _ink_ratio(heat: np.ndarray, digit: np.ndarray) -> float:
    """Mean heat on the ink over mean heat on the background."""
    ink = digit > 0.3
    return float(heat[ink].mean() / max(heat[~ink].mean(), 1e-9))


def expected_shapes(spec: dict) -> tuple[dict, dict]:
    """Feature-map and filter shapes a spec implies, worked out from the spec itself (not from the model)."""
    maps, filters, size = {}, {}, 28
    for i, block in enumerate(spec["conv_blocks"], start=1):
        if block["padding"] == "valid":
            size -= block["kernel"] - 1
        maps[f"conv{i}_{block['activation']}"] = (block["filters"], size, size)
        filters[f"conv{i}"] = (block["filters"], block["kernel"], block["kernel"])
        if block["pooling"] != "none":
            size //= 2
            maps[f"pool{i}"] = (block["filters"], size, size)
    return maps, filters


def test_cnn_layer_table_and_feature_maps(cnn, small_mnist):
    spec = json.loads((SHIPPED_MODELS / "default" / registry.METADATA_FILE).read_text())["spec"]
    acts = cnn.activations(_digit(small_mnist, 0))
    rows = cnn.layer_table(acts)
    assert [r["layer"] for r in rows] == [layer.name for layer in cnn.model.layers[1:]]
    assert rows[-1]["output shape"] == "(10,)" and abs(acts["digits"].sum() - 1) < 1e-4
    relu = next(r for r in rows if r["layer"] == "conv1_relu")
    assert relu["zero %"] > 0 and relu["max"] > 0  # ReLU: some units silent, some firing
    want_maps, want_filters = expected_shapes(spec)
    assert {k: v.shape for k, v in cnn.feature_maps(acts)} == want_maps
    assert {k: v.shape for k, v in cnn.conv_filters()} == want_filters
    assert cnn.first_dense_templates(acts) == []  # templates are for MLPs
    assert cnn.cam_layer == f"conv{len(spec['conv_blocks'])}_relu"


def test_saliency_and_grad_cam_concentrate_on_the_ink(cnn, small_mnist):
    ratios, cams = [], []
    for i in range(N_SALIENCY):
        x = _digit(small_mnist, i)
        cls = int(small_mnist.y_test[i])
        sal = cnn.saliency(x, cls)
        assert sal.shape == (28, 28) and sal.min() >= 0 and sal.max() == pytest.approx(1.0)
        ratios.append(_ink_ratio(sal, x))
        cams.append(_ink_ratio(cnn.grad_cam(x, cls), x))
    # Gradients reach the background too (a stroke there would change the score), but less so than the ink.
    # The shipped default was trained on thicker strokes, shifts and noise, so it also looks at the strokes'
    # surroundings: its median ratio is about 1.3 (the earlier fast-cnn default's was 2.6).
    assert np.median(ratios) > 1.2, ratios
    assert np.mean(np.array(ratios) > 1.0) >= 0.9, ratios
    assert np.median(cams) > 1.0, cams


def test_saliency_depends_on_the_class_asked_about(cnn, small_mnist):
    x = _digit(small_mnist, 0)
    label = int(small_mnist.y_test[0])
    other = (label + 1) % 10
    assert not np.allclose(cnn.saliency(x, label), cnn.saliency(x, other))


def test_gradient_matches_finite_differences(mlp, cnn, small_mnist):
    # The CNN's max-pooling over tied values (MNIST's flat zero background gives many) is not differentiable:
    # its gradient picks one of the tied inputs, and the slope either way differs from it by 10-30%. A faint
    # random background (at most 1% grey) breaks the ties, so the gradient is the slope both ways.
    x = _digit(small_mnist, 1) + np.random.default_rng(1).uniform(0, 0.01, (28, 28)).astype(np.float32)
    cls = int(small_mnist.y_test[1])
    for inspector, tolerance in ((mlp, 0.05), (cnn, 0.1)):
        grad = inspector.gradient(x, cls)
        # The score's slope along the gradient's own direction is the gradient's length.
        step = 0.01 * grad / np.linalg.norm(grad)
        up, down = inspector.class_scores(x + step)[cls], inspector.class_scores(x - step)[cls]
        assert (up - down) / 0.02 == pytest.approx(np.linalg.norm(grad), rel=tolerance)
        # ... and across it (a random direction orthogonal to the gradient) the score barely moves.
        side = np.random.default_rng(0).normal(size=(28, 28)).astype(np.float32)
        side -= (side * grad).sum() / (grad * grad).sum() * grad
        side *= 0.01 / np.linalg.norm(side)
        across = (inspector.class_scores(x + side)[cls] - inspector.class_scores(x - side)[cls]) / 0.02
        assert abs(across) < 0.2 * np.linalg.norm(grad)


def test_mlp_templates_and_no_grad_cam(mlp, small_mnist):
    # No ink test for the MLP's saliency: its first-layer weights on pixels that are blank in every training
    # image never receive a gradient and keep their random initial values, so its saliency map is noisy there.
    x = _digit(small_mnist, 0)
    acts = mlp.activations(x)
    templates = mlp.first_dense_templates(acts, count=16)
    assert len(templates) == 16
    responses = [t[1] for t in templates]
    assert responses == sorted(responses, reverse=True) and responses[0] == pytest.approx(acts["dense1"].max())
    unit, response, weights = templates[0]
    kernel = np.asarray(mlp.model.get_layer("dense1").kernel)
    assert weights.shape == (28, 28) and np.array_equal(weights.reshape(-1), kernel[:, unit])
    # The unit's response really is its template dotted with the image (plus bias, through ReLU).
    bias = np.asarray(mlp.model.get_layer("dense1").bias)[unit]
    assert response == pytest.approx(max(0.0, float((weights * x).sum() + bias)), rel=1e-4, abs=1e-4)
    assert mlp.kind == "mlp" and mlp.grad_cam(x, 0) is None and mlp.feature_maps(acts) == []


def test_neighbours_of_a_training_image_include_itself_and_share_its_label(cnn, small_mnist):
    x_train, y_train = small_mnist.x_train, small_mnist.y_train
    index = inspect.NeighbourIndex.build(cnn, x_train, y_train, size=len(x_train))
    agree = []
    for i in range(0, 200, 10):
        found = index.query(cnn.embed(x_train[i : i + 1])[0], k=5)
        assert found.indices[0] == i and found.distances[0] < 0.02 * found.distances[1]
        assert np.all(np.diff(found.distances) >= 0)
        agree.append(np.mean(found.labels[1:] == y_train[i]))
    assert np.mean(agree) > 0.9


def test_neighbour_sample_is_seeded_and_sized(cnn, small_mnist):
    a = inspect.NeighbourIndex.build(cnn, small_mnist.x_train, small_mnist.y_train, size=300, seed=3)
    b = inspect.NeighbourIndex.build(cnn, small_mnist.x_train, small_mnist.y_train, size=300, seed=3)
    assert a.embeddings.shape == (300, cnn.embed(small_mnist.x_test[:1]).shape[1]) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.labels, small_mnist.y_train[a.indices])


def test_embedding_map_shape_and_projection(cnn, small_mnist):
    em = inspect.embedding_map(cnn, small_mnist.x_test, small_mnist.y_test, size=500)
    assert em.coords.shape == (500, 2) and em.components.shape == (2, cnn.embed(small_mnist.x_test[:1]).shape[1])
    assert np.array_equal(em.labels, small_mnist.y_test[em.indices])
    assert np.mean(em.predicted == em.labels) > 0.95
    assert em.explained[0] >= em.explained[1] > 0
    # Projecting a mapped image lands on its own point.
    first = cnn.embed(small_mnist.x_test[em.indices[:1]])[0]
    assert np.allclose(em.project(first), em.coords[0], atol=1e-3)
    # Digits of one class sit together: each class centroid is nearer its own points than the average point is.
    centroids = np.stack([em.coords[em.labels == d].mean(axis=0) for d in range(10)])
    own = np.linalg.norm(em.coords - centroids[em.labels], axis=1).mean()
    overall = np.linalg.norm(em.coords - em.coords.mean(axis=0), axis=1).mean()
    assert own < overall


def test_pca_matches_known_directions():
    rng = np.random.default_rng(0)  # a shape test: the data are made to have known axes
    points = rng.normal(size=(400, 3)) * np.array([5.0, 2.0, 0.1])
    mean, comps, share = inspect.pca(points)
    assert comps.shape == (2, 3) and share[0] > share[1] > 0.1
    assert abs(comps[0, 0]) > 0.99 and abs(comps[1, 1]) > 0.99


def test_bad_input_shape_is_refused(cnn):
    with pytest.raises(ValueError, match="28, 28"):
        cnn.activations(np.zeros((32, 32), np.float32))


def test_tint_marks_the_heat_in_red(small_mnist):
    x = _digit(small_mnist, 0)
    heat = np.zeros((28, 28), np.float32)
    heat[5, 5] = 1.0
    rgb = inspect.tint(x, heat, scale=2)
    assert rgb.shape == (56, 56, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[10, 10]) == (255, 255, 0) and tuple(rgb[0, 0]) == (0, 0, 0)  # full heat on blank: yellow
