"""mnist_core.registry: save/list/load/rename/delete, atomic saves, the name allow-list, broken entries."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_core import data, registry
from mnist_core.errors import LabError


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes, for byte-for-byte comparisons."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _names(entries) -> list[str]:
    return sorted(e.name for e in entries)


def test_save_list_load_rename_delete(registry_with, isolated_dirs, small_mnist):
    registry_with("src")
    model = registry.load("src")
    meta = registry.read_metadata("src")

    registry.save("copy", model, {"test": meta["test"], "spec": meta["spec"]})
    entries = {e.name: e for e in registry.list_models()}
    assert set(entries) == {"src", "copy"} and all(e.ok for e in entries.values())
    assert entries["copy"].metadata["name"] == "copy"
    assert entries["copy"].metadata["model_sha256"] == registry.file_sha256(isolated_dirs / "copy" / "model.keras")
    assert entries["copy"].row()["test_accuracy"] == meta["test"]["accuracy"]
    assert sorted(p.name for p in isolated_dirs.iterdir() if not p.name.startswith(".")) == ["copy", "src"]

    x = data.normalise(small_mnist.x_test[:20])
    reloaded = registry.load("copy")
    assert np.array_equal(np.asarray(reloaded(x, training=False)), np.asarray(model(x, training=False)))

    registry.rename("copy", "renamed")
    assert _names(registry.list_models()) == ["renamed", "src"]
    assert registry.read_metadata("renamed")["name"] == "renamed"
    assert registry.load("renamed") is not None

    with pytest.raises(LabError, match=r"^a model named 'src' already exists; rename refuses to overwrite$"):
        registry.rename("renamed", "src")
    with pytest.raises(LabError, match=r"^no model named 'ghost'$"):
        registry.rename("ghost", "other")
    with pytest.raises(LabError, match=r"^a model named 'src' already exists; pick another name$"):
        registry.save("src", model, {})

    registry.delete("renamed")
    assert _names(registry.list_models()) == ["src"]
    assert not (isolated_dirs / "renamed").exists()
    with pytest.raises(LabError, match=r"^no model named 'renamed'$"):
        registry.delete("renamed")
    with pytest.raises(LabError, match=r"^no model named 'renamed'$"):
        registry.load("renamed")


def test_rename_refusal_leaves_both_models_byte_identical(registry_with, isolated_dirs):
    registry_with("a", "b")
    before = {n: _tree(isolated_dirs / n) for n in ("a", "b")}
    with pytest.raises(LabError):
        registry.rename("a", "b")
    assert {n: _tree(isolated_dirs / n) for n in ("a", "b")} == before


class Boom(RuntimeError):
    pass


def _failing_save(model, monkeypatch):
    """model.save writes half a file, then fails, as a full disk or a kill would."""
    def half_then_fail(path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise Boom("disk full")

    monkeypatch.setattr(model, "save", half_then_fail)


def test_failed_save_leaves_nothing_behind(registry_with, isolated_dirs, monkeypatch):
    registry_with("a")
    model = registry.load("a")
    _failing_save(model, monkeypatch)
    with pytest.raises(Boom):
        registry.save("fresh", model, {})
    assert sorted(p.name for p in isolated_dirs.iterdir() if p.name != registry.LOCK_FILE) == ["a"]
    assert _names(registry.list_models()) == ["a"]


def test_failed_overwrite_keeps_the_existing_model_byte_identical(registry_with, isolated_dirs, monkeypatch):
    registry_with("a")
    before = _tree(isolated_dirs / "a")
    model = registry.load("a")
    _failing_save(model, monkeypatch)
    with pytest.raises(Boom):
        registry.save("a", model, {"test": {"accuracy": 0.0}}, overwrite=True)
    assert _tree(isolated_dirs / "a") == before
    assert sorted(p.name for p in isolated_dirs.iterdir() if p.name != registry.LOCK_FILE) == ["a"]
    assert registry.inspect("a").ok


@pytest.mark.parametrize("bad", [
    "../x", "/etc/passwd", "..\\x", "CON", "con", "nul", "LPT1", "", "a" * 300, "a\x00b", "x.keras.h5",
    "my model", " lead", "trail ", "modèle", "数字", ".hidden", "-dash", "_under", "a/b", "..", ".",
    "a" * 65,
])
def test_bad_names_are_rejected_everywhere(bad, registry_with, isolated_dirs, tmp_path):
    registry_with("a")
    before = sorted(p.name for p in isolated_dirs.parent.rglob("*"))
    with pytest.raises(LabError) as err:
        registry.check_name(bad)
    message = str(err.value)
    assert message.startswith("bad model name") and "\n" not in message and len(message) < 200
    model = registry.load("a")
    for action in (lambda: registry.save(bad, model, {}), lambda: registry.load(bad),
                   lambda: registry.rename("a", bad), lambda: registry.rename(bad, "b"),
                   lambda: registry.delete(bad)):
        with pytest.raises(LabError, match="^bad model name"):
            action()
    assert sorted(p.name for p in isolated_dirs.parent.rglob("*")) == before


@pytest.mark.parametrize("good", ["a", "default", "mlp-2x128", "Model_7", "9lives", "a" * 64, "console", "com10"])
def test_good_names_are_accepted(good):
    assert registry.check_name(good) == good


def _break(folder: Path, how: str) -> None:
    model_file, meta_file = folder / "model.keras", folder / "metadata.json"
    if how == "zero-byte model":
        model_file.write_bytes(b"")
    elif how == "truncated model":
        model_file.write_bytes(model_file.read_bytes()[:-100])
    elif how == "missing metadata":
        meta_file.unlink()
    elif how == "unparsable metadata":
        meta_file.write_text('{"spec": {"kind": "mlp"')
    elif how == "metadata not an object":
        meta_file.write_text("[1, 2, 3]")
    elif how == "no model file":
        model_file.unlink()
    elif how == "empty folder":
        model_file.unlink()
        meta_file.unlink()


BROKEN = {
    "zero-byte model": "model.keras is empty (0 bytes)",
    "truncated model": "model.keras is not a valid .keras archive (truncated or damaged)",
    "missing metadata": "metadata.json is missing",
    "unparsable metadata": "metadata.json is not valid JSON",
    "metadata not an object": "metadata.json is not a JSON object",
    "no model file": "no model.keras in the folder",
    "empty folder": "no model.keras in the folder",
}


def test_broken_entries_are_listed_with_reasons_and_the_rest_still_work(registry_with, isolated_dirs, small_mnist):
    slugs = {how: how.replace(" ", "-") for how in BROKEN}
    registry_with("good1", "good2", *slugs.values())
    for how, slug in slugs.items():
        _break(isolated_dirs / slug, how)
    (isolated_dirs / "stray-file.txt").write_text("not a model")

    entries = {e.name: e for e in registry.list_models()}
    assert set(entries) == {"good1", "good2", "stray-file.txt", *slugs.values()}
    for how, slug in slugs.items():
        assert (entries[slug].status, entries[slug].reason) == ("broken", BROKEN[how]), how
        with pytest.raises(LabError, match=f"^cannot load '{slug}': "):
            registry.load(slug)
        row = entries[slug].row()
        assert row["status"] == "broken" and row["reason"] == BROKEN[how]
    assert entries["stray-file.txt"].status == "foreign"
    for good in ("good1", "good2"):
        assert entries[good].ok
        model = registry.load(good)
        out = np.asarray(model(data.normalise(small_mnist.x_test[:3]), training=False))
        assert out.shape == (3, 10)


def test_model_changed_outside_the_lab_is_not_loaded(registry_with, isolated_dirs):
    registry_with("a", "b")
    # a valid archive, but not the one the lab wrote for 'a'
    (isolated_dirs / "a" / "model.keras").write_bytes((isolated_dirs / "b" / "model.keras").read_bytes() + b"")
    meta = json.loads((isolated_dirs / "a" / "metadata.json").read_text())
    meta["model_sha256"] = "0" * 64
    (isolated_dirs / "a" / "metadata.json").write_text(json.dumps(meta))
    entry = registry.inspect("a")
    assert entry.status == "modified" and "checksum differs" in entry.reason
    with pytest.raises(LabError, match=r"^cannot load 'a': model.keras was modified outside the lab"):
        registry.load("a")


def test_load_uses_keras_safe_mode(registry_with, monkeypatch):
    registry_with("a")
    seen = []
    real = keras.saving.load_model

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    registry.load("a")
    assert len(seen) == 1 and seen[0]["safe_mode"] is True


def test_lambda_model_saved_through_the_registry_is_refused(isolated_dirs):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    registry.save("lambda", model, {})  # checksum recorded, so only the content check can refuse it
    entry = registry.inspect("lambda")
    assert entry.status == "unsafe" and "Lambda" in entry.reason
    with pytest.raises(LabError, match=r"^cannot load 'lambda': refusing to load: config contains 'Lambda'"):
        registry.load("lambda")


def test_unique_name_never_collides(registry_with):
    registry_with("mlp-d128", "mlp-d128-2")
    assert registry.unique_name("mlp-d128") == "mlp-d128-3"
    assert registry.unique_name("../weird name!") == "weird-name"
    assert registry.check_name(registry.unique_name("---")) == "model"


# ---------- metadata writes: atomic, serialised, leftovers swept ----------


UPDATER = """
import sys
from mnist_core import registry
who = sys.argv[1]
for i in range(int(sys.argv[2])):
    registry.update_metadata("a", {f"{who}-{i}": i})
