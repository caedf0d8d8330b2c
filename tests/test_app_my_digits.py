"""AppTest of /my-digits: the grid, relabel, delete, a damaged database, zip import and a fine-tune job."""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest
from PIL import Image

from mnist_core import evaluate, jobs, my_digits, registry
from tests.test_my_digits import BUSY, drawing, fill, small_disk, writer_holding

PAGE = "views/my_digits.py"


@pytest.fixture
def open_my_digits(app_page):
    """/my-digits has a url_path unlike its file name, so AppTest must run the app once before switching to it."""

    def run():
        at = app_page()
        return at.switch_page(PAGE).run()

    return run


@pytest.fixture(autouse=True)
def db(tmp_path, monkeypatch):
    path = tmp_path / "my_digits.sqlite"
    monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(path))
    return path


def test_empty_collection_says_how_to_start(open_my_digits, registry_with):
    registry_with("tiny")
    at = open_my_digits()
    assert not at.exception and "No saved digits yet" in at.info[0].value
    assert "Needs at least one saved digit" in " ".join(c.value for c in at.caption)


def test_grid_counts_relabel_and_delete(open_my_digits, registry_with, small_mnist):
    registry_with("tiny")
    ids = [my_digits.add(*drawing(small_mnist, i)) for i in range(3)]
    labels = [int(small_mnist.y_test[i]) for i in range(3)]
    at = open_my_digits()
    assert not at.exception
    assert at.metric[0].value == "3"
    assert [at.selectbox(key=f"my_label_{i}").value for i in ids] == labels
    new_label = (labels[0] + 1) % 10
    at.selectbox(key=f"my_label_{ids[0]}").set_value(new_label).run()
    assert not at.exception and f"is now a {new_label}" in at.success[0].value
    assert my_digits.all_digits()[0].label == new_label
    at.button(key=f"my_del_{ids[1]}").click().run()
    assert not at.exception and [d.id for d in my_digits.all_digits()] == [ids[0], ids[2]]
    assert at.metric[0].value == "2"
    with pytest.raises(KeyError):
        at.selectbox(key=f"my_label_{ids[1]}")


def test_damaged_database_is_one_message_and_can_be_moved_aside(open_my_digits, registry_with, db, small_mnist):
    registry_with("tiny")
    my_digits.add(*drawing(small_mnist, 0))
    db.write_bytes(b"\x00garbage" * 500)
    at = open_my_digits()
    assert not at.exception and "is damaged (" in at.error[0].value
    at.button[0].click().run()
    assert not at.exception and "kept as" in at.success[0].value and "No saved digits yet" in at.info[0].value
    assert any(p.name.startswith("my_digits.sqlite.damaged-") for p in db.parent.iterdir())
    # The rest of the app never touches this file: another page still works.
    other = at.switch_page("views/inspect.py").run()
    assert not other.exception and not other.error


def test_import_a_zip(open_my_digits, registry_with, small_mnist, tmp_path, monkeypatch):
    registry_with("tiny")
    my_digits.add_many([drawing(small_mnist, i) for i in range(4)])
    blob = my_digits.export_zip()
    monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(tmp_path / "fresh.sqlite"))
    at = open_my_digits()
    at.file_uploader(key="my_import").set_value(("mine.zip", blob, "application/zip")).run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception and "Imported 4 digits" in at.success[0].value and at.metric[0].value == "4"
    at.file_uploader(key="my_import").set_value(("bad.zip", b"nope", "application/zip")).run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert "bad.zip: not a zip file" in at.error[0].value and at.metric[0].value == "4"


def test_fine_tune_from_the_page(open_my_digits, registry_with, small_mnist):
    registry_with("tiny")
    my_digits.add_many([drawing(small_mnist, i) for i in range(3)])
    at = open_my_digits()
    assert at.selectbox(key="my_parent").value == "tiny"
    assert at.text_input(key="my_new_name_tiny").value == "tiny-mine"
    next(b for b in at.button if b.label == "Fine-tune").click().run()
    assert not at.exception and "Fine-tuning tiny into tiny-mine" in [h.value for h in at.subheader]
    assert jobs.latest() is None  # the job belongs to the page's browser session, not to everyone
    job = jobs.latest(at.session_state["browser_session"], kinds=("finetune",))
    assert job.subject == {"parent": "tiny", "epochs": 1}
    assert jobs.wait(job.id, timeout=300).state == "done"
    at.run()
    assert not at.exception and "Saved as **tiny-mine**." in at.success[0].value
    assert "Fine-tuned from tiny on 3 of your digits." in [c.value for c in at.caption]
    table = at.dataframe[0].value
    assert list(table.columns) == ["accuracy on", "before (tiny)", "after (tiny-mine)"]
    assert table["accuracy on"][0] == "my digits (also used for tuning: too few to hold any out)"  # 3 < 8
    assert registry.read_metadata("tiny-mine")["parent"] == "tiny"


def _upload_digit(at, mnist, i: int):
    buf = io.BytesIO()
    Image.fromarray(255 - np.asarray(Image.fromarray(mnist.x_test[i]).resize((280, 280)))).save(buf, "PNG")
    at.file_uploader(key="draw_upload").set_value((f"digit{i}.png", buf.getvalue(), "image/png")).run()
    return at


