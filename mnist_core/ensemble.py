"""Ensembles: "ensemble of A, B, C" averages the probabilities of 2 to 8 saved models.

An ensemble is a registry entry of its own, a folder holding metadata.json alone: it names each member by
name and sha256 and keeps no copy of their weights. It is usable only while every member exists, loads
safely and still has the recorded checksum; loading it loads each member through registry.load (every safety
rule holds) and wraps them in one Keras model that averages their outputs, so every consumer of a loaded
model (evaluation, the Predictor, robustness) uses it unchanged. Its test metrics are computed once, at save,
like a trained model's.

A member cannot be deleted or renamed while an ensemble names it (refuse_if_member): the user deletes the
ensemble first. A member changed another way (overwritten, re-imported, edited outside the lab) leaves the
ensemble listed as not usable, with the member and the reason in one line.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnist_core import evaluate, metadata_schema, registry
from mnist_core.errors import LabError
from mnist_core.paths import models_dir
from mnist_core.registry_fs import TEMP_PREFIX

MIN_MEMBERS, MAX_MEMBERS = 2, 8  # more members cost memory and time on every prediction, for little gain
EVAL_BATCH = 1000
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
IMAGE_SHAPE, DIGITS_SHAPE = (None, 28, 28, 1), (None, 10)


def label(members: list[str]) -> str:
    """What the ensemble is, in words: "ensemble of A, B, C"."""
    return "ensemble of " + ", ".join(members)


def default_name(members: list[str]) -> str:
    """A free registry name for the ensemble of these members, e.g. ensemble-A-B-C (names hold no spaces)."""
    return registry.unique_name("ensemble-" + "-".join(members))


def combined_sha256(member_sha256s: list[str]) -> str:
    """The ensemble's checksum: stored as its model_sha256, so caches keyed on a model's checksum (robustness,
    calibration) key an ensemble on exactly the member files it averages."""
    return hashlib.sha256(("ensemble:" + ",".join(member_sha256s)).encode()).hexdigest()


# ---------- what the registry asks ----------


def metadata_of(name: str) -> dict:
    """The metadata of an entry that is an ensemble; {} for anything else, readable or not."""
    try:
        meta = registry.read_metadata(name)
    except LabError:
        return {}
    return meta if meta.get("kind") == registry.ENSEMBLE_KIND else {}


def members_problem(meta: dict) -> str:
    """What is wrong with an ensemble's member list ('' if nothing)."""
    members = meta.get("members")
    if not isinstance(members, list) or not MIN_MEMBERS <= len(members) <= MAX_MEMBERS:
        return f"'members' is not a list of {MIN_MEMBERS} to {MAX_MEMBERS} models"
    for m in members:
        if not (isinstance(m, dict) and isinstance(m.get("name"), str) and registry.NAME_RE.fullmatch(m["name"])
                and isinstance(m.get("sha256"), str) and SHA256_RE.fullmatch(m["sha256"])):
            return "'members' holds an entry without a valid model name and sha256"
    if len({m["name"] for m in members}) != len(members):
        return "'members' names one model twice"
    if meta.get("model_sha256") != combined_sha256([m["sha256"] for m in members]):
        return "'model_sha256' does not match the members' checksums"
    return ""


def member_status(name: str, meta: dict) -> tuple[str, str]:
    """(status, reason) of an ensemble entry, as registry.inspect reports it: "ok" only when its folder holds
    metadata.json alone and every member is a usable saved model with the recorded checksum."""
    if problem := metadata_schema.problem(meta) or members_problem(meta):
        return "broken", f"metadata.json: {problem}"
    extra = sorted(p.name for p in registry.model_path(name).iterdir()
                   if p.name != registry.METADATA_FILE and not p.name.startswith(TEMP_PREFIX))
    if extra:
        return "broken", f"the ensemble's folder holds {extra[0]!r}; an ensemble holds metadata.json alone"
    for member in meta["members"]:
        member_name = member["name"]
        if not registry.model_path(member_name).is_dir():
            return "broken", f"member {member_name!r} is missing (deleted or renamed outside the lab)"
        # Checked before inspecting the member, so two ensembles naming each other never recurse.
        if not (registry.model_path(member_name) / registry.MODEL_FILE).is_file():
            what = "itself an ensemble" if metadata_of(member_name) else "not a saved model (no model.keras)"
            return "broken", f"member {member_name!r} is {what}"
        entry = registry.inspect(member_name)
        if not entry.ok:
            return "broken", f"member {member_name!r} is not usable ({entry.status}: {entry.reason})"
        if entry.metadata.get("model_sha256") != member["sha256"]:
            return "modified", (f"member {member_name!r} changed since the ensemble was saved (checksum differs); "
                                "save the ensemble again")
    return "ok", ""


def member_files(name: str, meta: dict) -> list[Path]:
    """The model files an ensemble averages (registry.entry_stamp stats them); LabError for a damaged list."""
    if problem := members_problem(meta):
        raise LabError(f"{name}: metadata.json: {problem}")
    return [registry.model_path(m["name"]) / registry.MODEL_FILE for m in meta["members"]]


