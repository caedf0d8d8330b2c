"""mnist_core.train on the real-digit fixture: events, stop requests, reproducibility, timing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_core import data as mnist_data
from mnist_core import evaluate, registry
from mnist_core import spec as specs
from mnist_core.data import Mnist
from mnist_core.errors import LabError
from mnist_core.spec import ConvBlock, DenseLayer, ModelSpec, TrainConfig
from mnist_core.train import CURVE_POINTS_PER_EPOCH, curve_stride, fit, train_and_save

SMALL_MLP = ModelSpec(kind="mlp", dense_layers=[DenseLayer(32)])
SMALL_CNN = ModelSpec(kind="cnn", conv_blocks=[ConvBlock(8, 3, padding="same", batch_norm=True)],
                      dense_layers=[DenseLayer(32, dropout=0.25)])


@pytest.fixture(scope="module")
def train_only(small_mnist) -> Mnist:
    """The fixture's training images with the test set removed: touching it would raise."""
    return Mnist(small_mnist.x_train, small_mnist.y_train, None, None, source="fixture, no test set")


def test_events_in_order_and_no_test_set(train_only):
    events = []
    config = TrainConfig(epochs=2, batch_size=100, validation_split=0.1, seed=0)
    result = fit(SMALL_MLP, config, events.append, mnist=train_only)

    start = events[0]
    assert start == {"event": "start", "epochs": 2, "steps_per_epoch": 18, "params": 784 * 32 + 32 + 330,
                     "train_size": 1800, "validation_size": 200}
    kinds = [e["event"] for e in events]
    assert set(kinds) == {"start", "batch", "epoch"} and kinds.count("start") == 1
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for epoch in epochs:
        i = events.index(epoch)
        # the epoch's last batch is always reported, right before its epoch summary
        assert events[i - 1]["event"] == "batch"
        assert (events[i - 1]["epoch"], events[i - 1]["batch"], events[i - 1]["steps"]) == (epoch["epoch"], 18, 18)
        assert set(epoch) >= {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate"}
        assert 0 <= epoch["val_accuracy"] <= 1 and epoch["loss"] > 0 and epoch["learning_rate"] == pytest.approx(1e-3)
    batches = [e for e in events if e["event"] == "batch"]
    assert all(1 <= b["batch"] <= 18 for b in batches)
    assert [b["elapsed"] for b in batches] == sorted(b["elapsed"] for b in batches)
    assert result.history == [{k: v for k, v in e.items() if k != "event"} for e in epochs]
    assert not result.stopped and result.seconds > 0
    # learning happened on real digits: the second epoch's training loss is lower than the first's
    assert epochs[1]["loss"] < epochs[0]["loss"]


class StopAfter:
    """should_stop that says yes from its n-th call on (it is asked once per finished batch)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


@pytest.mark.parametrize(("stop_after", "full_epochs"), [(3, 0), (18 + 5, 1)])
def test_stop_request_ends_at_the_next_batch(train_only, stop_after, full_epochs):
    events, stop = [], StopAfter(stop_after)
    config = TrainConfig(epochs=3, batch_size=100, seed=0)
    result = fit(SMALL_MLP, config, events.append, stop, mnist=train_only)
    assert result.stopped
    assert stop.calls == stop_after  # not one batch more
    assert len(result.history) == full_epochs  # no partial epoch in the history
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == list(range(1, full_epochs + 1))
    last_batch = [e for e in events if e["event"] == "batch"][-1]
    assert (last_batch["epoch"] - 1) * 18 + last_batch["batch"] <= stop_after


def test_train_and_save_stopped_saves_nothing(small_mnist, isolated_dirs):
    events = []
    assert train_and_save(SMALL_MLP, TrainConfig(epochs=1, batch_size=100), "halted", events.append,
                          StopAfter(2), small_mnist) is None
    assert events[-1] == {"event": "stopped", "message": "stopped by request; nothing was saved"}
    assert list(isolated_dirs.iterdir()) == []


def test_train_and_save_writes_full_metadata(small_mnist, isolated_dirs):
    events = []
    config = TrainConfig(epochs=1, batch_size=64, seed=5)
    meta = train_and_save(SMALL_MLP, config, "saved", events.append, mnist=small_mnist, preset=None)
    assert [e["event"] for e in events][-2:] == ["evaluating", "done"]
    on_disk = json.loads((isolated_dirs / "saved" / "metadata.json").read_text())
    assert on_disk["name"] == "saved" and on_disk["test"] == meta["test"]
    assert specs.spec_from_dict(on_disk["spec"]) == SMALL_MLP and specs.config_from_dict(on_disk["config"]) == config
    assert on_disk["seed"] == 5 and on_disk["parameters"] == 25450 and len(on_disk["history"]) == 1
    assert len(on_disk["curve"]) == 29 and on_disk["curve"][-1]["images"] == 1800  # every one of 29 batches of 64
    assert "stopped_early" not in on_disk and "early_stopped" not in on_disk
    assert on_disk["test"]["n"] == 1000 and np.array(on_disk["test"]["confusion_matrix"]).sum() == 1000
    # the stored test metrics are what the saved model really scores on the fixture's test images
    model = registry.load("saved")
    again, _ = evaluate.evaluate(model, small_mnist.x_test, small_mnist.y_test)
    assert again["accuracy"] == pytest.approx(meta["test"]["accuracy"], abs=1e-9)
    with pytest.raises(LabError, match="a model named 'saved' already exists"):
        train_and_save(SMALL_MLP, config, "saved", mnist=small_mnist)
    with pytest.raises(LabError, match="bad model name"):
        train_and_save(SMALL_MLP, config, "../escape", mnist=small_mnist)


@pytest.mark.parametrize("spec", [SMALL_MLP, SMALL_CNN], ids=["mlp", "cnn-batchnorm-dropout"])
def test_same_spec_config_seed_give_identical_results(small_mnist, spec):
    half = Mnist(small_mnist.x_train[:1000], small_mnist.y_train[:1000], None, None, source="fixture half")
    config = TrainConfig(epochs=1, batch_size=50, seed=11)
    runs = []
    for _ in range(2):
        model = fit(spec, config, mnist=half).model
        runs.append(evaluate.probabilities(model, small_mnist.x_test))
    assert np.array_equal(runs[0], runs[1])  # bit-identical, so the test accuracy is identical too
    assert evaluate.metrics(runs[0], small_mnist.y_test)["accuracy"] > 0.3  # 20 steps of learning: well above chance
    other = fit(spec, TrainConfig(epochs=1, batch_size=50, seed=12), mnist=half).model
    assert not np.array_equal(evaluate.probabilities(other, small_mnist.x_test), runs[0])  # the seed matters


REPRO_SCRIPT = """
import hashlib, sys
import numpy as np
from mnist_core import evaluate
from mnist_core.data import Mnist
from mnist_core.spec import DenseLayer, ModelSpec, TrainConfig
from mnist_core.train import fit

with np.load(sys.argv[1]) as npz:
    half = Mnist(npz["x_train"][:1000], npz["y_train"][:1000], None, None, source="fixture half")
    x_test = npz["x_test"]
model = fit(ModelSpec(kind="mlp", dense_layers=[DenseLayer(32)]), TrainConfig(epochs=1, batch_size=50, seed=11),
            mnist=half).model
print(hashlib.sha256(evaluate.probabilities(model, x_test).tobytes()).hexdigest())
"""


def test_reproducible_across_processes(tmp_path, small_mnist):
    # A fresh process (own thread pool, own hash seed) trains the same spec, config and seed as this one.
    import hashlib

    fixture = Path(__file__).parent / "fixtures" / "mnist_small.npz"
    script = tmp_path / "repro.py"
    script.write_text(REPRO_SCRIPT)
    root = Path(__file__).resolve().parent.parent
    run = subprocess.Popen([sys.executable, str(script), str(fixture)], cwd=root, text=True,
                           env=dict(os.environ, PYTHONPATH=str(root)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    half = Mnist(small_mnist.x_train[:1000], small_mnist.y_train[:1000], None, None, source="fixture half")
    model = fit(SMALL_MLP, TrainConfig(epochs=1, batch_size=50, seed=11), mnist=half).model
    here = hashlib.sha256(evaluate.probabilities(model, small_mnist.x_test).tobytes()).hexdigest()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == here


# ---------- the stored curve ----------


def test_curve_is_bounded_and_at_batch_resolution(train_only):
    events = []
    config = TrainConfig(epochs=2, batch_size=8, validation_split=0.1, seed=0)  # 1800 images: 225 steps per epoch
    result = fit(SMALL_MLP, config, events.append, mnist=train_only)
    curve, steps = result.curve, 225
    stride = curve_stride(steps, 2)
    assert stride == 3 and len(curve) == 2 * 75  # every 3rd batch: 75 points per epoch, within the bound
    assert all(set(p) == {"epoch", "images", "seconds", "loss", "accuracy"} for p in curve)
    for key in ("epoch", "images", "seconds"):
        values = [p[key] for p in curve]
        assert values == sorted(values)
        assert len(set(values)) == len(values) or key == "seconds"  # two batches may share a rounded millisecond
    assert curve[0]["epoch"] == pytest.approx(3 / 225, abs=1e-5) and curve[0]["images"] == 24
    ends = [p for p in curve if float(p["epoch"]).is_integer()]
    assert [p["epoch"] for p in ends] == [1, 2] and [p["images"] for p in ends] == [1800, 3600]
    for end, row in zip(ends, result.history, strict=True):
        # Keras's running mean at an epoch's last batch is the epoch's training score
        assert end["loss"] == pytest.approx(row["loss"], rel=1e-5) and end["accuracy"] == pytest.approx(row["accuracy"])
        assert row["images"] == end["images"] and end["seconds"] <= row["elapsed"]
    first_epoch = [p["loss"] for p in curve if p["epoch"] <= 1]
    assert first_epoch[-1] < first_epoch[0]  # the curve shows learning within the first epoch
    batches = [e for e in events if e["event"] == "batch"]
    assert batches and all(e["images"] == ((e["epoch"] - 1) * 1800 + min(e["batch"] * 8, 1800)) for e in batches)
    assert len(batches) < len(curve)  # events stay throttled; the curve is recorded separately


@pytest.mark.parametrize(("steps", "epochs", "per_epoch"), [(18, 1, 18), (1688, 1, 100), (422, 12, 85),
                                                             (1688, 200, 50), (1688, 1000, 10), (3, 1000, 3)])
def test_curve_stride_bounds_points_per_epoch_and_per_run(steps, epochs, per_epoch):
    stride = curve_stride(steps, epochs)
    assert math.ceil(steps / stride) == per_epoch  # points in one epoch: batches stride, 2*stride, ..., and the last
    assert per_epoch <= CURVE_POINTS_PER_EPOCH and per_epoch * epochs <= 10_000


# ---------- early stopping ----------


def test_patience_stops_early_and_restores_the_best_epoch(small_mnist, isolated_dirs):
    # 300 digits, half held out, a wide net at a high learning rate: validation loss soon rises (overfitting).
    few = Mnist(small_mnist.x_train[:300], small_mnist.y_train[:300], small_mnist.x_test, small_mnist.y_test,
                source="fixture, 300")
    config = TrainConfig(epochs=40, batch_size=25, learning_rate=0.01, validation_split=0.5, seed=3, patience=2)
    events = []
    meta = train_and_save(ModelSpec(kind="mlp", dense_layers=[DenseLayer(256)]), config, "patient", events.append,
                          mnist=few)
    history = meta["history"]
    val_losses = [row["val_loss"] for row in history]
    best = int(np.argmin(val_losses)) + 1
    assert meta["early_stopped"] == {"epoch": len(history), "best_epoch": best} and events[-1]["early_stopped"]
    assert len(history) < 40 and len(history) == best + 2  # two epochs without improvement, then stop
    # the saved model holds the best epoch's weights: its validation loss is that epoch's, not the last one's
    _, (x_val, y_val) = mnist_data.split(few.x_train, few.y_train, 0.5, 3)
    scores, _ = evaluate.evaluate(registry.load("patient"), x_val, y_val)
    assert scores["loss"] == pytest.approx(val_losses[best - 1], rel=1e-4)
    assert scores["loss"] < val_losses[-1]


# ---------- stop and keep ----------


@pytest.mark.parametrize(("validation_split", "stop_after", "best_epoch"), [(0.1, 18 + 5, 1), (0.0, 2 * 20 + 3, 2)],
                         ids=["best-validation-loss", "no-validation-latest-epoch"])
def test_stop_and_keep_saves_the_best_completed_epoch(small_mnist, isolated_dirs, validation_split, stop_after,
                                                      best_epoch):
    events = []
    config = TrainConfig(epochs=4, batch_size=100, validation_split=validation_split, seed=7)
    meta = train_and_save(SMALL_MLP, config, "kept", events.append, StopAfter(stop_after), small_mnist,
                          keep_on_stop=lambda: True)
    assert meta["stopped_early"] == {"at_epoch": best_epoch + 1, "best_epoch": best_epoch, "reason": "stopped by request"}
    assert [e["event"] for e in events][-2:] == ["evaluating", "done"] and events[-1]["stopped_early"] is True
    assert len(meta["history"]) == best_epoch and meta["curve"][-1]["epoch"] > best_epoch  # the curve shows it all
    # The kept weights are exactly those of a run that ended after the best epoch (training is deterministic).
    reference = fit(SMALL_MLP, TrainConfig(epochs=best_epoch, batch_size=100, validation_split=validation_split,
                                           seed=7), mnist=small_mnist).model
    kept = registry.load("kept")
    assert np.array_equal(evaluate.probabilities(kept, small_mnist.x_test),
                          evaluate.probabilities(reference, small_mnist.x_test))
    assert meta["test"]["accuracy"] == pytest.approx(evaluate.evaluate(reference, small_mnist.x_test,
                                                                       small_mnist.y_test)[0]["accuracy"])


@pytest.mark.parametrize(("stop_after", "keep"), [(5, True), (18 + 5, False)], ids=["no-epoch-done", "discard"])
def test_stop_without_keeping_saves_nothing(small_mnist, isolated_dirs, stop_after, keep):
    events = []
    result = train_and_save(SMALL_MLP, TrainConfig(epochs=3, batch_size=100), "gone", events.append,
                            StopAfter(stop_after), small_mnist, keep_on_stop=lambda: keep)
    assert result is None and events[-1]["event"] == "stopped"
    assert list(isolated_dirs.iterdir()) == []
