"""Issue 5, case 13 (server settings) and the CLI rule: models, predict, test and train answer every bad
input with exit code 2 and one line on stderr, never a traceback."""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path

import pytest
from hostile_util import ROOT, assert_one_line_error, run_cli, run_cli_process

from mnist_core import preprocess, registry

# ---------- case 13: server ----------


def test_case13_server_binds_localhost_keeps_xsrf_and_limits_uploads(monkeypatch):
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert settings["address"] == "127.0.0.1"
    assert settings["enableXsrfProtection"] is True
    assert settings.get("enableCORS", True) is True  # turning CORS off would also weaken XSRF
    assert 1 <= settings["maxUploadSize"] <= 10  # MB: a photo of a digit, not a data dump
    assert settings["maxUploadSize"] * 1024 * 1024 == preprocess.MAX_BYTES  # the server-side check agrees
    makefile = (ROOT / "Makefile").read_text()
    assert "HOST    ?= 127.0.0.1" in makefile and "--server.address $(HOST)" in makefile

    # What Streamlit itself makes of the file, read the way `streamlit run` reads it (from the project folder).
    from streamlit import config

    monkeypatch.chdir(ROOT)
    config.get_config_options(force_reparse=True)
    try:
        assert config.get_option("server.address") == "127.0.0.1"
        assert config.get_option("server.enableXsrfProtection") is True
        assert config.get_option("server.enableCORS") is True
        assert config.get_option("server.maxUploadSize") == settings["maxUploadSize"]
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)


def test_case13_upload_check_runs_on_the_server_in_mnist_core():
    """The Draw page hands the uploaded bytes to mnist_core (server side); the browser's type filter is only a
    convenience. mnist_core checks content, so a renamed file is refused whatever the browser sent."""
    page = (ROOT / "dashboard" / "views" / "draw.py").read_text()
    assert "preprocess.image_to_mnist(upload.getvalue()" in page
    assert "import streamlit" not in "".join(p.read_text() for p in (ROOT / "mnist_core").glob("*.py"))
    with pytest.raises(preprocess.LabError, match="not a PNG"):
        preprocess.image_to_mnist(b"GIF89a-but-not-really" * 10, "digit.png")


# ---------- the CLI: every bad input is one line and exit 2 ----------


def _bad_inputs(tmp) -> dict[str, list]:
    (tmp / "notes.png").write_text("not an image")
    (tmp / "empty-dir").mkdir()
    (tmp / "spec.json").write_text(json.dumps({"kind": "mlp"}))
    return {
        # general
        "no-command": [],
        "unknown-command": ["frobnicate"],
        # models
        "models-unknown-action": ["models", "frob"],
        "models-list-extra-args": ["models", "list", "x"],
        "models-rename-one-name": ["models", "rename", "a"],
        "models-rename-missing": ["models", "rename", "nope", "new"],
        "models-delete-missing": ["models", "delete", "nope"],
        "models-delete-two": ["models", "delete", "a", "b"],
        "models-reimport-missing": ["models", "reimport", "nope"],
        # predict
        "predict-no-images": ["predict"],
        "predict-missing-file": ["predict", tmp / "missing.png"],
        "predict-not-an-image": ["predict", tmp / "notes.png"],
        "predict-folder-without-images": ["predict", tmp / "empty-dir"],
        "predict-missing-model": ["predict", tmp / "notes.png", "--model", "nope"],
        # test
        "test-no-models-flag": ["test"],
        "test-empty-models": ["test", "--models", " , "],
        "test-missing-model": ["test", "--models", "nope"],
        "test-bad-name": ["test", "--models", "../x"],
        # train
        "train-nothing-to-train": ["train"],
        "train-unknown-preset": ["train", "--preset", "nope"],
        "train-preset-and-spec": ["train", "--preset", "mlp-2x28", "--spec", tmp / "spec.json"],
        "train-epochs-not-a-number": ["train", "--preset", "mlp-2x28", "--epochs", "abc"],
        "train-learning-rate-text": ["train", "--preset", "mlp-2x28", "--learning-rate", "fast"],
        "train-missing-spec": ["train", "--spec", tmp / "missing.json"],
        "train-unwritable-events": ["train", "--preset", "mlp-2x28", "--name", "x", "--events",
                                    tmp / "no-such-dir" / "events.jsonl"],
        "train-unknown-flag": ["train", "--preset", "mlp-2x28", "--gpus", "8"],
    }


def _case_names() -> list[str]:
    with tempfile.TemporaryDirectory() as d:
        return list(_bad_inputs(Path(d)))


@pytest.mark.parametrize("case", _case_names())
def test_cli_bad_input_is_one_line_and_exit_2(capsys, registry_with, tmp_path, case):
    registry_with("a")
    argv = _bad_inputs(tmp_path)[case]
    assert_one_line_error(*run_cli(capsys, *argv)[::2])
    assert [e.name for e in registry.list_models()] == ["a"]  # nothing changed


def test_cli_test_with_unwritable_csv_is_one_line(capsys, registry_with, tmp_path):
    registry_with("a")
    assert_one_line_error(*run_cli(capsys, "test", "--models", "a", "--csv", tmp_path / "no-dir" / "out.csv")[::2],
                          contains="--csv")


def test_cli_process_answers_bad_input_in_one_line_without_tensorflow_noise(isolated_dirs):
    """The real processes: nothing from TensorFlow's start-up or a traceback reaches stderr."""
    for argv, contains in ((["models", "frob"], "invalid choice"),
                           (["test", "--models", "nope"], "no model named"),
                           (["train", "--preset", "mlp-2x28", "--learning-rate", "nan", "--name", "x"], "learning_rate")):
        proc = run_cli_process(*argv)
        assert_one_line_error(proc.returncode, proc.stderr, contains=contains)
