"""dashboard/charts.py: the figures the pages draw, checked on real MNIST digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dashboard import charts


def test_image_grid_tiles_each_digit_under_its_own_title(small_mnist):
    images = small_mnist.x_test[:12]
    titles = [f"#{i}: {y}" for i, y in enumerate(small_mnist.y_test[:12])]
    fig = charts.image_grid(images, titles, cols=5, tile_px=40)
    mosaic = np.asarray(fig.data[0].z, dtype=float)
    gap = 28 // 7
    band = gap + int(np.ceil(16 * 28 / 40))
    assert mosaic.shape == (3 * (28 + band), 5 * (28 + gap))  # 12 tiles in rows of 5
    for i, title in enumerate(titles):
        r, c = divmod(i, 5)
        y, x = r * (28 + band) + band, c * (28 + gap)
        np.testing.assert_allclose(mosaic[y : y + 28, x : x + 28], images[i] / 255.0)
        note = fig.layout.annotations[i]
        assert note.text == title
        assert x <= note.x <= x + 28 and note.y == y - 0.5  # centred above its own tile
    assert len(fig.layout.annotations) == 12
    assert np.isnan(mosaic[:band]).all()  # the title band is blank, not black


def test_image_grid_hover_names_the_image_under_the_pointer(small_mnist):
    hover = [f"test #{i}" for i in range(3)]
    fig = charts.image_grid(small_mnist.x_test[:3], cols=3, hover=hover)
    labels = np.asarray(fig.data[0].customdata, dtype=object)
    mosaic = np.asarray(fig.data[0].z, dtype=float)
    assert not fig.layout.annotations  # no titles asked for
    for i, text in enumerate(hover):
        x = i * (28 + 28 // 7)
        assert set(labels[-28:, x : x + 28].ravel()) == {text}
    assert np.isnan(mosaic[np.asarray(labels == "")]).all()  # gaps carry neither image nor hover text


# ---------- training curves ----------


def _meta(folder) -> dict:
    return json.loads((folder / "metadata.json").read_text())


def _old_format(meta: dict) -> dict:
    """The metadata as models saved before batch-resolution curves stored it: per-epoch history, no images."""
    old = {k: v for k, v in meta.items() if k != "curve"}
    old["history"] = [{k: v for k, v in row.items() if k != "images"} for row in meta["history"]]
    return old


@pytest.mark.parametrize("x", list(charts.X_AXES))
def test_stored_curve_plots_at_batch_resolution_on_each_axis(tiny_trained, x):
    meta = _meta(tiny_trained)
    curve, history = meta["curve"], meta["history"]
    fig = charts.training_curves({"tiny": meta}, "loss", x=x)
    train, validation = fig.data
    assert train.name == "train" and validation.name == "validation"
    assert list(train.x) == [p[x] for p in curve] and list(train.y) == [p["loss"] for p in curve]
    assert len(train.x) == 29  # a 1-epoch model is a line of 29 batches, not a dot
    field = {"epoch": "epoch", "images": "images", "seconds": "elapsed"}[x]
    assert list(validation.x) == [row[field] for row in history]
    assert list(validation.y) == [row["val_loss"] for row in history]
    assert train.line.color == validation.line.color == charts.PALETTE[0]
    assert (train.line.dash, validation.line.dash) == ("solid", "dash")
    assert fig.layout.xaxis.title.text == charts.X_AXES[x]
    assert fig.layout.xaxis.range[0] == 0 and fig.layout.xaxis.range[1] >= max(train.x)
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] >= max(train.y)


def test_old_model_without_curve_plots_its_history(tiny_trained):
    old = _old_format(_meta(tiny_trained))
    fig = charts.training_curves({"old": old}, "accuracy", x="epoch")
    assert [list(t.x) for t in fig.data] == [[1], [1]]  # one point per epoch, as stored
    assert list(fig.data[0].y) == [old["history"][0]["accuracy"]]
    by_images = charts.training_curves({"old": old, "new": _meta(tiny_trained)}, "accuracy", x="images")
    assert [t.name for t in by_images.data] == ["new train", "new validation"]
    assert by_images.layout.annotations[0].text == "no images seen recorded for old"


def test_empty_charts_start_at_zero_with_sane_ranges():
    loss = charts.training_curves({"run": []}, "loss")
    accuracy = charts.training_curves({"run": []}, "accuracy", x_max=3)
    assert not loss.data and not accuracy.data
    assert list(loss.layout.yaxis.range) == [0, charts.EMPTY_LOSS_TOP]
    assert list(accuracy.layout.yaxis.range) == [0, 1.005] and accuracy.layout.yaxis.tickformat == ".0%"
    assert list(loss.layout.xaxis.range) == [0, 1.02] and accuracy.layout.xaxis.range[1] == pytest.approx(3.06)
    assert loss.layout.annotations[0].text == "no points yet"


def test_live_points_from_real_events_and_a_tighter_accuracy_axis(small_mnist):
    from mnist_core.data import Mnist
    from mnist_core.spec import DenseLayer, ModelSpec, TrainConfig
    from mnist_core.train import fit

    events = []
    half = Mnist(small_mnist.x_train[:1000], small_mnist.y_train[:1000], None, None, source="fixture half")
    fit(ModelSpec(kind="mlp", dense_layers=[DenseLayer(32)]), TrainConfig(epochs=2, batch_size=50), events.append,
        mnist=half)
    # the points the job panel builds from events
    points = [{"epoch": e["epoch"] - 1 + e["batch"] / e["steps"], "images": e["images"], "seconds": e["elapsed"],
               "loss": e["loss"], "accuracy": e["accuracy"]} for e in events if e["event"] == "batch"]
    points += [{"epoch": e["epoch"], "images": e["images"], "seconds": e["elapsed"], "val_loss": e["val_loss"],
                "val_accuracy": e["val_accuracy"]} for e in events if e["event"] == "epoch"]
    fig = charts.training_curves({"live": points}, "accuracy", x="images", x_max=1800)
    train, validation = fig.data
    assert list(train.x) == sorted(p["images"] for p in points if "accuracy" in p)
    assert list(validation.x) == [900, 1800]
    low = fig.layout.yaxis.range[0]
    assert 0 <= low <= min(train.y) and fig.layout.xaxis.range[1] == pytest.approx(1800 * 1.02)
    late = [p for p in points if p["epoch"] > 1 or "val_accuracy" in p]  # the second epoch only: all well above chance
    tight = charts.training_curves({"live": late}, "accuracy").layout.yaxis.range[0]
    assert 0 < tight <= min(p.get("accuracy", p.get("val_accuracy")) for p in late) and tight > low


def test_model_colors_are_stable_distinct_and_shared_by_every_chart(tiny_trained):
    names = [f"m{i}" for i in range(12)]
    colors = charts.model_colors(names)
    assert colors == charts.model_colors(names) and colors == charts.model_colors(names + ["m3"])
    assert len(set(colors.values())) == 12 and colors["m0"] == charts.PALETTE[0]
    assert len(set(charts.model_colors([f"n{i}" for i in range(len(charts.PALETTE))]).values())) == len(charts.PALETTE)

    meta = _meta(tiny_trained)
    picked = {"b": meta, "a": _old_format(meta)}
    pair = {"a": colors["m5"], "b": colors["m2"]}
    curves = charts.training_curves(picked, "loss", colors=pair)
    bars = charts.per_class_bars({n: m["test"]["recall"] for n, m in picked.items()}, colors=pair)
    for trace in curves.data:
        assert trace.line.color == pair[trace.legendgroup]
    assert {b.name: b.marker.color for b in bars.data} == pair
