"""Shared fixtures. Every test gets its own empty registry and jobs folder, so nothing a
test does can touch the real saved_models/; the real MNIST cache is shared read-only."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnist_core.tf_quiet import use_lab_settings

use_lab_settings()  # tests train and predict as the CLI and the app do

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "mnist_small.npz"
SHIPPED_MODELS = ROOT / "saved_models"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """A fresh registry and jobs folder per test."""
    models, jobs = tmp_path / "saved_models", tmp_path / "jobs"
    models.mkdir()
    jobs.mkdir()
    monkeypatch.setenv("MNIST_MODELS_DIR", str(models))
    monkeypatch.setenv("MNIST_JOBS_DIR", str(jobs))
    monkeypatch.setenv("MNIST_EXPLORE_DIR", str(tmp_path / "explore"))  # hyperparameter studies
    monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(tmp_path / "my_digits.sqlite"))  # the user's saved drawings
    return models


@pytest.fixture(scope="session")
def small_mnist():
    """A few thousand real MNIST digits cut from the official files (tests/fixtures/make_fixture.py)."""
    from mnist_core.data import Mnist

    with np.load(FIXTURE) as npz:
        return Mnist(npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"], source="fixture")


@pytest.fixture(scope="session")
def full_mnist():
    """The full official data set (from the cache `make test` fills)."""
    from mnist_core import data

    return data.load()


@pytest.fixture(scope="session")
def tiny_trained(small_mnist, tmp_path_factory):
    """A small MLP trained one epoch on the fixture, saved once; copy it into a test's registry with `registry_with`."""
    from mnist_core import spec as specs
    from mnist_core.train import train_and_save

    folder = tmp_path_factory.mktemp("tiny_registry")
    old = os.environ.get("MNIST_MODELS_DIR")
    os.environ["MNIST_MODELS_DIR"] = str(folder)
    try:
        spec = specs.ModelSpec(kind="mlp", dense_layers=[specs.DenseLayer(32)])
        config = specs.TrainConfig(epochs=1, batch_size=64, seed=1)
        train_and_save(spec, config, "tiny", mnist=small_mnist)
    finally:
        if old is None:
            os.environ.pop("MNIST_MODELS_DIR", None)
        else:
            os.environ["MNIST_MODELS_DIR"] = old
    return folder / "tiny"


@pytest.fixture
def registry_with(isolated_dirs, tiny_trained):
    """Call registry_with("a", "b", default=True) to fill this test's registry with copies of the tiny model
    (and, with default=True, the shipped default model)."""

    def fill(*names: str, default: bool = False) -> Path:
        for name in names:
            shutil.copytree(tiny_trained, isolated_dirs / name)
            _rename_in_metadata(isolated_dirs / name, name)
        if default:
            shutil.copytree(SHIPPED_MODELS / "default", isolated_dirs / "default")
        return isolated_dirs

    return fill


def _rename_in_metadata(folder: Path, name: str) -> None:
    import json

    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["name"] = name
    meta_path.write_text(json.dumps(meta))


APP_TIMEOUT = 90  # seconds per AppTest run: TensorFlow import and model loads are slow on a shared 2-core box


@pytest.fixture
def app_page():
    """Run one dashboard page in AppTest with empty Streamlit caches: `at = app_page("views/draw.py")`.

    The page runs through dashboard/app.py (so st.navigation and page links work) against this test's registry.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_resource.clear()
    st.cache_data.clear()

    def open_page(page: str = "views/home.py", clean: bool = False, query: dict | None = None) -> AppTest:
        """clean=True also asserts the page rendered without an exception; `query` is the URL's query
        (e.g. {"tab": ...} for the browser session a reloaded tab carries)."""
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=APP_TIMEOUT)
        at.query_params.update(query or {})
        at.switch_page(page).run()
        assert not (clean and at.exception), at.exception
        return at

    yield open_page
    st.cache_resource.clear()
    st.cache_data.clear()


def plotly_array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or numpy's bytes as {"dtype", "bdata", "shape"} (plotly 6+)."""
    if not isinstance(value, dict):
        return np.asarray(value)
    import base64

    data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    shape = value.get("shape")
    return data.reshape([int(n) for n in str(shape).split(",")]) if shape else data
