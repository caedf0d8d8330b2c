"""Issue 5, cases 1-5: model files. A crafted model never runs, only the lab's own files load,
broken entries are listed as broken, saving never destroys a good model, and names cannot escape."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_util import (
    BROKEN,
    ROOT,
    SHIPPED_DEFAULT,
    assert_one_line_error,
    break_entries,
    run_cli,
    run_cli_process,
    sha256,
    snapshot,
    temp_leftovers,
    write_lab_folder,
)

from mnist_core import keras_config, registry
from mnist_core.errors import LabError
from mnist_core.interop.reimport import reimport
from mnist_core.predict import Predictor

WORKER = Path(__file__).parent / "save_worker.py"


@pytest.fixture
def image_file(tmp_path, digit_png):
    path = tmp_path / "digit.png"
    path.write_bytes(digit_png)
    return path


def assert_refused_everywhere(capsys, name: str, image_file: Path, *, status: str, reason: str) -> None:
    entry = {e.name: e for e in registry.list_models()}[name]
    assert (entry.status, entry.ok) == (status, False)
    assert re.search(reason, entry.reason), entry.reason
    with pytest.raises(LabError):
        registry.load(name)
    with pytest.raises(LabError):
        Predictor.load(name)
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and name in out and status in out, out
    assert_one_line_error(*run_cli(capsys, "predict", image_file, "--model", name)[::2], contains=name)
    assert_one_line_error(*run_cli(capsys, "test", "--models", name)[::2], contains=name)


# ---------- case 1: a crafted model is never run ----------


def test_case01_payload_is_live_without_the_protections(payloads, marker):
    """Proof that the payload is real: Keras with safe mode off (here, in the test only) runs it."""
    import keras

    keras.saving.load_model(payloads["files"]["lambda"], safe_mode=False)
    assert marker.exists()
    marker.unlink()


def test_case01_crafted_lambda_with_fresh_metadata_is_refused(capsys, isolated_dirs, payloads, marker, image_file):
    write_lab_folder(isolated_dirs, "evil", payloads["files"]["lambda"])  # checksum matches: it is not what saves us
    assert_refused_everywhere(capsys, "evil", image_file, status="unsafe", reason="Lambda")
    with pytest.raises(LabError, match="refusing"):
        reimport("evil")


def test_case01_crafted_lambda_dropped_in_as_a_bare_file_is_refused(capsys, isolated_dirs, payloads, marker,
                                                                    image_file):
    shutil.copyfile(payloads["files"]["lambda"], isolated_dirs / "evil.keras")
    (isolated_dirs / "evil2").mkdir()
    shutil.copyfile(payloads["files"]["lambda"], isolated_dirs / "evil2" / "model.keras")
    entries = {e.name: e for e in registry.list_models()}
    assert entries["evil.keras"].status == "foreign"
    with pytest.raises(LabError):
        registry.load("evil.keras")
    assert_refused_everywhere(capsys, "evil2", image_file, status="broken", reason="metadata.json is missing")
    assert_one_line_error(*run_cli(capsys, "predict", image_file, "--model", "evil.keras")[::2], contains="bad model name")


@pytest.mark.parametrize("payload", ["module", "os.system", "builtins.exec", "keras.utils.get_file"])
def test_case01_config_naming_a_module_function_is_refused(capsys, isolated_dirs, payloads, marker, image_file,
                                                           payload):
    write_lab_folder(isolated_dirs, "evil", payloads["files"][payload])
    assert_refused_everywhere(capsys, "evil", image_file, status="unsafe", reason="refusing to load|module")


def test_case01_keras_safe_mode_still_refuses_if_the_lab_check_is_bypassed(isolated_dirs, payloads, marker,
                                                                           monkeypatch):
    """Defence in depth: with the lab's config check switched off, Keras's safe_mode still refuses the bytecode."""
    write_lab_folder(isolated_dirs, "evil", payloads["files"]["lambda"])
    monkeypatch.setattr(keras_config, "check_plain_keras", lambda path: None)
    assert registry.inspect("evil").ok  # only the checksum is left, and it matches
    with pytest.raises(LabError, match="cannot load"):
        registry.load("evil")


def test_case01_cli_process_refuses_crafted_models(isolated_dirs, payloads, marker, image_file):
    """The real CLI process (one: TensorFlow's start-up is the slow part), with the payload module importable
    too: one line, exit 2, no marker. The module-function archives are refused the same way in-process above."""
    write_lab_folder(isolated_dirs, "evil", payloads["files"]["lambda"])
    env = {"PYTHONPATH": f"{payloads['pythonpath']}{os.pathsep}{ROOT}"}
    proc = run_cli_process("predict", image_file, "--model", "evil", env=env)
    assert_one_line_error(proc.returncode, proc.stderr, contains="refusing")


def test_case01_code_never_enables_unsafe_loading():
    """No unsafe deserialisation, no safe_mode=False, no model_from_json and no Keras .h5 loading anywhere outside
    the tests. Only the importer's reader (interop/sources.py) opens .h5 files, as plain arrays through h5py."""
    forbidden = re.compile(r"enable_unsafe_deserialization|safe_mode\s*=\s*(?!True\b)|model_from_json|"
                           r"load_weights\(|ImageFile\.LOAD_TRUNCATED_IMAGES|MAX_IMAGE_PIXELS\s*=")
    h5_reading = re.compile(r"h5py|load_model\([^)]*\.h5")
    h5_reader = ROOT / "mnist_core" / "interop" / "sources.py"
    sources = [p for d in ("mnist_core", "dashboard", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    assert len(sources) > 10 and h5_reader in sources
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in sources
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if forbidden.search(line) or (p != h5_reader and h5_reading.search(line))]
    assert not hits, hits
    assert "safe_mode=True" in (ROOT / "mnist_core" / "registry.py").read_text()
    reader = h5_reader.read_text()
    assert "h5py.File(path, \"r\")" in reader  # read-only arrays
    assert all("keras_file" in line for line in reader.splitlines() if "load_model(" in line)  # only a .keras


def test_case01_every_model_the_lab_builds_passes_the_safe_config_check(isolated_dirs):
    """The allow-list is tight, but never refuses a model the lab itself builds: every preset, every
    optimizer and schedule, every activation and pooling."""
    import keras

    from mnist_core import spec as specs
    from mnist_core.build import build
    from mnist_core.train import compile_model

    every_kind = specs.ModelSpec(kind="cnn", conv_blocks=[
        specs.ConvBlock(8, 3, activation=a, padding="same", pooling=p, batch_norm=True, dropout=0.1)
        for a, p in zip(specs.ACTIVATIONS[:3], specs.POOLINGS, strict=True)],
        dense_layers=[specs.DenseLayer(8, a, 0.1) for a in specs.ACTIVATIONS])
    cases = [(p.spec, p.config) for p in specs.PRESETS.values()]
    schedules = specs.SCHEDULES * 2
    cases += [(every_kind, specs.TrainConfig(optimizer=o, schedule=s)) for o, s in zip(specs.OPTIMIZERS, schedules, strict=False)]
    for i, (spec, config) in enumerate(cases):
        model = build(spec)
        compile_model(model, config, 10)
        model.save(isolated_dirs / f"{i}.keras")
        keras_config.check_plain_keras(isolated_dirs / f"{i}.keras")
        keras.backend.clear_session()


# ---------- case 2: only models the lab wrote itself are loaded ----------


def test_case02_model_modified_outside_the_lab_is_listed_and_not_loaded(capsys, registry_with, image_file):
    models = registry_with("m")
    shutil.copyfile(SHIPPED_DEFAULT / "model.keras", models / "m" / "model.keras")  # valid, but not what the lab wrote
    entry = registry.inspect("m")
    assert entry.status == "modified" and "modified outside the lab" in entry.reason
    with pytest.raises(LabError, match="modified outside the lab"):
        Predictor.load("m")
    assert_one_line_error(*run_cli(capsys, "predict", image_file, "--model", "m")[::2], contains="modified outside")


def test_case02_explicit_reimport_rechecks_and_records_the_checksum(capsys, registry_with, image_file, digit):
    models = registry_with("m")
    shutil.copyfile(SHIPPED_DEFAULT / "model.keras", models / "m" / "model.keras")
    code, out, err = run_cli(capsys, "models", "reimport", "m")
    assert code == 0, err
    meta = registry.read_metadata("m")
    assert meta["model_sha256"] == sha256(models / "m" / "model.keras")
    # The stored metrics were measured again on the 10,000 test images: they are the default model's now.
    assert meta["test"]["n"] == 10000
    assert abs(meta["test"]["accuracy"] - json.loads((SHIPPED_DEFAULT / "metadata.json").read_text())["test"]["accuracy"]) < 1e-9
    assert registry.inspect("m").ok
    code, out, err = run_cli(capsys, "predict", image_file, "--model", "m")
    assert code == 0 and out.split(": ")[1].startswith(str(digit[1])), (out, err)


def test_case02_reimport_refuses_an_unsafe_archive(capsys, registry_with, payloads, marker):
    models = registry_with("m")
    shutil.copyfile(payloads["files"]["lambda"], models / "m" / "model.keras")
    before = snapshot(models / "m")
    assert_one_line_error(*run_cli(capsys, "models", "reimport", "m")[::2], contains="refusing")
    assert snapshot(models / "m") == before
    assert registry.inspect("m").status == "modified"


def test_case02_files_that_are_not_lab_folders_are_foreign_and_ignored(capsys, registry_with):
    models = registry_with("good")
    (models / "notes.txt").write_text("hello")
    (models / "bad name").mkdir()
    (models / "Straße").mkdir()
    shutil.copyfile(models / "good" / "model.keras", models / "stray.keras")
    entries = {e.name: e for e in registry.list_models()}
    assert {n: e.status for n, e in entries.items()} == {
        "good": "ok", "notes.txt": "foreign", "bad name": "foreign", "Straße": "foreign", "stray.keras": "foreign"}
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "foreign" in out
    Predictor.load("good")


# ---------- case 3: broken entries are listed as broken, the rest keep working ----------


@pytest.mark.parametrize("broken", BROKEN)
def test_case03_broken_entry_is_listed_with_its_reason(capsys, registry_with, image_file, broken):
    models = registry_with(*BROKEN)
    reasons = break_entries(models)
    entry = {e.name: e for e in registry.list_models()}[broken]
    assert entry.status == "broken" and reasons[broken] in entry.reason
    code, out, _ = run_cli(capsys, "models")
    row = next(line for line in out.splitlines() if line.startswith(broken + " "))
    assert code == 0 and "broken" in row and reasons[broken] in row
    assert_one_line_error(*run_cli(capsys, "predict", image_file, "--model", broken)[::2], contains=broken)
    assert_one_line_error(*run_cli(capsys, "test", "--models", broken)[::2], contains=broken)


def test_case03_other_models_still_list_compare_and_predict(capsys, registry_with, image_file, digit):
    models = registry_with("good", *BROKEN, default=True)
    break_entries(models)
    code, out, err = run_cli(capsys, "models", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["good"]["status"] == "ok" and rows["default"]["status"] == "ok"
    code, out, err = run_cli(capsys, "predict", image_file, "--model", "default")
    assert code == 0 and out.split(": ")[1].startswith(str(digit[1])), (out, err)
    code, out, err = run_cli(capsys, "test", "--models", "good,default", "--json")
    assert code == 0, err
    assert [r["model"] for r in json.loads(out)] == ["good", "default"]


def test_case03_hostile_metadata_never_hangs_or_crashes_the_listing(capsys, registry_with):
    models = registry_with("good", "fifo", "huge", "deep", "bigint", "array")
    (models / "fifo" / "metadata.json").unlink()
    os.mkfifo(models / "fifo" / "metadata.json")  # reading it would block the listing forever
    with open(models / "huge" / "metadata.json", "wb") as fh:
        fh.truncate(1024**3)  # 1 GB, sparse
    (models / "deep" / "metadata.json").write_text("[" * 100000)
    (models / "bigint" / "metadata.json").write_text('{"test": ' + "9" * 5000 + "}")
    (models / "array" / "metadata.json").write_text("[1, 2, 3]")
    statuses = {e.name: (e.status, e.reason) for e in registry.list_models()}
    assert statuses.pop("good") == ("ok", "")
    assert {n: s for n, (s, _) in statuses.items()} == dict.fromkeys(statuses, "broken"), statuses
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and err == ""


# ---------- case 4: saving never destroys a good model ----------


def _worker(mode: str, signal_dir: Path, seed: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), mode, str(signal_dir), str(seed)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def _kill_when_blocked(proc: subprocess.Popen, signal_dir: Path, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while not (signal_dir / "blocked").exists():
        assert proc.poll() is None, f"worker ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "worker never reached the save"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # reaped, so its pid is gone for good


def test_case04_failing_weight_writer_leaves_the_existing_model_intact(registry_with, monkeypatch, tiny_trained):
    from keras.src.saving import saving_lib

    models = registry_with("keep")
    before = snapshot(models / "keep")
    model = registry.load("keep")

    def broken_writer(self, key, value):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(saving_lib.H5IOStore, "__setitem__", broken_writer)
    for name, overwrite in (("keep", True), ("fresh", False)):
        with pytest.raises(OSError, match="disk full"):
            registry.save(name, model, {}, overwrite=overwrite)
    assert snapshot(models / "keep") == before
    assert not (models / "fresh").exists()
    assert temp_leftovers(models) == []
    assert [e.name for e in registry.list_models()] == ["keep"]


def test_case04_sigkill_while_the_training_process_saves(registry_with, tmp_path):
    models = registry_with("keep")
    before = snapshot(models / "keep")
    (tmp_path / "spec.json").write_text(json.dumps({"kind": "mlp", "dense_layers": [{"units": 8}]}))
    _kill_when_blocked(_worker("train-kill", tmp_path), tmp_path)
    assert temp_leftovers(models), "the kill should have caught the save half-way (else this test proves nothing)"
    assert [e.name for e in registry.list_models()] == ["keep"]  # the half-written model is never listed
    assert temp_leftovers(models) == []  # ...and the listing swept it: its writer is dead
    assert snapshot(models / "keep") == before


def test_case04_sigkill_between_the_renames_of_an_overwrite(registry_with, tmp_path):
    models = registry_with("keep")
    before = snapshot(models / "keep")
    _kill_when_blocked(_worker("overwrite-kill", tmp_path), tmp_path)
    assert not (models / "keep").exists(), "the kill should land while the old model is moved aside"
    assert [e.name for e in registry.list_models()] == ["keep"]  # the sweep puts the old model back
    assert snapshot(models / "keep") == before
    assert temp_leftovers(models) == []
    registry.load("keep")


def test_case04_two_concurrent_saves_to_one_name(registry_with, tmp_path):
    """Two processes save to one name at once: with overwrite both land one after the other, without it the
    second is refused. Each time the result is one complete, loadable model and no temp folder is left."""
    models = registry_with()
    procs = [_worker("race", tmp_path, seed) for seed in (1, 2)]
    deadline = time.monotonic() + 150
    while not all((tmp_path / f"ready-{s}").exists() for s in (1, 2)):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (tmp_path / "go").touch()
    codes = [p.wait(timeout=120) for p in procs]
    assert sorted(codes) == [0, 2], [p.communicate() for p in procs]
    assert "already exists" in procs[codes.index(2)].stderr.read()
    assert temp_leftovers(models) == []
    for name in ("race", "race-overwrite"):
        meta = registry.read_metadata(name)
        assert meta["seed"] in (1, 2) and meta["model_sha256"] == sha256(models / name / "model.keras")
        assert sorted(p.name for p in (models / name).iterdir()) == ["metadata.json", "model.keras"]
        assert registry.load(name).output_shape == (None, 10)


def test_case04_racing_overwrites_are_serialised_by_the_registry_lock(registry_with, monkeypatch):
    """Deterministic interleaving: save A stops right after moving the old model aside; save B then runs.
    B must wait for A's move to finish (the lock); without it B lands in the gap and A's move fails."""
    import threading

    models = registry_with("keep", "other")
    new_a, new_b = registry.load("keep"), registry.load("other")
    a_paused, b_done, errors = threading.Event(), threading.Event(), []
    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if threading.current_thread().name == "save-a" and "-old-" in Path(dst).name:
            a_paused.set()
            b_done.wait(3)  # with the lock B cannot finish meanwhile, so this times out

    def save(model, tag):
        try:
            registry.save("keep", model, {"tag": tag}, overwrite=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append((tag, exc))
        if tag == "b":
            b_done.set()

    monkeypatch.setattr(registry.os, "rename", rename)
    a = threading.Thread(target=save, args=(new_a, "a"), name="save-a")
    a.start()
    assert a_paused.wait(60)
    b = threading.Thread(target=save, args=(new_b, "b"), name="save-b")
    b.start()
    a.join(60)
    b.join(60)
    assert errors == []
    assert registry.read_metadata("keep")["tag"] == "b"  # B waited, then replaced A's model whole
    assert temp_leftovers(models) == []
    assert registry.inspect("keep").ok


# ---------- case 5: names cannot escape ----------


BAD_NAMES = {
    "dotdot": "../x", "absolute": "/etc/passwd", "backslash": "..\\x", "device": "CON", "empty": "",
    "long": "a" * 300, "nul": "a\x00b", "double-suffix": "x.keras.h5", "spaces-non-ascii": "mein Modell ü",
}


@pytest.mark.parametrize("bad", BAD_NAMES.values(), ids=BAD_NAMES.keys())
def test_case05_bad_model_name_is_rejected_and_stays_inside(capsys, registry_with, tmp_path, image_file, bad):
    models = registry_with("a")
    passwd = Path("/etc/passwd").stat().st_mtime_ns if Path("/etc/passwd").exists() else None
    outside_before = sorted(str(p) for p in tmp_path.rglob("*") if models not in p.parents)
    model = registry.load("a")
    for call in (lambda: registry.save(bad, model, {}), lambda: registry.save(bad, model, {}, overwrite=True),
                 lambda: registry.rename("a", bad), lambda: registry.load(bad), lambda: registry.delete(bad),
                 lambda: reimport(bad)):
        with pytest.raises(LabError, match="bad model name"):
            call()
    if "\x00" not in bad:  # a NUL byte cannot even reach argv
        for argv in (("models", "rename", "a", bad), ("models", "delete", bad), ("models", "reimport", bad),
                     ("train", "--preset", "mlp-2x28", "--name", bad, "--dry-run"),
                     ("predict", image_file, "--model", bad), ("test", "--models", bad)):
            assert_one_line_error(*run_cli(capsys, *argv)[::2])
    assert [p.name for p in models.iterdir() if not p.name.startswith(".")] == ["a"]
    assert sorted(str(p) for p in tmp_path.rglob("*") if models not in p.parents) == outside_before
    assert passwd is None or Path("/etc/passwd").stat().st_mtime_ns == passwd
    # Mapped safely instead: the name suggested from such a text is a plain name inside saved_models/.
    mapped = registry.unique_name(bad)
    assert registry.check_name(mapped) == mapped
    assert registry.model_path(mapped).resolve().parent == models.resolve()


def test_case05_nothing_is_silently_overwritten(capsys, registry_with):
    models = registry_with("a", "b")
    before = [snapshot(models / "a"), snapshot(models / "b")]
    model = registry.load("a")
    with pytest.raises(LabError, match="already exists"):
        registry.save("b", model, {})
    with pytest.raises(LabError, match="already exists"):
        registry.rename("a", "b")
    assert_one_line_error(*run_cli(capsys, "models", "rename", "a", "b")[::2], contains="already exists")
    assert_one_line_error(*run_cli(capsys, "train", "--preset", "mlp-2x28", "--name", "b", "--dry-run")[::2],
                          contains="already exists")
    assert [snapshot(models / "a"), snapshot(models / "b")] == before


def test_case05_model_path_resolves_inside_the_registry(isolated_dirs):
    for name in ("a", "A-1_b", "x" * 64):
        assert registry.model_path(name).resolve().parent == isolated_dirs.resolve()
