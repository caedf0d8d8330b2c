"""`python -m mnist_core` as a user runs it: a real subprocess, its stdout, stderr and exit code."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_core import registry

ROOT = Path(__file__).resolve().parent.parent
SEVEN_PNG = Path(__file__).parent / "fixtures" / "first_test_digit_7.png"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_core", *args], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, exactly one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def digit_files(tmp_path, small_mnist) -> Path:
    """A folder of real test digits as a user would have them: dark on white, several formats."""
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, fmt in [(1, "png"), (2, "jpg"), (3, "bmp")]:  # labels 2, 1, 0
        big = Image.fromarray(255 - small_mnist.x_test[i]).resize((140, 140), Image.Resampling.BILINEAR)
        big.save(folder / f"digit{i}.{fmt}")
    (folder / "notes.txt").write_text("not an image, and the folder scan skips it")
    return folder


def test_download_verifies_caches_and_is_a_quick_no_op_the_second_time(tmp_path, monkeypatch):
    from mnist_core import data

    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_DATA", str(ROOT / "data" / "mnist.npz"))  # stands in for a download
    first = run_cli("download")
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.startswith(f"source: path {ROOT / 'data' / 'mnist.npz'}  (")
    sums = [line.split() for line in first.stdout.splitlines() if line.startswith("sha256 ")]
    assert {name: digest for _, digest, name in sums} == data.SHA256
    assert (tmp_path / "cache" / "mnist.npz").is_file()

    monkeypatch.delenv("MNIST_DATA")
    second = run_cli("download")
    assert second.returncode == 0 and second.stdout.startswith("source: cache  (")
    seconds = float(second.stdout.split("(")[1].split(" s)")[0])
    assert seconds < 1.0
    assert second.stdout.splitlines()[2:] == first.stdout.splitlines()[2:]


def test_a_wrong_data_path_is_a_user_error_not_a_quiet_switch_to_the_cache(tmp_path):
    cache = ROOT / "data" / "mnist.npz"
    before = cache.stat().st_mtime_ns
    result = run_cli("download", "--data", str(tmp_path / "typo"))
    assert_user_error(result, f"MNIST at {tmp_path / 'typo'} (from --data or MNIST_DATA) is unusable")
    assert cache.stat().st_mtime_ns == before  # the good cache is left alone


def test_models_table_and_json(registry_with, isolated_dirs):
    registry_with("alpha", "beta", default=True)
    (isolated_dirs / "gamma").mkdir()  # a folder without a model: broken
    table = run_cli("models")
    assert table.returncode == 0 and table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].split()[:5] == ["name", "status", "type", "parameters", "test_accuracy"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"alpha", "beta", "default", "gamma"}
    meta = registry.read_metadata("default")
    assert rows["default"].split()[1:5] == ["ok", "cnn", str(meta["parameters"]), f"{meta['test']['accuracy']:.4f}"]
    assert "broken" in rows["gamma"] and "no model.keras in the folder" in rows["gamma"]

    listed = json.loads(run_cli("models", "--json").stdout)
    by_name = {r["name"]: r for r in listed}
    assert set(by_name) == {"alpha", "beta", "default", "gamma"}
    assert by_name["default"]["test_accuracy"] == meta["test"]["accuracy"]
    assert by_name["default"]["parameters"] == meta["parameters"] and by_name["default"]["status"] == "ok"
    assert by_name["gamma"] == {**by_name["gamma"], "status": "broken", "reason": "no model.keras in the folder"}
    assert set(by_name["alpha"]) >= {"name", "status", "type", "parameters", "test_accuracy", "test_loss",
                                     "epochs", "train_seconds", "created", "reason"}


def test_models_rename_and_delete(registry_with, isolated_dirs):
    registry_with("alpha", "beta")
    before = {p.name: p.read_bytes() for p in (isolated_dirs / "beta").iterdir()}
    result = run_cli("models", "rename", "alpha", "beta")
    assert_user_error(result, "a model named 'beta' already exists; rename refuses to overwrite")
    assert {p.name: p.read_bytes() for p in (isolated_dirs / "beta").iterdir()} == before

    result = run_cli("models", "rename", "alpha", "gamma")
    assert result.returncode == 0 and result.stdout.strip() == "renamed alpha -> gamma"
    assert sorted(e.name for e in registry.list_models()) == ["beta", "gamma"]
    assert registry.read_metadata("gamma")["name"] == "gamma"

    result = run_cli("models", "delete", "gamma")
    assert result.returncode == 0 and result.stdout.strip() == "deleted gamma"
    assert [e.name for e in registry.list_models()] == ["beta"]
    assert_user_error(run_cli("models", "delete", "gamma"), "no model named 'gamma'")
    assert_user_error(run_cli("models", "delete", "../beta"), "bad model name '../beta'")
    assert_user_error(run_cli("models", "rename", "beta", "CON"), "bad model name 'CON'")
    assert (isolated_dirs / "beta").is_dir()


def test_test_command_agrees_with_metadata_and_writes_csv(registry_with, tmp_path, full_mnist):
    registry_with(default=True)
    registry.save("default-copy", registry.load("default"), registry.read_metadata("default"))
    out = tmp_path / "scores.csv"
    result = run_cli("test", "--models", "default,default-copy", "--csv", str(out), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["default", "default-copy"]
    stored = registry.read_metadata("default")["test"]
    for row in rows:
        assert set(row) == {"model", "test_loss", "test_accuracy", "stored_accuracy", "macro_f1"}
        assert abs(row["test_accuracy"] - stored["accuracy"]) * 100 <= 0.1
        assert abs(row["test_loss"] - stored["loss"]) < 0.01
        assert row["stored_accuracy"] == stored["accuracy"]
    with open(out, newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [r["model"] for r in written] == ["default", "default-copy"]
    assert [float(r["test_accuracy"]) for r in written] == [r["test_accuracy"] for r in rows]


def test_predict_files_and_folder(registry_with, digit_files):
    registry_with(default=True)
    result = run_cli("predict", str(digit_files), str(SEVEN_PNG))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 4  # one line per image, the .txt in the folder skipped
    got = {line.split(": ")[0]: int(line.split(": ")[1].split()[0]) for line in lines}
    assert got == {str(digit_files / "digit1.png"): 2, str(digit_files / "digit2.jpg"): 1,
                   str(digit_files / "digit3.bmp"): 0, str(SEVEN_PNG): 7}
    for line in lines:
        probs = [float(p.split(":")[1]) for p in line.split("(")[1].rstrip(")").split()]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 0.01


def test_predict_json_schema(registry_with):
    registry_with(default=True)
    result = run_cli("predict", str(SEVEN_PNG), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    items = json.loads(result.stdout)
    assert isinstance(items, list) and len(items) == 1
    item = items[0]
    assert set(item) == {"file", "prediction", "probabilities"}
    assert item["file"] == str(SEVEN_PNG) and item["prediction"] == 7
    probs = np.array(item["probabilities"])
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-4 and probs.argmax() == 7


def _bad_input_cases(tmp_path: Path) -> dict[tuple[str, ...], list[str]]:
    not_image = tmp_path / "digit.png"
    not_image.write_text("this is not a png")
    blank = tmp_path / "blank.png"
    Image.new("L", (100, 100), 255).save(blank)
    bad_json = tmp_path / "spec.json"
    bad_json.write_text('{"kind": "mlp", "dense_layers": [{"units": -5}]}')
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{"kind": "mlp",')
    empty_folder = tmp_path / "nothing-here"
    empty_folder.mkdir()
    (empty_folder / "readme.txt").write_text("no images")
    return {
        ("train", "--preset", "nope"): ["unknown preset 'nope'; choose from"],
        ("train", "--preset", "mlp-2x128", "--name", "../escape"): ["bad model name '../escape'"],
        ("train", "--preset", "mlp-2x128", "--name", "alpha"): ["a model named 'alpha' already exists"],
        ("train", "--preset", "mlp-2x128", "--epochs", "0"): ["epochs must be a whole number in [1, 1000], got 0"],
        ("train", "--spec", str(bad_json)): ["dense_layers[0].units must be a whole number in [1, 8192], got -5"],
        ("train", "--spec", str(broken_json)): ["broken.json: not valid JSON"],
        ("train", "--spec", str(tmp_path / "missing.json")): ["missing.json: no such file"],
        ("predict", str(tmp_path / "missing.png")): ["missing.png: no such file or folder"],
        ("predict", str(not_image)): ["digit.png: not a PNG, JPEG, BMP or GIF image"],
        ("predict", str(blank)): ["blank.png: no digit found"],
        ("predict", str(SEVEN_PNG), "--model", "ghost"): ["no model named 'ghost'"],
        ("predict", str(SEVEN_PNG), "--model", "../../etc"): ["bad model name"],
        ("test", "--models", "alpha,ghost"): ["no model named 'ghost'"],
        ("test", "--models", ","): ["--models needs at least one model name"],
        ("models", "rename", "alpha"): ["usage: models rename OLD NEW"],
        ("frobnicate",): ["invalid choice"],
        ("predict", str(empty_folder)): ["no PNG, JPEG, BMP or GIF files in this folder"],
    }


# The list runs as real processes (TensorFlow's start-up logs included); the other cases go
# through the same main() in this process, because every TensorFlow start costs seconds of CPU.
AS_PROCESS = ("unknown preset", "bad model name '../escape'", "missing.png", "not a PNG", "ghost'", "units must")


def test_bad_inputs_exit_2_with_one_line(registry_with, tmp_path, capfd):
    from mnist_core import cli

    registry_with("alpha")
    cases = _bad_input_cases(tmp_path)
    chosen = [args for args, fragments in cases.items()
              if args[0] != "test" and any(key in f for key in AS_PROCESS for f in fragments)]
    assert len(chosen) == len(AS_PROCESS)
    with ThreadPoolExecutor(3) as pool:
        for args, result in zip(chosen, pool.map(lambda a: run_cli(*a), chosen), strict=True):
            assert_user_error(result, *cases[args])
    for args, fragments in cases.items():
        if args in chosen:
            continue
        capfd.readouterr()
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse errors leave through sys.exit
            code = exc.code
        out, err = capfd.readouterr()
        assert_user_error(subprocess.CompletedProcess(args, code, out, err), *fragments)
    assert sorted(e.name for e in registry.list_models()) == ["alpha"]  # nothing was written


# ---------- what every long command shares: job flags, the stop checker, the one event writer ----------


JOB_FLAGS = ["--name", "N", "--events", "/tmp/e.jsonl", "--stop-file", "/tmp/stop", "--job-id", "J"]


@pytest.mark.parametrize("argv", [
    ["train", "--spec", "s.json", "--config", "c.json", *JOB_FLAGS],
    ["finetune", "--parent", "default", "--epochs", "2", *JOB_FLAGS],
    ["explore", "--study", "S", "--trials", "4", "--workers", "2", "--sampler", "grid", "--train-limit", "2000",
     "--train-epochs", "1", "--space", "sp.json", *JOB_FLAGS],
    ["explore", "--study", "S", "--save-best", "MODEL", "--train-limit", "2000", *JOB_FLAGS],
])
def test_the_command_lines_jobs_build_parse(argv):
    from mnist_core import cli

    args = cli.make_parser().parse_args(argv)
    assert (args.name, args.events, args.stop_file, args.job_id) == ("N", "/tmp/e.jsonl", "/tmp/stop", "J")
    assert callable(args.run)


def test_patience_is_a_train_override_like_epochs(tmp_path):
    result = run_cli("train", "--preset", "fast-cnn", "--patience", "3", "--epochs", "7", "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads(result.stdout[result.stdout.index("{\n  \"optimizer\""):])
    assert (config["patience"], config["epochs"]) == (3, 7)


@pytest.fixture
def own_signals():
    """stop_checker installs SIGTERM/SIGINT handlers; give pytest its own back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@pytest.mark.parametrize(("text", "keep"), [("keep", True), ("  keep\n", True), ("", False), ("discard", False),
                                            ("keep it", False), ("keep" + "\n" * 200, False)])