def member_configs(meta: dict) -> list[dict]:
    """Each member's stored training config (for the validation images none of them trained on)."""
    configs = [registry.read_metadata(m["name"]).get("config") for m in meta.get("members") or []]
    return [c for c in configs if isinstance(c, dict)]


def ensembles_using(name: str) -> list[str]:
    """The ensembles that name `name` as a member."""
    root = models_dir()
    found = []
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if child.name != name and registry.NAME_RE.fullmatch(child.name) and (meta := metadata_of(child.name)):
            if any(isinstance(m, dict) and m.get("name") == name for m in meta.get("members") or []):
                found.append(child.name)
    return found


def refuse_if_member(name: str, action: str) -> None:
    """Raise LabError when an ensemble names `name` (the registry's delete and rename ask this first)."""
    if users := ensembles_using(name):
        raise LabError(f"cannot {action} {name!r}: the ensemble {users[0]!r} uses it; delete the ensemble first")


# ---------- building and saving ----------


def average_model(models: list, name: str = "ensemble"):
    """One Keras model, (N, 28, 28, 1) floats -> (N, 10): the mean of the members' probabilities."""
    import keras

    inputs = keras.Input(IMAGE_SHAPE[1:], name="image")
    outputs = []
    for i, model in enumerate(models, start=1):
        if tuple(model.input_shape) != IMAGE_SHAPE or tuple(model.output_shape) != DIGITS_SHAPE:
            raise LabError(f"{model.name}: maps {model.input_shape} to {model.output_shape}, not 28x28x1 images "
                           "to 10 digits; it cannot join an ensemble")
        model.name = f"member{i}"  # nested models need unique names; copies of one spec share theirs
        model.trainable = False
        outputs.append(model(inputs))
    return keras.Model(inputs, keras.layers.Average(name="digits")(outputs), name=name)


def build(name: str, meta: dict):
    """The averaging model of an ensemble entry registry.inspect found usable; each member loaded safely."""
    models = []
    for member in meta["members"]:
        model = registry.load(member["name"])
        if registry.read_metadata(member["name"]).get("model_sha256") != member["sha256"]:
            raise LabError(f"cannot load {name!r}: member {member['name']!r} changed while it was being loaded")
        models.append(model)
    return average_model(models, name)


def check_members(members: list[str]) -> list[registry.Entry]:
    """The registry entries of the members, after the bounds: 2 to 8 distinct usable saved models, no ensembles."""
    if not MIN_MEMBERS <= len(members) <= MAX_MEMBERS:
        raise LabError(f"an ensemble needs {MIN_MEMBERS} to {MAX_MEMBERS} models; {len(members)} given")
    if len(set(members)) != len(members):
        raise LabError("an ensemble names each model once; a name is repeated")
    entries = []
    for member in members:
        registry.check_name(member)
        if not registry.exists(member):
            raise LabError(f"no model named {member!r}")
        entry = registry.inspect(member)
        if entry.metadata.get("kind") == registry.ENSEMBLE_KIND:
            raise LabError(f"{member!r} is an ensemble; an ensemble's members are saved models")
        if not entry.ok:
            raise LabError(f"cannot use {member!r}: {entry.reason or entry.status}")
        entries.append(entry)
    return entries


def save(members: list[str], name: str | None = None, mnist=None,
         on_progress: Callable[[float, str], None] | None = None) -> dict:
    """Save "ensemble of members" under `name` (default: default_name) with its test metrics; its metadata.

    Everything the user gave is checked before the slow part. `on_progress(fraction, text)` follows the
    loading of the members and the evaluation on the test images.
    """
    from mnist_core import data

    progress = on_progress or (lambda fraction, text: None)
    entries = check_members(members)
    name = registry.check_free(registry.check_name(name)) if name else default_name(members)
    mnist = mnist or data.load()
    shas = [e.metadata["model_sha256"] for e in entries]
    progress(0.0, f"Loading {len(members)} models...")
    model = build(name, {"members": [{"name": m, "sha256": s} for m, s in zip(members, shas, strict=True)]})
    probs, count = [], len(mnist.x_test)
    t0 = time.perf_counter()
    for start in range(0, count, EVAL_BATCH):
        progress(0.1 + 0.9 * start / count, f"Evaluating on test image {start:,} of {count:,}...")
        probs.append(evaluate.probabilities(model, mnist.x_test[start:start + EVAL_BATCH]))
    seconds = time.perf_counter() - t0
    test = evaluate.metrics(np.concatenate(probs), mnist.y_test)
    metadata = {
        "description": label(members),
        "members": [{"name": m, "sha256": s} for m, s in zip(members, shas, strict=True)],
        "model_sha256": combined_sha256(shas),
        "test": test,
        "eval_images_per_second": count / seconds if seconds > 0 else None,
        "parameters": sum(int(e.metadata.get("parameters") or 0) for e in entries),
        "history": [],
        "data_checksum": mnist.checksum,
        "versions": _versions(),
    }
    registry.save_ensemble(name, metadata)
    progress(1.0, "Saved.")
    return registry.read_metadata(name)


def _versions() -> dict:
    import keras
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
