"""Hostile inputs, round two, group 2: compute bounded before the work starts.

A spec over the lab's cost limits is refused in one line without building a model; a spec too heavy to
time is estimated from FLOPs, never timed in the server; `predict` on many large scans keeps one 28x28
input per file, not the scans."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from dashboard.components import spec_sidebar
from mnist_core import spec as specs
from mnist_core.cli import predict as predict_cli

ROOT = Path(__file__).resolve().parents[2]
TAB = "c0ffee000001"


@pytest.fixture
def never_timed(monkeypatch):
    """Fails the test if the page builds a Keras model or times batches in this (the server's) process."""
    import keras

    from mnist_core import estimate

    def refuse(*args, **kwargs):
        raise AssertionError("heavy work ran in the server process")

    monkeypatch.setattr(estimate, "time_steps", refuse)
    monkeypatch.setattr(keras, "Model", refuse)


def open_with(app_page, spec: specs.ModelSpec, config: specs.TrainConfig):
    return app_page("views/train.py", clean=True,
                    query={"tab": TAB, "spec": spec_sidebar.encode_for_url(spec, config)})


def test_a_batch_over_the_memory_limit_is_refused_on_the_page_without_any_work(app_page, never_timed):
    spec, config = specs.preset("cnn-classic").copy()
    at = open_with(app_page, spec, specs.TrainConfig(batch_size=4096))  # the sidebar allows up to 4096
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "batch_size 4096 needs about 4.4 GiB" in errors[0] and "\n" not in errors[0], errors
    assert not any(m.label.endswith("job time") for m in at.metric)
    assert next(b for b in at.button if b.label == "Start training").disabled
    assert list(at.dataframe[0].value["layer"])[:2] == ["image", "conv1"]  # the rest of the page works


def test_a_spec_too_heavy_to_time_is_estimated_from_flops_and_says_so(app_page, never_timed):
    spec, _ = specs.preset("cnn-classic").copy()
    at = open_with(app_page, spec, specs.TrainConfig(batch_size=1024))
    assert not at.error, [e.value for e in at.error]
    estimate = next(m for m in at.metric if m.label.endswith("job time"))
    assert estimate.label == "Estimated job time" and estimate.value.endswith(("s", "min"))
    assert any("Estimated from FLOPs" in c.value and "not timed" in c.value for c in at.caption)
    assert not next(b for b in at.button if b.label == "Start training").disabled


def test_a_link_over_the_parameter_limit_is_refused_in_one_line(app_page):
    huge = {"spec": {"kind": "mlp", "dense_layers": [{"units": 8192}] * 8}}
    import base64
    import json
    import zlib

    link = base64.urlsafe_b64encode(zlib.compress(json.dumps(huge).encode())).decode().rstrip("=")
    at = app_page("views/train.py", clean=True, query={"tab": TAB, "spec": link})
    assert any("link: the model has 476,332,042 parameters" in e.value and "over the lab's limit of 10,000,000" in e.value
               for e in at.error), [e.value for e in at.error]


# ---------- predict on many large scans ----------


def _scan(path: Path) -> None:
    img = Image.new("RGB", (4000, 4000), "white")  # 16 million pixels, under preprocess.MAX_PIXELS
    ImageDraw.Draw(img).line([(1500, 800), (2500, 800), (1800, 3200)], fill="black", width=180)  # a 7
    img.save(path)


def _peak_rss_mb(*args: str) -> tuple[subprocess.CompletedProcess, int, int]:
    """Run `predict` in a fresh process and return its peak resident memory in MB (getrusage)."""
    probe = ("import resource, subprocess, sys; "
             "r = subprocess.run([sys.executable, '-m', 'mnist_core', 'predict', *sys.argv[1:]], capture_output=True, "
             "text=True); print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); "
             "print(r.stderr[-500:], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=600)
    code, peak = done.stdout.split()
    return done, int(code), int(peak)


def test_predict_on_40_large_scans_keeps_memory_flat(tmp_path, registry_with):
    registry_with(default=True)
    folder = tmp_path / "scans"
    folder.mkdir()
    _scan(folder / "scan00.png")
    for i in range(1, 40):
        os.link(folder / "scan00.png", folder / f"scan{i:02d}.png")
    _, code_one, one = _peak_rss_mb(str(folder / "scan00.png"))
    done, code_all, forty = _peak_rss_mb(str(folder))
    assert code_one == code_all == 0, done.stderr
    # Before, each scan's full-size grayscale step (64 MB) was kept until the model ran: +2.4 GB for 40.
    assert forty - one < 150, (one, forty)


def test_predict_refuses_more_files_than_its_bound_before_reading_any(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(predict_cli.MAX_FILES + 1):
        (folder / f"{i}.png").touch()  # empty: refused by count before any is read, or else as empty
    done = subprocess.run([sys.executable, "-m", "mnist_core", "predict", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and f"more than {predict_cli.MAX_FILES:,} image files in one command" in lines[0]


def test_preparing_without_steps_keeps_only_the_input(tmp_path):
    from mnist_core import preprocess

    _scan(tmp_path / "scan.png")
    data = (tmp_path / "scan.png").read_bytes()
    full, lean = preprocess.image_to_mnist(data, "scan.png"), preprocess.image_to_mnist(data, "scan.png", False)
    assert full.steps["grayscale"].shape == (4000, 4000) and lean.steps == {}
    assert (lean.input == full.input).all() and lean.input.shape == (28, 28)