def test_the_stop_file_text_says_keep_or_discard(tmp_path, own_signals, text, keep):
    from mnist_core.cli.common import stop_checker

    stop = tmp_path / "stop"
    should_stop, keep_on_stop = stop_checker(str(stop))
    assert not should_stop() and not keep_on_stop()
    stop.write_text(text)
    assert should_stop() and keep_on_stop() is keep


def test_a_signal_stops_and_discards(tmp_path, own_signals):
    from mnist_core.cli.common import stop_checker

    should_stop, keep_on_stop = stop_checker(str(tmp_path / "never-written"))
    assert not should_stop()
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs in this (main) thread before the next line
    assert should_stop() and not keep_on_stop()


def run_main(capfd, monkeypatch, *argv: str) -> tuple[int, str, str]:
    """cli.main in this process (pytest keeps its own Ctrl-C handling): exit code, stdout, stderr."""
    from mnist_core import cli

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    capfd.readouterr()
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def events_in(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"kind": "mlp", "dense_layers": [{"units": 16}]}))
    return path


def test_a_failed_command_writes_one_failed_event_with_one_line(tmp_path, capfd, monkeypatch, tiny_spec):
    from mnist_core import train

    cases = [  # (argv, exit code, message) failing at different points of different commands
        (["train", "--spec", str(tiny_spec), "--data", str(tmp_path / "nowhere")], 2, "unusable"),
        (["finetune", "--parent", "ghost"], 2, "no model named 'ghost'"),
        (["explore", "--study", "x", "--dropout", "0.2,2"], 2, "dropout=2.0"),
        (["train", "--spec", str(tiny_spec), "--name", "boom"], 1, "disk on fire"),
    ]

    def crash(*args, **kwargs):  # a bug deep inside training, with a two-line message
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(train, "train_and_save", crash)
    for i, (argv, code, message) in enumerate(cases):
        events = tmp_path / f"events{i}.jsonl"
        got, out, err = run_main(capfd, monkeypatch, *argv, "--events", str(events))
        assert got == code, (argv, err)
        assert len(err.splitlines()) == 1 and message in err, err  # main prints it once; the writer never does
        failed = [e for e in events_in(events) if e["event"] == "failed"]
        assert len(failed) == 1, events_in(events)
        assert message in failed[0]["message"] and "\n" not in failed[0]["message"]


