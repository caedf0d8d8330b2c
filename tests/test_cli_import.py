"""`python -m mnist_core models import`: a real subprocess import of a tf-keras .h5 that then lists, loads and
deletes like any model; bad files end in one line naming the file, exit code 2, and nothing saved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mnist_core import cli, registry
from tests import foreign_models

ROOT = Path(__file__).resolve().parent.parent


def run_main(capfd, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # pytest keeps its own Ctrl-C handling
    capfd.readouterr()
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def run_process(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_core", *argv], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def files(small_mnist, tmp_path_factory):
    """A trained tf-keras .h5 and an untrained tf-keras .json + weights pair to damage."""
    import tf_keras

    folder = tmp_path_factory.mktemp("cli_foreign")
    h5_path, _ = foreign_models.keras2_mlp_h5(folder, small_mnist, "unit", epochs=2)
    model = tf_keras.Sequential([tf_keras.layers.Flatten(input_shape=(28, 28)), tf_keras.layers.Dense(10)])
    (folder / "arch.json").write_text(model.to_json())
    model.save_weights(folder / "arch_weights.h5")
    return {"folder": folder, "h5": h5_path, "json": folder / "arch.json", "weights": folder / "arch_weights.h5"}


def test_import_list_load_delete_in_real_processes(files):
    imported = run_process("models", "import", str(files["h5"]), "--name", "foreign-mlp")
    assert imported.returncode == 0, imported.stderr[-2000:]
    lines = imported.stdout.splitlines()
    assert len(lines) == 1 and "Traceback" not in imported.stderr
    meta = registry.read_metadata("foreign-mlp")
    assert lines[0].startswith(f"imported foreign-mlp: test accuracy {meta['test']['accuracy']:.4f}")
    assert f"scaling {meta['import']['scaling']} (measured best)" in lines[0]
    assert meta["import"]["scaling"] == "unit" and meta["test"]["n"] == 10_000  # the full test set
    assert meta["provenance"]["files"][0]["sha256"] == registry.file_sha256(files["h5"])
    listed = run_process("models", "list", "--json")
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["foreign-mlp"]["status"] == "ok" and rows["foreign-mlp"]["type"] == "imported"
    assert rows["foreign-mlp"]["test_accuracy"] == meta["test"]["accuracy"]
    deleted = run_process("models", "delete", "foreign-mlp")
    assert deleted.returncode == 0 and not registry.exists("foreign-mlp")


def test_a_taken_name_is_refused_before_reading(files, registry_with, capfd, monkeypatch):
    registry_with("tiny")
    code, out, err = run_main(capfd, monkeypatch, "models", "import", str(files["h5"]), "--name", "tiny")
    assert code == 2 and not out
    assert err == "error: a model named 'tiny' already exists; pick another name\n"


def _zip_bomb(path: Path) -> None:
    """A .keras whose one weights member unpacks to 300 MiB of zeros (a few hundred KB on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        with zf.open("model.weights.h5", "w", force_zip64=True) as member:
            zeros = bytes(1 << 20)
            for _ in range(300):
                member.write(zeros)


def test_bad_files_are_one_line_and_exit_2(files, tmp_path, capfd, monkeypatch):
    not_a_model = tmp_path / "notes.h5"
    not_a_model.write_text("shopping list: eggs, milk\n" * 20)
    truncated = tmp_path / "truncated.h5"
    raw = files["h5"].read_bytes()
    truncated.write_bytes(raw[: len(raw) // 3])
    bomb = tmp_path / "bomb.keras"
    _zip_bomb(bomb)
    config = json.loads(files["json"].read_text())
    config["config"]["layers"][-1]["class_name"] = "FancyDense"
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps(config))
    config["config"]["layers"][-1]["class_name"] = "Dense"
    config["config"]["layers"][-1]["config"]["units"] = 12
    dense = config["config"]["layers"][-1]["config"]["name"]
    config["config"]["layers"][-1].pop("build_config", None)
    mismatch = tmp_path / "mismatch.json"
    mismatch.write_text(json.dumps(config))
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2, 3]")
    weights = ["--weights", str(files["weights"])]
    cases = [
        ([str(not_a_model)], "notes.h5: not a readable HDF5 (.h5) file"),
        ([str(truncated)], "truncated.h5: not a readable HDF5 (.h5) file (truncated or not an .h5)"),
        ([str(bomb)], "bomb.keras: refusing to load: model.weights.h5 unpacks to 314,572,800 bytes, over the limit"),
        ([str(unknown), *weights], "unknown.json: refusing to import: config contains 'FancyDense'"),
        ([str(mismatch), *weights], f"arch_weights.h5: layer {dense!r} weights have shapes [(784, 10), (10,)], the "
                                    "architecture needs [(784, 12), (12,)]"),
        ([str(files["json"])], "arch.json: an architecture .json holds no weights; give the .h5 that "
                               "save_weights wrote with it (--weights W.h5)"),
        ([str(listing), *weights], "list.json: not a Keras model architecture"),
        ([str(files["h5"]), *weights], "mlp_unit.h5: --weights goes with an architecture .json only"),
        ([str(tmp_path / "missing.keras")], "missing.keras: no such model file"),
    ]
    for args, expected in cases:
        code, out, err = run_main(capfd, monkeypatch, "models", "import", *args, "--name", "bad")
        assert code == 2, (args, err)
        assert not out and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"error: {expected}"), (expected, err)
    assert not registry.exists("bad")


def test_usage_errors(files, capfd, monkeypatch):
    code, _, err = run_main(capfd, monkeypatch, "models", "import", str(files["h5"]))
    assert code == 2 and "--name NAME is required" in err
    code, _, err = run_main(capfd, monkeypatch, "models", "import", str(files["h5"]), "--name", "x",
                            "--scaling", "cubic")
    assert code == 2 and err.startswith("error: unknown scaling 'cubic'; use one of: unit, byte")
    code, _, err = run_main(capfd, monkeypatch, "models", "rescale", "nobody", "--scaling", "unit")
    assert code == 2 and err.count("\n") == 1
