"""Hostile inputs, round two, group 3: one bad file never breaks a whole page or a CLI command.

Each page case puts one bad file among good ones and checks that the page still renders, says what is wrong
in one line naming the file, and still shows the rest. Unreadable files are real: the page runs as an
unprivileged user (root reads everything). The CLI cases use a real full tmpfs, a real read-only mount and a
real permission problem, and expect one line in words and exit 2, not "internal error".

Root reads and writes everything, so "unreadable" is made real by running the page or command as root
without its file-permission override (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) against files another user owns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search", "--"]
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root (mounts, dropping the permission override) and setpriv")


def edit_metadata(folder: Path, **changes) -> None:
    path = folder / "metadata.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))  # model.keras is untouched: its checksum still matches


def broken_lines(at) -> list[str]:
    return [m.value.replace("\\", "") for e in at.expander for m in e.markdown]  # names are escaped as data


# ---------- pages ----------


def test_compare_with_a_hand_edited_metadata_lists_it_as_damaged_and_compares_the_rest(registry_with, app_page):
    root = registry_with("good", "edited", "newer")
    edit_metadata(root / "edited", test={"accuracy": "high", "confusion_matrix": "x", "recall": 5}, created="2099")
    edit_metadata(root / "newer", created=20990101)  # a number where a date belongs broke the listing's sort
    at = app_page("views/compare.py", clean=True)
    lines = broken_lines(at)
    assert "- **edited** (broken): metadata.json: 'test.accuracy' is not a number" in lines
    assert "- **newer** (broken): metadata.json: 'created' is not a JSON str" in lines
    assert not at.error  # the damage is said once, in the list of entries that cannot be compared
    assert list(at.dataframe[0].value["model"]) == ["good"]  # and the good model is compared as usual
    shown = [s.value for s in at.subheader]
    assert {"Training curves", "Confusion matrices", "Per-class accuracy", "Beyond the test set: robustness"} <= set(shown)


UNPRIVILEGED_COMPARE = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=120)
at.switch_page("views/compare.py").run()
print(json.dumps({"exception": [str(e.value) for e in at.exception], "error": [e.value for e in at.error],
                  "broken": [m.value.replace("\\\\", "") for e in at.expander for m in e.markdown],
                  "models": list(at.dataframe[0].value["model"]) if at.dataframe else []}))
"""


