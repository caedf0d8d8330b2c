"""saved_models/: atomic save, list, safe load, rename, delete.

A model is a folder <name>/ holding model.keras and metadata.json. The metadata
records the sha256 of model.keras, so only files the lab wrote itself are loaded.
An ensemble (mnist_core.ensemble, which says how it stays safe) is a folder holding metadata.json alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mnist_core import fsutil, keras_config, metadata_schema
from mnist_core.errors import LabError
from mnist_core.fsutil import read_bytes_bounded, write_json_atomic
from mnist_core.paths import models_dir
from mnist_core.registry_fs import (  # LOCK_FILE and TEMP_PREFIX: callers and tests read them as registry.X
    LOCK_FILE,  # noqa: F401
    NAME_PATTERN,
    TEMP_PREFIX,  # noqa: F401
    move_into_place,
    registry_lock,
    remove_entry,
    sweep_temp,
    temp_path,
)

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
NAME_RE = re.compile(f"^{NAME_PATTERN}$")
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
MAX_METADATA_BYTES = 4 * 1024 * 1024
DEFAULT_MODEL = "default"
ENSEMBLE_KIND = "ensemble"  # metadata["kind"] of a metadata-only entry averaging other entries

@dataclass
class Entry:
    name: str
    status: str  # "ok", "broken", "modified", "unsafe" or "foreign"
    reason: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def row(self) -> dict:
        m, test = self.metadata, self.metadata.get("test", {})
        return {
            "name": self.name,
            "status": self.status,
            "type": m.get("spec", {}).get("kind", "") or m.get("kind", ""),
            "parameters": m.get("parameters"),
            "test_accuracy": test.get("accuracy"),
            "test_loss": test.get("loss"),
            "epochs": len(m.get("history", [])),
            "train_seconds": m.get("train_seconds"),
            "created": m.get("created", ""),
            "reason": self.reason,
        }


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = repr(name) if isinstance(name, str) and len(name) <= 40 else repr(str(name)[:40]) + "..."
        raise LabError(f"bad model name {shown}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    if name.lower() in WINDOWS_RESERVED:
        raise LabError(f"bad model name {name!r}: reserved device name on Windows")
    return name


def model_path(name: str) -> Path:
    return models_dir() / check_name(name)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def exists(name: str) -> bool:
    return model_path(name).exists()


def check_free(name: str) -> str:
    """A valid name no model has yet; checked before training starts, so a clash costs nothing."""
    if exists(name):
        raise LabError(f"a model named {name!r} already exists; pick another name")
    return name


def unique_name(base: str) -> str:
    """A free, valid name derived from `base` (e.g. cnn-c32-d128, then cnn-c32-d128-2, ...)."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")[:56] or "model"
    if not base[0].isalnum():
        base = "m" + base
    if base.lower() in WINDOWS_RESERVED:
        base += "-model"  # "con" is a device on Windows, never a folder
    name, i = base, 2
    while (models_dir() / name).exists():
        name, i = f"{base}-{i}", i + 1
    return name


def save(name: str, model, metadata: dict, *, overwrite: bool = False) -> Path:
    """Write the model to a temp folder beside the registry, then move it into place in one rename.

    A listing never sees a half-written model; a failed save leaves an existing model untouched.
    """
    def write(tmp: Path) -> dict:
        model.save(tmp / MODEL_FILE)
        return dict(metadata, model_sha256=file_sha256(tmp / MODEL_FILE))

    return _save_entry(name, write, overwrite)


def save_ensemble(name: str, metadata: dict) -> Path:
    """Write an ensemble's entry, metadata.json alone, the way `save` writes a model; never overwrites."""
    return _save_entry(name, lambda tmp: dict(metadata, kind=ENSEMBLE_KIND), overwrite=False)


