"""AppTest of /my-digits: the grid, relabel, delete, a damaged database, zip import and a fine-tune job."""

from __future__ import annotations

import pytest

from mnist_core import jobs, my_digits, registry
from tests.test_my_digits import drawing

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
    assert not at.exception and "damaged" in at.error[0].value
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
    assert not at.exception and "in the background" in at.info[0].value
    job = jobs.latest()
    assert jobs.wait(job.id, timeout=300).state == "done"
    at.run()
    assert not at.exception and "Saved tiny-mine, fine-tuned from tiny on 3" in at.success[0].value
    table = at.dataframe[0].value
    assert list(table.columns) == ["accuracy on", "before (tiny)", "after (tiny-mine)"]
    assert registry.read_metadata("tiny-mine")["parent"] == "tiny"