def test_draw_page_saves_with_the_confirmed_or_corrected_label(app_page, registry_with, full_mnist):
    registry_with(default=True)
    at = _upload_digit(app_page("views/draw.py"), full_mnist, 0)
    label = int(full_mnist.y_test[0])
    box = at.selectbox(key=f"my_save_label_{label}")
    assert box.value == label  # proposes the prediction
    next(b for b in at.button if b.label == "Save to my digits").click().run()
    assert not at.exception and f"Saved to my digits as a {label}" in at.success[0].value
    at.selectbox(key=f"my_save_label_{label}").set_value(3).run()  # the user corrects it
    next(b for b in at.button if b.label == "Save to my digits").click().run()
    saved = my_digits.all_digits()
    assert [d.label for d in saved] == [label, 3]
    assert np.asarray(Image.open(io.BytesIO(saved[0].png))).shape == (280, 280)


def test_draw_page_with_a_damaged_database_still_predicts(app_page, registry_with, full_mnist, db):
    registry_with(default=True)
    db.write_bytes(b"garbage" * 100)
    at = _upload_digit(app_page("views/draw.py"), full_mnist, 1)
    next(b for b in at.button if b.label == "Save to my digits").click().run()
    assert not at.exception and "is damaged (" in at.error[0].value
    assert next(m for m in at.metric if m.label == "Prediction").value == str(full_mnist.y_test[1])


def test_compare_shows_accuracy_on_my_digits(app_page, registry_with, small_mnist):
    registry_with("tiny", default=True)
    my_digits.add_many([drawing(small_mnist, i) for i in range(12)])
    at = app_page("views/compare.py")
    assert not at.exception
    assert "My digits" in [s.value for s in at.subheader]
    table = at.table[0].value
    assert set(table.index) == set(at.multiselect(key="compare_pick").value)
    report = evaluate.on_my_digits({n: registry.load(n) for n in table.index})
    for name in table.index:
        assert table.loc[name, "my digits accuracy"] == f"{report['models'][name]['accuracy']:.2%}"
    assert "12 of your digits" in " ".join(c.value for c in at.caption)


def test_a_busy_database_says_busy_offers_no_move_and_comes_back(open_my_digits, registry_with, db, small_mnist,
                                                                  monkeypatch):
    registry_with("tiny")
    my_digits.add(*drawing(small_mnist, 0))
    monkeypatch.setattr(my_digits, "BUSY_TIMEOUT_SECONDS", 0.3)
    with writer_holding(db, "BEGIN EXCLUSIVE"):  # another process committing a large import
        at = open_my_digits()
        assert not at.exception and BUSY in at.error[0].value and "damaged" not in at.error[0].value
        assert [b.label for b in at.button] == ["Try again"]  # nothing to move: the file is sound
    next(b for b in at.button if b.label == "Try again").click().run()
    assert not at.exception and not at.error and at.metric[0].value == "1"


def test_moving_a_damaged_database_aside_waits_for_a_live_writer(open_my_digits, registry_with, db, small_mnist,
                                                                  monkeypatch):
    registry_with("tiny")
    my_digits.add_many([drawing(small_mnist, i) for i in range(3)])
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE digits SET label = 12 WHERE id = 2")
    monkeypatch.setattr(my_digits, "MOVE_ASIDE_WAIT_SECONDS", 0.3)
    at = open_my_digits()
    assert not at.exception and "is damaged (digit 2" in at.error[0].value and "move it aside" in at.error[0].value
    with writer_holding(db, "BEGIN IMMEDIATE"):
        at.button[0].click().run()
        assert not at.exception and any(BUSY in e.value for e in at.error) and db.exists()
    at.button[0].click().run()
    assert not at.exception and "kept as" in at.success[0].value and not db.exists()


def test_on_a_full_disk_the_pages_read_and_a_save_says_full(app_page, registry_with, full_mnist, tmp_path,
                                                             monkeypatch):
    registry_with(default=True)
    with small_disk(tmp_path / "disk") as disk:
        monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(disk / "my_digits.sqlite"))
        my_digits.add_many([drawing(full_mnist, i) for i in range(3)])
        fill(disk)
        at = _upload_digit(app_page("views/draw.py"), full_mnist, 1)
        next(b for b in at.button if b.label == "Save to my digits").click().run()
        assert not at.exception and "is full, so nothing was written" in at.error[0].value
        assert next(m for m in at.metric if m.label == "Prediction").value == str(full_mnist.y_test[1])
        page = at.switch_page("views/my_digits.py").run()
        assert not page.exception and not page.error and page.metric[0].value == "3"


def test_compare_with_a_busy_database_says_busy_and_keeps_the_rest(app_page, registry_with, small_mnist, db,
                                                                   monkeypatch):
    registry_with("tiny", default=True)
    my_digits.add_many([drawing(small_mnist, i) for i in range(3)])
    monkeypatch.setattr(my_digits, "BUSY_TIMEOUT_SECONDS", 0.3)
    with writer_holding(db, "BEGIN EXCLUSIVE"):
        at = app_page("views/compare.py")
    assert not at.exception and [e.value for e in at.error if BUSY in e.value]
    assert not [e.value for e in at.error if BUSY not in e.value]
    assert {"My digits", "Per-class accuracy", "Rename, delete or download"} <= {s.value for s in at.subheader}