@needs_root
def test_compare_names_each_file_the_server_cannot_read(registry_with):
    """metadata.json and model.keras the server's user cannot read: each entry says which file and why."""
    models = registry_with("good", "no-meta", "no-model")
    for path in (models / "no-meta" / "metadata.json", models / "no-model" / "model.keras"):
        os.chown(path, NOBODY, NOBODY)
        path.chmod(0o600)
    done = subprocess.run([*WITHOUT_OVERRIDE, sys.executable, "-c", UNPRIVILEGED_COMPARE,
                           str(ROOT / "dashboard" / "app.py")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["exception"] == [] and seen["error"] == []
    assert "- **no-meta** (broken): metadata.json: cannot read (Permission denied)" in seen["broken"]
    assert "- **no-model** (broken): model.keras: permission denied; check the owner and mode of the file and its " \
        "folder" in seen["broken"]
    assert seen["models"] == ["good"]


def test_a_job_folder_removed_while_its_panel_polls_is_one_line(tmp_path):
    """The panel's fragment reads the job on every poll; the folder goes between two reads."""
    from streamlit.testing.v1 import AppTest

    def page():
        import shutil
        import subprocess
        import sys
        import time

        import streamlit as st

        from dashboard.components import job_panel
        from mnist_core import fsutil, jobs

        job_id = "20260101-000000-poll00"
        folder = jobs.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", job_id])
        try:
            while job_id.encode() not in open(f"/proc/{proc.pid}/cmdline", "rb").read():
                time.sleep(0.01)
            fsutil.write_json_atomic(folder / jobs.INFO, {
                "name": "polled", "kind": "train", "pid": proc.pid, "started": time.time(),
                "started_ticks": fsutil.process_start_ticks(proc.pid), "session": None, "subject": {}})
            job = jobs.status(job_id)
            assert job.running
            shutil.rmtree(folder)  # e.g. someone cleans up jobs/ while the tab is open
            job_panel.show(job)
            st.write("the rest of the page")
        finally:
            proc.kill()
            proc.wait()

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "20260101-000000-poll00" in warnings[0] and "job.json is gone" in warnings[0]
    assert [s.value for s in at.subheader] == ["Training polled"]
    assert any(m.value == "the rest of the page" for m in at.markdown)


def test_the_page_boundary_logs_a_failure_and_shows_one_line(registry_with, app_page, caplog):
    """A failure no finer boundary catches: a saved model whose stored training time is text, shown as the last
    run's result on Train. The page keeps what it drew, adds one line, and the traceback goes to the log."""
    from mnist_core import jobs

    root = registry_with("curvy")
    edit_metadata(root / "curvy", train_seconds="slow")
    folder = jobs.job_dir("20260101-000000-done00")
    folder.mkdir(parents=True)
    (folder / jobs.INFO).write_text(json.dumps({"pid": 1, "name": "curvy", "started": time.time(), "kind": "train",
                                                "session": "abcdef012345"}))
    (folder / jobs.EVENTS).write_text(json.dumps({"event": "done", "name": "curvy"}) + "\n")
    with caplog.at_level("ERROR"):
        at = app_page("views/train.py", query={"tab": "abcdef012345"})
    assert not at.exception, at.exception
    assert "Last run: Training curvy" in [s.value for s in at.subheader]
    assert len(at.error) == 1 and "details are in the server log" in at.error[0].value
    assert any(r.exc_info for r in caplog.records), "the traceback was not logged"


# ---------- CLI ----------


def run_cli(*args: str, env: dict, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "mnist_core", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def mount_point():
    """A folder under /tmp (reachable by every user) to mount on; unmounted and removed afterwards."""
    top = Path(tempfile.mkdtemp(prefix="hostile-mount-", dir="/tmp"))
    top.chmod(0o755)
    yield top
    subprocess.run(["umount", "-l", str(top)], capture_output=True)
    shutil.rmtree(top, ignore_errors=True)


def _one_line_exit_2(done: subprocess.CompletedProcess, words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


@needs_root
def test_cli_on_a_full_disk_says_so_and_exits_2(mount_point, tiny_trained):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], check=True)
    shutil.copytree(tiny_trained, mount_point / "tiny")
    with open(mount_point / "filler", "wb", buffering=0) as fh:  # fill what is left
        try:
            while fh.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    done = run_cli("models", "rename", "tiny", "tiny2", env={"MNIST_MODELS_DIR": str(mount_point)})
    _one_line_exit_2(done, "the disk is full")
    assert (mount_point / "tiny" / "metadata.json").stat().st_size > 0  # the old metadata is untouched
    assert json.loads((mount_point / "tiny" / "metadata.json").read_text())["name"] == "tiny"


@needs_root
def test_cli_on_a_read_only_file_system_says_so_and_exits_2(mount_point, tiny_trained):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], check=True)
    shutil.copytree(tiny_trained, mount_point / "tiny")
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
    done = run_cli("models", "delete", "tiny", env={"MNIST_MODELS_DIR": str(mount_point)})
    _one_line_exit_2(done, "the file system is read-only")
    assert (mount_point / "tiny" / "model.keras").is_file()


@needs_root
def test_cli_without_permission_says_so_and_exits_2(mount_point, tiny_trained):
    shutil.copytree(tiny_trained, mount_point / "tiny")
    for path in (mount_point, *mount_point.rglob("*")):  # another user's registry: readable, not writable
        os.chown(path, NOBODY, NOBODY)
    done = run_cli("models", "rename", "tiny", "tiny2", env={"MNIST_MODELS_DIR": str(mount_point)},
                   prefix=tuple(WITHOUT_OVERRIDE))
    _one_line_exit_2(done, "permission denied")
    assert (mount_point / "tiny").is_dir() and not (mount_point / "tiny2").exists()