def _save_entry(name: str, write, overwrite: bool) -> Path:
    target = model_path(name)
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    sweep_temp()
    if target.exists() and not overwrite:
        raise LabError(f"a model named {name!r} already exists; pick another name")
    tmp = temp_path(root, "new", name)
    tmp.mkdir()
    try:
        meta = dict(write(tmp), name=name)
        meta.setdefault("created", time.strftime("%Y-%m-%d %H:%M:%S"))
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1))
        move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_metadata(name: str) -> dict:
    path = model_path(name) / METADATA_FILE
    if path.is_symlink() or path.parent.is_symlink():  # reimport and update_metadata never write through one
        raise LabError(f"{name}: a symbolic link, not a model folder the lab wrote")
    if not path.is_file():  # also a FIFO or device, which would block or never end
        raise LabError(f"{name}: metadata.json is missing")
    try:
        meta = json.loads(read_bytes_bounded(path, MAX_METADATA_BYTES, "metadata file"))
    except LabError as exc:  # too large, or gone since the check
        raise LabError(f"{name}: {exc}") from None
    except (ValueError, RecursionError):  # bad JSON or UTF-8, 5000-digit numbers, [[[[...
        raise LabError(f"{name}: metadata.json is not valid JSON") from None
    if not isinstance(meta, dict):
        raise LabError(f"{name}: metadata.json is not a JSON object")
    return meta


def inspect(name: str) -> Entry:
    folder = models_dir() / name
    if not NAME_RE.fullmatch(name) or not folder.is_dir():
        return Entry(name, "foreign", "not a folder with a valid model name; ignored")
    links = [p.name for p in (folder, folder / MODEL_FILE, folder / METADATA_FILE) if p.is_symlink()]
    if links:  # the lab writes real folders; a link could point anywhere, and survive a delete
        return Entry(name, "unsafe", f"{links[0]} is a symbolic link; the lab never follows links in saved_models "
                     "(delete removes the link only)")
    model_file = folder / MODEL_FILE
    if not model_file.exists() and (ensemble := _ensembles().metadata_of(name)):
        return Entry(name, *_ensembles().member_status(name, ensemble), ensemble)
    if not model_file.is_file():
        return Entry(name, "broken", "no model.keras in the folder")
    if model_file.stat().st_size == 0:
        return Entry(name, "broken", "model.keras is empty (0 bytes)")
    try:
        meta = read_metadata(name)
    except LabError as exc:
        return Entry(name, "broken", str(exc).split(": ", 1)[1])
    if problem := metadata_schema.problem(meta):
        return Entry(name, "broken", f"metadata.json: {problem}")
    if meta.get("kind") == ENSEMBLE_KIND:
        return Entry(name, "broken", "an ensemble's folder holds a model.keras; an ensemble keeps no weights")
    if model_file.stat().st_size > keras_config.MAX_ARCHIVE_FILE_BYTES:  # checked before hashing it
        return Entry(name, "unsafe", f"model.keras is {model_file.stat().st_size:,} bytes, over the limit of "
                     f"{keras_config.MAX_ARCHIVE_FILE_BYTES:,}", meta)
    with open(model_file, "rb") as fh:  # an unreadable file says so (is_zipfile alone would call it damaged)
        is_zip = zipfile.is_zipfile(fh)
    if not is_zip:
        return Entry(name, "broken", "model.keras is not a valid .keras archive (truncated or damaged)", meta)
    if meta.get("model_sha256") != file_sha256(model_file):
        return Entry(name, "modified", "model.keras was modified outside the lab (checksum differs); "
                     f"re-import it with: python -m mnist_core models reimport {name}", meta)
    try:
        keras_config.check_plain_keras(model_file)
    except LabError as exc:
        return Entry(name, "unsafe", str(exc).split(": ", 1)[1], meta)
    return Entry(name, "ok", "", meta)


def list_models() -> list[Entry]:
    """Every entry in saved_models/, newest first; broken and foreign ones say why."""
    root = models_dir()
    if not root.is_dir():
        return []
    sweep_temp()
    entries = []
    try:
        children = list(root.iterdir())
    except OSError as exc:
        raise LabError(f"{root}: cannot list the saved models ({exc.strerror or type(exc).__name__})") from None
    for child in children:
        if child.name.startswith(".") or child.name == "README.md":
            continue  # temp folders of saves in flight, and the registry's own readme
        try:
            entries.append(inspect(child.name))
        except Exception as exc:  # one unreadable entry is that entry's problem; the others are still listed
            entries.append(Entry(child.name, "broken", fsutil.failure_words(exc)))
    entries.sort(key=lambda e: (e.metadata.get("created", ""), e.name), reverse=True)
    return entries