@pytest.mark.parametrize(("text", "code", "kept"), [("keep", 0, True), ("", 3, False)])
def test_stop_file_keep_saves_the_best_epoch_and_empty_discards(tmp_path, capfd, monkeypatch, small_mnist,
                                                                 tiny_spec, text, code, kept):
    import threading

    from mnist_core import data

    monkeypatch.setattr(data, "load", lambda *a, **k: small_mnist)
    events, stop = tmp_path / "events.jsonl", tmp_path / "stop"

    def stop_after_the_first_epoch():  # as the job panel's Stop does, once an epoch has finished
        while not any(e["event"] == "epoch" for e in events_in(events)):
            time.sleep(0.02)
        stop.write_text(text)

    watcher = threading.Thread(target=stop_after_the_first_epoch, daemon=True)
    watcher.start()
    got, _, err = run_main(capfd, monkeypatch, "train", "--spec", str(tiny_spec), "--epochs", "200",
                           "--batch-size", "16", "--name", "halted", "--events", str(events), "--stop-file",
                           str(stop), "--quiet")
    watcher.join(5)
    assert got == code, err
    final = events_in(events)[-1]
    assert registry.exists("halted") is kept
    if kept:
        meta = registry.read_metadata("halted")
        assert meta["stopped_early"]["best_epoch"] >= 1 and meta["stopped_early"]["at_epoch"] < 200
        assert final["event"] == "done" and final["stopped_early"]
    else:
        assert final["event"] == "stopped"
    assert not [e for e in events_in(events) if e["event"] == "failed"]
