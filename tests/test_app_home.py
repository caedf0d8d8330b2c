"""AppTest of the Home page: a line and a link for every page, data status, the saved-models table, and the
fetch button."""

import pytest

PAGES = ["train", "compare", "explore", "draw", "inspect", "my-digits", "data"]  # url paths, sidebar order


def test_empty_registry(app_page):
    at = app_page("views/home.py")
    assert not at.exception
    assert at.title[0].value == "MNIST Model Lab"
    assert "sha256 checksums" in at.success[0].value and "10,000 test images" in at.success[0].value
    assert "No saved models yet" in at.info[0].value
    assert not at.dataframe


def test_models_table_lists_every_entry_and_broken_ones_say_why(app_page, registry_with):
    models = registry_with("tiny", default=True)
    (models / "empty-folder").mkdir()
    at = app_page("views/home.py")
    assert not at.exception
    table = at.dataframe[0].value.set_index("name")
    assert set(table.index) == {"default", "tiny", "empty-folder"}
    assert table.loc["default", "type"] == "cnn" and table.loc["default", "test_accuracy"] > 0.99
    assert table.loc["empty-folder", "status"] == "broken"
    assert "no model.keras" in table.loc["empty-folder", "reason"]
    assert "1 entry cannot be loaded" in at.caption[0].value


def test_every_other_page_has_a_link_and_a_line_saying_what_it_is_for(app_page):
    at = app_page("views/home.py")
    assert not at.exception
    links = at.page_link
    assert [link.proto.page for link in links] == PAGES  # each resolves to a page registered in app.py
    for link in links:
        title, what = link.value.split(" · ")
        assert title.startswith("**") and title.endswith("**")
        assert len(what.split()) >= 8 and "\n" not in what  # a sentence, on one line
        # Beside an open sidebar in an 800 px window a link label has 488 px; Streamlit cuts longer ones off.
        assert len(link.value.replace("**", "")) <= 75, link.value


def test_missing_mnist_offers_a_fetch_button(app_page, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "no-data-here"))
    monkeypatch.delenv("MNIST_DATA", raising=False)
    at = app_page("views/home.py")
    assert not at.exception
    assert "not downloaded yet" in at.warning[0].value
    assert [b.label for b in at.button] == ["Fetch MNIST"]
    assert "No saved models yet" in at.info[0].value  # the rest of Home still shows
    assert len(at.page_link) == len(PAGES)


@pytest.mark.parametrize("page", ["views/draw.py", "views/data.py"])
def test_pages_linked_from_home_render(app_page, registry_with, page):
    registry_with("tiny", default=True)
    at = app_page(page)
    assert not at.exception