def load(name: str):
    """Load a model the lab saved. Safe mode stays on; modified or foreign files are refused."""
    import keras

    if not model_path(name).is_dir():
        raise LabError(f"no model named {name!r}")
    entry = inspect(name)
    if not entry.ok:
        raise LabError(f"cannot load {name!r}: {entry.reason or entry.status}")
    if entry.metadata.get("kind") == ENSEMBLE_KIND:
        return _ensembles().build(name, entry.metadata)
    model_file = models_dir() / name / MODEL_FILE
    keras_config.check_plain_keras(model_file)
    try:
        return keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise LabError(f"cannot load {name!r}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def load_entry(name: str) -> tuple:
    """(model, metadata) of a saved model, for work on a copy of its weights (fine-tuning): an ensemble, which
    has no weights of its own, is refused."""
    if _ensembles().metadata_of(name):
        raise LabError(f"{name!r} is an ensemble and has no weights of its own; use one of its members")
    model = load(name)
    return model, read_metadata(name)


def update_metadata(name: str, changes: dict) -> dict:
    """Merge `changes` into a model's metadata.json atomically; the model file is untouched.

    Read, merge and write happen under the registry lock, so two updates at once both land.
    """
    with registry_lock():
        meta = read_metadata(name)
        meta.update(changes)
        write_json_atomic(model_path(name) / METADATA_FILE, meta)
    return meta


def _ensembles():
    from mnist_core import ensemble  # imported when needed: it builds on this module

    return ensemble


def entry_stamp(name: str) -> tuple:
    """Changes whenever what `load(name)` would load changes: model.keras, or an ensemble's metadata.json and
    each member's model.keras. Raises OSError when a file is missing."""
    folder = model_path(name)
    files = [folder / MODEL_FILE]
    if not files[0].exists() and (ensemble := _ensembles().metadata_of(name)):
        files = [folder / METADATA_FILE, *_ensembles().member_files(name, ensemble)]
    stamps = [(f.stat().st_mtime_ns, f.stat().st_size, f.stat().st_ino) for f in files]
    return (name, *stamps[0], *stamps[1:])


def entry_sha256(name: str) -> str:
    """The checksum to key a loadable entry's cached results on: its model.keras's, or for an ensemble the one
    derived from its members' (checked against them). Raises LabError when the entry cannot be loaded."""
    entry = inspect(check_name(name))
    if not entry.ok:
        raise LabError(f"cannot load {name!r}: {entry.reason or entry.status}")
    return entry.metadata["model_sha256"]


def rename(old: str, new: str) -> None:
    src, dst = model_path(old), model_path(new)
    if not src.is_dir():
        raise LabError(f"no model named {old!r}")
    _ensembles().refuse_if_member(old, "rename")
    if src.is_symlink():
        raise LabError(f"{old!r} is a symbolic link, not a model folder; the lab never renames through links")
    with registry_lock():  # a save moving into `new` meanwhile would be overwritten by os.rename
        if dst.exists():
            raise LabError(f"a model named {new!r} already exists; rename refuses to overwrite")
        try:
            meta = read_metadata(old)
        except LabError:
            pass  # a broken entry keeps its broken metadata; the name lives in the folder anyway
        else:
            write_json_atomic(src / METADATA_FILE, dict(meta, name=new))
        os.rename(src, dst)


def delete(name: str) -> None:
    path = model_path(name)
    if path.is_symlink():  # the link goes, whatever it points to stays (and is never followed)
        path.unlink()
        return
    if not path.is_dir():
        raise LabError(f"no model named {name!r}")
    _ensembles().refuse_if_member(name, "delete")
    # Move aside first so a half-deleted folder is never listed.
    trash = temp_path(path.parent, "del", name)
    os.rename(path, trash)
    remove_entry(trash)