"""


def test_metadata_updates_from_several_processes_all_land(registry_with, isolated_dirs):
    """Four processes each merge 25 keys at once: read, merge and write happen under the registry lock, so no
    update overwrites another's (without the lock most keys are lost)."""
    import subprocess
    import sys

    registry_with("a")
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", UPDATER, f"p{n}", "25"], cwd=root) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    meta = registry.read_metadata("a")
    assert {f"p{n}-{i}" for n in range(4) for i in range(25)} <= set(meta)
    assert meta["name"] == "a" and registry.inspect("a").ok
    assert sorted(p.name for p in (isolated_dirs / "a").iterdir()) == ["metadata.json", "model.keras"]


def test_a_killed_metadata_write_is_swept_and_the_metadata_kept(registry_with, isolated_dirs):
    registry_with("a")
    before = registry.read_metadata("a")
    leftover = isolated_dirs / "a" / f"{registry.TEMP_PREFIX}{registry.METADATA_FILE}-0123abcd"
    leftover.write_text('{"half": ')  # what a write killed before its os.replace leaves
    (isolated_dirs / "a" / "notes.txt").write_text("the user's own file")
    assert [e.name for e in registry.list_models()] == ["a"]
    assert not leftover.exists() and (isolated_dirs / "a" / "notes.txt").exists()
    assert registry.read_metadata("a") == before and registry.inspect("a").ok


def test_rename_rewrites_the_name_in_metadata_without_temp_files(registry_with, isolated_dirs):
    registry_with("a")
    registry.rename("a", "b")
    assert registry.read_metadata("b")["name"] == "b"
    assert sorted(p.name for p in (isolated_dirs / "b").iterdir()) == ["metadata.json", "model.keras"]


def test_oversized_metadata_is_refused_before_it_is_read(registry_with, isolated_dirs):
    registry_with("a")
    with open(isolated_dirs / "a" / registry.METADATA_FILE, "r+b") as fh:
        fh.truncate(registry.MAX_METADATA_BYTES + 1)  # sparse: reading it would still take 4 MB of memory
    with pytest.raises(LabError, match=r"^a: metadata.json: the metadata file is 4,194,305 bytes, over the limit"):
        registry.read_metadata("a")
    entry = registry.inspect("a")
    assert entry.status == "broken" and "over the limit" in entry.reason
