"""`python -m mnist_core models export`: one line of results, and one-line errors with exit code 2 that name
the model or the file, made before any work starts (nothing written)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest

from mnist_core import cli, registry

ROOT = Path(__file__).resolve().parent.parent


def run_main(capfd, monkeypatch, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # pytest keeps its own Ctrl-C handling
    capfd.readouterr()
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


@pytest.fixture
def out_dir(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


def test_a_user_exports_to_onnx_and_gets_one_line(registry_with, out_dir):
    registry_with("tiny")
    out = out_dir / "tiny.onnx"
    result = subprocess.run([sys.executable, "-m", "mnist_core", "models", "export", "tiny", "--format", "onnx",
                             "--out", str(out), "--images", "300", "--latency-calls", "5"],
                            cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert "Traceback" not in result.stderr
    described = json.loads(Path(str(out) + ".input.json").read_text())
    parity, latency = described["parity"], described["latency"]
    assert f"same digit on {parity['agreement']:.2%} of 300 test images (parity ok)" in lines[0]
    assert f"max probability difference {parity['max_abs_prob_diff']:.2e}" in lines[0]
    assert f"single-image latency {latency['median_ms']:.3f} ms" in lines[0]
    assert str(out) in lines[0] and str(out) + ".input.json" in lines[0]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape[-1] == 10


def test_json_output_is_the_input_description_plus_paths(registry_with, out_dir, capfd, monkeypatch, small_mnist):
    from mnist_core import data

    monkeypatch.setattr(data, "load", lambda *a, **k: small_mnist)
    registry_with("tiny")
    out = out_dir / "tiny.keras"
    code, stdout, _ = run_main(capfd, monkeypatch, "models", "export", "tiny", "--format", "keras", "--out",
                               str(out), "--images", "50", "--latency-calls", "2", "--json")
    assert code == 0
    printed = json.loads(stdout)
    written = json.loads(Path(printed["input_json"]).read_text())
    assert {k: printed[k] for k in written} == written
    assert printed["metadata_json"] == str(out) + ".metadata.json"
    assert printed["source"]["model_sha256"] == registry.read_metadata("tiny")["model_sha256"]


def test_the_default_out_path_is_the_name_in_the_working_folder(registry_with, out_dir, capfd, monkeypatch,
                                                                small_mnist):
    from mnist_core import data

    monkeypatch.setattr(data, "load", lambda *a, **k: small_mnist)
    monkeypatch.chdir(out_dir)
    registry_with("tiny")
    code, stdout, _ = run_main(capfd, monkeypatch, "models", "export", "tiny", "--format", "keras",
                               "--images", "20", "--latency-calls", "1")
    assert code == 0, stdout
    assert sorted(os.listdir(out_dir)) == ["tiny.keras", "tiny.keras.input.json", "tiny.keras.metadata.json"]


def test_a_parity_failure_exits_1_and_says_so(registry_with, out_dir, capfd, monkeypatch, small_mnist):
    import numpy as np

    from mnist_core import data
    from mnist_core.interop import runtimes

    class Shuffled(runtimes.KerasRuntime):
        def outputs(self, x):
            return np.roll(super().outputs(x), 3, axis=1)

    monkeypatch.setattr(data, "load", lambda *a, **k: small_mnist)
    monkeypatch.setitem(runtimes.RUNTIMES, "keras", Shuffled)
    registry_with("tiny")
    code, stdout, _ = run_main(capfd, monkeypatch, "models", "export", "tiny", "--format", "keras", "--out",
                               str(out_dir / "t.keras"), "--images", "50", "--latency-calls", "1")
    assert code == 1
    assert "PARITY FAILED (needs 99.9%)" in stdout and len(stdout.splitlines()) == 1


def _taken(out_dir: Path) -> str:
    (out_dir / "taken.onnx").write_bytes(b"mine")
    return str(out_dir / "taken.onnx")


def _modified(folder: Path) -> None:
    with open(folder / "tiny" / "model.keras", "ab") as fh:
        fh.write(b"\0")


@pytest.mark.parametrize(("args", "fragments"), [
    (["nope", "--format", "onnx"], ["no model named 'nope'"]),
    (["../etc", "--format", "onnx"], ["bad model name '../etc'"]),
    (["tiny"], ["models export tiny: --format is required"]),
    (["tiny", "--format", "pdf"], ["unknown export format 'pdf'", "keras, onnx, tflite"]),
    (["tiny", "--format", "onnx", "--out", "{out}/tiny.tflite"], ["tiny.tflite: an export to onnx", ".onnx"]),
    (["tiny", "--format", "tflite", "--out", "{out}/missing/tiny.tflite"], ["missing", "is not an existing folder"]),
    (["tiny", "--format", "onnx", "--out", "{out}/file.txt/tiny.onnx"], ["file.txt", "is not an existing folder"]),
    (["tiny", "--format", "onnx", "--out", "{taken}"], ["taken.onnx: already exists", "--overwrite"]),
    (["tiny", "--format", "onnx", "--out", "{out}/folder.onnx"], ["folder.onnx: is a folder"]),
    (["tiny", "--format", "onnx", "--out", "{out}/t.onnx", "--images", "0"], ["parity images must be 1 to 10,000"]),
    (["tiny", "--format", "onnx", "--out", "{out}/t.onnx", "--images", "x"], ["--images", "invalid int"]),
    (["tiny", "--format", "onnx", "--out", "{out}/t.onnx", "--latency-calls", "5001"],
     ["latency calls must be 1 to 5,000"]),
    (["tiny", "extra", "--format", "onnx"], ["usage: models export NAME"]),
    (["{modified}", "--format", "keras", "--out", "{out}/t.keras"], ["cannot export 'tiny'", "modified outside"]),
])
def test_bad_requests_exit_2_with_one_line_and_write_nothing(args, fragments, registry_with, out_dir, capfd,
                                                             monkeypatch):
    folder = registry_with("tiny")
    (out_dir / "file.txt").write_text("a file, not a folder")
    (out_dir / "folder.onnx").mkdir()
    before = sorted(os.listdir(out_dir))
    taken = _taken(out_dir) if "{taken}" in args else ""
    if "{modified}" in args:
        _modified(folder)
    argv = [a.format(out=out_dir, taken=taken, modified="tiny") for a in args]
    try:
        code, stdout, stderr = run_main(capfd, monkeypatch, "models", "export", *argv)
    except SystemExit as exit_:  # argparse's own refusals (LabParser.error) exit before main() returns
        code, (stdout, stderr) = exit_.code, capfd.readouterr()
    assert code == 2, (stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert sorted(os.listdir(out_dir)) == sorted(before + (["taken.onnx"] if taken else []))
