"""The my-digits SQLite store, its zip export/import, measuring models on it, and fine-tuning."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_core import evaluate, my_digits, preprocess, registry
from mnist_core.errors import LabError
from tests.conftest import ROOT

BUSY = "is busy: another process is writing to it"  # the words, not a path that happens to say "busy"
WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
for statement in sys.argv[2:]:
    conn.execute(statement)
print("locked", flush=True)
time.sleep(300)
"""


@contextmanager
def writer_holding(db: Path, *statements: str):
    """A real second process that ran `statements` (e.g. BEGIN IMMEDIATE) on `db` and holds its lock until the end."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), *statements], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def small_disk(folder: Path, kilobytes: int = 512):
    """A real, tiny file system (tmpfs) at `folder`; it needs root, so the test skips without it."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write a filler file until the disk says it is full (ENOSPC)."""
    with open(folder / "filler", "wb", buffering=0) as fh:
        for size in (65536, 4096, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == 28, exc
    with pytest.raises(OSError):
        (folder / "one-more").write_bytes(b"x" * 4096)


@pytest.fixture(autouse=True)
def db(tmp_path, monkeypatch):
    path = tmp_path / "my_digits.sqlite"
    monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(path))
    return path


def drawing(mnist, i: int) -> tuple[bytes, np.ndarray, int]:
    """A real test digit drawn the way /draw stores it: dark ink on white, 280x280 PNG."""
    big = Image.fromarray(255 - mnist.x_test[i]).resize((280, 280), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    big.save(buf, "PNG")
    png = buf.getvalue()
    return png, preprocess.image_to_mnist(png).input, int(mnist.y_test[i])


def test_round_trip_keeps_everything(small_mnist, db):
    items = [drawing(small_mnist, i) for i in range(5)]
    ids = [my_digits.add(*item) for item in items]
    assert db.is_file() and ids == sorted(ids)
    stored = my_digits.all_digits()
    assert [d.id for d in stored] == ids
    for d, (png, input28, label) in zip(stored, items, strict=True):
        assert d.png == png and d.label == label
        assert np.array_equal(d.input, np.round(input28 * 255).astype(np.uint8))
        assert d.created.endswith("Z")
    x, y, got_ids = my_digits.arrays()
    assert x.shape == (5, 28, 28) and x.dtype == np.uint8 and list(y) == [it[2] for it in items]


def test_relabel_and_delete(small_mnist):
    a = my_digits.add(*drawing(small_mnist, 0))
    b = my_digits.add(*drawing(small_mnist, 1))
    my_digits.relabel(a, 9)
    my_digits.delete(b)
    assert [(d.id, d.label) for d in my_digits.all_digits()] == [(a, 9)]
    with pytest.raises(LabError, match="no saved digit"):
        my_digits.delete(b)
    with pytest.raises(LabError, match="0 to 9"):
        my_digits.relabel(a, 10)


@pytest.mark.parametrize("png, input28, label, message", [
    (b"GIF89a...", np.zeros((28, 28)), 3, "PNG"),
    (None, np.zeros((20, 20)), 3, "28x28"),
    (None, np.zeros((28, 28)), -1, "0 to 9"),
    (None, np.zeros((28, 28)), True, "0 to 9"),
    (None, np.zeros((28, 28)), "3", "0 to 9"),
])
def test_bad_rows_are_refused_and_nothing_is_written(small_mnist, png, input28, label, message):
    good = drawing(small_mnist, 0)
    with pytest.raises(LabError, match=message):
        my_digits.add(png or good[0], input28, label)
    assert my_digits.all_digits() == []


def test_a_failing_batch_writes_nothing(small_mnist):
    my_digits.add(*drawing(small_mnist, 0))
    batch = [drawing(small_mnist, 1), drawing(small_mnist, 2), (b"not a png", np.zeros((28, 28)), 1)]
    with pytest.raises(LabError):
        my_digits.add_many(batch)
    assert len(my_digits.all_digits()) == 1


def test_a_crash_mid_write_leaves_the_database_consistent(small_mnist, db):
    """A process killed halfway through a many-row write: on reopening, none of its rows exist."""
    my_digits.add(*drawing(small_mnist, 0))
    png, input28, label = drawing(small_mnist, 1)
    np.save(db.with_suffix(".npy"), input28)
    (db.parent / "drawing.png").write_bytes(png)
    script = textwrap.dedent(f"""
        import os, numpy as np
        from pathlib import Path
        from mnist_core import my_digits
        png = Path({str(db.parent / 'drawing.png')!r}).read_bytes()
        x = np.load({str(db.with_suffix('.npy'))!r})
        def rows():
            for i in range(50):
                yield png, x, {label}
                if i == 25:
                    os._exit(9)  # dies inside the transaction, rows 0-25 already inserted but not committed
        my_digits.add_many(rows())
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert len(my_digits.all_digits()) == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    my_digits.add(png, input28, label)  # still writable
    assert len(my_digits.all_digits()) == 2


def test_a_damaged_file_gives_one_clear_message_and_can_be_moved_aside(small_mnist, db):
    my_digits.add(*drawing(small_mnist, 0))
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LabError, match="damaged") as info:
        my_digits.all_digits()
    assert "\n" not in str(info.value) and str(db) in str(info.value)
    with pytest.raises(LabError, match="damaged"):
        my_digits.add(*drawing(small_mnist, 1))
    kept = my_digits.move_aside()
    assert kept.read_bytes().startswith(b"this is not")  # kept, never deleted
    assert my_digits.all_digits() == []
    my_digits.add(*drawing(small_mnist, 1))
    assert len(my_digits.all_digits()) == 1


def test_a_foreign_sqlite_file_is_refused(db):
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE digits (x TEXT)")
    with pytest.raises(LabError, match="not a my-digits database"):
        my_digits.all_digits()


def test_zip_export_import_round_trip(small_mnist, tmp_path, monkeypatch):
    items = [drawing(small_mnist, i) for i in range(4)]
    my_digits.add_many(items)
    blob = my_digits.export_zip()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = zf.namelist()
        labels = zf.read("labels.csv").decode()
    assert len([n for n in names if n.endswith(".png")]) == 4 and labels.startswith("file,label,created")
    monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(tmp_path / "other.sqlite"))
    assert my_digits.import_zip(blob) == 4
    back = my_digits.all_digits()
    assert [d.label for d in back] == [it[2] for it in items] and [d.png for d in back] == [it[0] for it in items]
    # The 28x28 inputs are re-made from the PNGs by the one preprocessing path, so they match.
    assert all(np.array_equal(d.input, np.round(it[1] * 255).astype(np.uint8)) for d, it in zip(back, items, strict=True))


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("files, message", [
    ({"a.png": b"x"}, "no labels.csv"),
    ({"labels.csv": b"file,label\nmissing.png,3\n"}, "no file 'missing.png'"),
    ({"labels.csv": b"file,label\na.png,x\n", "a.png": b"\x89PNG\r\n\x1a\n"}, "label must be 0-9"),
    ({"labels.csv": b"file,label\na.png,3\n", "a.png": b"GIF89a"}, "not a PNG"),
])
def test_bad_zips_are_refused_whole(small_mnist, files, message):
    with pytest.raises(LabError, match=message):
        my_digits.import_zip(_zip(files))
    with pytest.raises(LabError, match="not a zip"):
        my_digits.import_zip(b"PK garbage")
    assert my_digits.all_digits() == []


def test_measure_accuracy_confusion_and_digits_every_model_gets_wrong():
    labels = np.array([0, 1, 2, 3])
    a = np.eye(10)[[0, 1, 5, 5]]  # wrong on items 2 and 3
    b = np.eye(10)[[0, 7, 2, 5]]  # wrong on items 1 and 3
    report = evaluate.my_digits_report({"a": a, "b": b}, labels)
    assert report["models"]["a"]["accuracy"] == 0.5 and report["models"]["b"]["accuracy"] == 0.5
    assert report["models"]["a"]["confusion_matrix"][2][5] == 1
    assert list(report["all_wrong"]) == [3]


def test_fine_tune_saves_a_child_naming_its_parent(small_mnist, registry_with):
    from mnist_core.finetune import fine_tune

    registry_with("tiny")
    my_digits.add_many([drawing(small_mnist, i) for i in range(6)])
    events = []
    meta = fine_tune("tiny", "tiny-mine", epochs=1, sample=500, mnist=small_mnist, on_event=events.append)
    saved = registry.read_metadata("tiny-mine")
    assert saved["parent"] == "tiny" and saved["fine_tune"]["parent"] == "tiny"
    assert saved["fine_tune"]["my_digits"] == 6 and saved["fine_tune"]["mnist_images"] == 500
    assert saved["fine_tune"]["held_out"] == 0 and "optimistic" in saved["fine_tune"]["note"]  # 6 is too few
    for when in ("before", "after"):
        assert 0 <= saved["fine_tune"][when]["my_digits_accuracy"] <= 1
    assert saved["test"]["n"] == len(small_mnist.y_test) == meta["test"]["n"]
    assert saved["eval_images_per_second"] > 0
    assert saved["fine_tune"]["after"]["mnist_test_accuracy"] == saved["test"]["accuracy"]
    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "done"
    assert registry.inspect("tiny").ok  # the parent is untouched
    child = registry.load("tiny-mine")
    assert not np.allclose(child.get_layer("dense1").kernel, registry.load("tiny").get_layer("dense1").kernel)


def test_with_enough_digits_a_quarter_is_held_out_of_fine_tuning_and_scored_alone(small_mnist, registry_with):
    from mnist_core.finetune import fine_tune, hold_out

    x, y = small_mnist.x_test[:12], small_mnist.y_test[:12]
    (x_tune, _), (x_held, _) = hold_out(x, y, seed=0)
    assert len(x_tune) == 9 and len(x_held) == 3
    tuned, held = {t.tobytes() for t in x_tune}, {h.tobytes() for h in x_held}
    assert not tuned & held and len(tuned | held) == 12  # disjoint, and together every digit

    registry_with("tiny")
    my_digits.add_many([drawing(small_mnist, i) for i in range(12)])
    events = []
    meta = fine_tune("tiny", "tiny-held", epochs=1, sample=500, mnist=small_mnist, on_event=events.append)
    summary = meta["fine_tune"]
    assert summary["my_digits"] == 12 and summary["held_out"] == 3 and "held out" in summary["note"]
    # only the 9 tuned digits are mixed in: 500 MNIST images plus 9 digits repeated
    assert events[0]["train_size"] == 500 + 9 * summary["my_digits_repeat"]
    for when in ("before", "after"):
        assert summary[when]["my_digits_accuracy"] * 3 == pytest.approx(round(summary[when]["my_digits_accuracy"] * 3))


def test_fine_tune_without_digits_or_with_a_taken_name_is_refused(small_mnist, registry_with):
    from mnist_core.finetune import fine_tune

    registry_with("tiny", "taken")
    with pytest.raises(LabError, match="no saved digits"):
        fine_tune("tiny", "tiny-mine", mnist=small_mnist)
    with pytest.raises(LabError, match="already exists"):
        fine_tune("tiny", "taken", mnist=small_mnist)
    assert not registry.exists("tiny-mine")


def test_finetune_cli_bad_parent_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "mnist_core", "finetune", "--parent", "../etc"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "bad model name" in proc.stderr


def test_fine_tune_job_runs_in_the_background(small_mnist, registry_with, tmp_path, monkeypatch):
    """jobs.start_fine_tune launches the CLI; MNIST comes from a fixture npz so the job stays small."""
    from mnist_core import jobs

    registry_with("tiny")
    my_digits.add_many([drawing(small_mnist, i) for i in range(3)])
    job = jobs.start_fine_tune("tiny", "tiny-job", epochs=1)
    done = jobs.wait(job.id, timeout=300)
    assert done.state == "done", (done.message, (tmp_path / "jobs").exists())
    assert done.last("done")["fine_tune"]["parent"] == "tiny"
    assert registry.read_metadata("tiny-job")["parent"] == "tiny"


def test_drawing_png_is_white_ink_on_black_whatever_the_source(small_mnist):
    digit = small_mnist.x_test[0]
    canvas = np.zeros((280, 280, 4), np.uint8)  # the canvas: white strokes on a transparent background
    canvas[..., :3] = 255
    canvas[..., 3] = np.asarray(Image.fromarray(digit).resize((280, 280)))
    scan = Image.fromarray(255 - digit).resize((560, 560))  # dark ink on white paper, larger than the canvas
    for source in (canvas, scan):
        img = Image.open(io.BytesIO(my_digits.drawing_png(source)))
        arr = np.asarray(img)
        assert img.format == "PNG" and img.mode == "L" and img.size == (280, 280)
        assert arr[0, 0] < 30 and arr.max() > 200  # dark background, bright ink
        # Stored and re-read, it gives the same model input as the original drawing.
        again = preprocess.to_mnist(img).input
        assert np.abs(again - preprocess.to_mnist(source).input).mean() < 0.02


def test_evaluate_models_on_my_digits(small_mnist, registry_with):
    registry_with("tiny", default=True)
    assert evaluate.on_my_digits({"tiny": registry.load("tiny")}) is None
    my_digits.add_many([drawing(small_mnist, i) for i in range(20)])
    models = {name: registry.load(name) for name in ("default", "tiny")}
    report = evaluate.on_my_digits(models)
    assert report["x"].shape == (20, 28, 28) and list(report["y"]) == list(small_mnist.y_test[:20])
    assert report["models"]["default"]["accuracy"] >= 0.9  # real digits, a 99% model
    assert sum(map(sum, report["models"]["tiny"]["confusion_matrix"])) == 20
    for i in report["all_wrong"]:
        for model in models.values():
            x = report["x"][i : i + 1].astype(np.float32)[..., None] / 255.0
            assert np.asarray(model(x)).argmax() != report["y"][i]
