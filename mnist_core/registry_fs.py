"""The registry's folder mechanics: one lock for writers, temp folders, moves into place, and the sweep that
clears what a killed process left behind. registry.py decides what a model is; this module only moves folders.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from mnist_core.errors import LabError
from mnist_core.fsutil import exclusive_lock, pid_alive
from mnist_core.paths import models_dir

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"  # a model's folder name (registry.check_name says why)
TEMP_PREFIX = ".tmp-"
# Temp folders are named .tmp-<pid>-<new|old|del>-<model name>-<random>, so a later listing or save can tell
# the leftovers of a killed process (its pid is gone) from a save still in flight. Inside a model folder,
# fsutil.write_json_atomic's temp files (.tmp-metadata.json-<random>) are written under the registry lock,
# so the sweep, which holds it too, knows any it finds are leftovers.
TEMP_RE = re.compile(rf"^\.tmp-(\d+)-(new|old|del)-({NAME_PATTERN})-[0-9a-f]{{8}}$")
LOCK_FILE = ".lock"


def temp_path(root: Path, kind: str, name: str) -> Path:
    return root / f"{TEMP_PREFIX}{os.getpid()}-{kind}-{name}-{uuid.uuid4().hex[:8]}"


def registry_lock():
    """One writer at a time across processes: saves moving into place, metadata writes, renames, the sweep.
    Not re-entrant: a holder must not take it again."""
    return exclusive_lock(models_dir() / LOCK_FILE)


def remove_entry(path: Path) -> None:
    """Remove a folder; a symbolic link goes itself, never what it points to."""
    if path.is_symlink():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename a finished temp folder to its model's name; with `overwrite`, the old one is replaced whole."""
    # One save at a time moves into place (other processes included), so two racing saves to one name
    # cannot both win, and neither can clobber the other.
    with registry_lock():
        if not target.exists():
            os.rename(tmp, target)
            return
        if not overwrite:
            raise LabError(f"a model named {target.name!r} already exists; pick another name")
        old = temp_path(target.parent, "old", target.name)
        os.rename(target, old)
        try:
            os.rename(tmp, target)  # a kill right here is repaired by the next sweep: it puts `old` back
        except OSError:
            os.rename(old, target)
            raise
        remove_entry(old)


def sweep_temp() -> None:
    """Clear the leftovers of saves, overwrites and deletes whose process died (SIGKILL, power loss).

    A model moved aside by an overwrite that never finished is put back; everything else is removed.
    Folders of processes still running are left alone. A pid recycled by an unrelated process keeps its
    leftovers until that process ends: harmless, since listings skip dot-names.
    """
    root = models_dir()
    if not root.is_dir():
        return
    try:
        with registry_lock():
            for child in root.iterdir():
                m = TEMP_RE.match(child.name)
                if not m:
                    if re.fullmatch(NAME_PATTERN, child.name) and child.is_dir() and not child.is_symlink():
                        _remove_metadata_leftovers(child)
                    continue
                if pid_alive(m.group(1)):
                    continue
                kind, name = m.group(2), m.group(3)
                if kind == "old" and not (root / name).exists() and not child.is_symlink():
                    os.rename(child, root / name)
                else:
                    remove_entry(child)  # a link moved aside is never put back: it would return a deleted model
    except OSError:
        pass  # a read-only registry can still be listed


def _remove_metadata_leftovers(folder: Path) -> None:
    for leftover in folder.glob(TEMP_PREFIX + "*"):
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)
