"""Issue 12, group 5: names and text from files are data, never markup or terminal control.

A folder in saved_models/ can be created outside the lab with any name; the pages that render markdown must
show it as text (checked by rendering the page's markdown with a CommonMark parser, markdown-it-py), plotly
figures must not carry its HTML, and the CLI must print it on one line without control characters. A model
folder that is a symbolic link is listed as unsafe, and never followed: not on delete, not on rename, and a
deleted one never comes back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from hostile_util import ROOT, run_cli, temp_leftovers
from markdown_it import MarkdownIt

from dashboard import charts
from mnist_core import registry
from mnist_core.display import markdown_literal, printable
from mnist_core.errors import LabError

IMAGE = "![x](https:evil.example)"  # a folder name cannot hold '/', but a scheme-relative address needs none
HOSTILE_FOLDERS = {
    "image": IMAGE,
    "link": "[click me](javascript:alert(1))",
    "heading": "x\n# FAKE HEADING",
    "html": "<img src=https:evil.example>",
    "directive": ":red[big red] :warning: :material_home:",
    "list": "1. step one",
}
RENDERER = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # Streamlit renders GFM


def _html(markdown: str) -> str:
    return RENDERER.render(markdown)


def test_compare_shows_hostile_folder_names_as_text(app_page, registry_with):
    models = registry_with("good")
    for name in HOSTILE_FOLDERS.values():
        (models / name).mkdir()
    at = app_page("views/compare.py")
    assert not at.exception
    lines = [m.value for m in at.markdown if "foreign" in m.value]
    assert len(lines) == len(HOSTILE_FOLDERS), [m.value for m in at.markdown]
    page_html = "".join(_html(line) for line in lines)
    for tag in ("<img", "<a ", "<h1", "<ol", "<script"):
        assert tag not in page_html, (tag, page_html)
    assert ":red[" in page_html  # shown as the text it is, not turned into red text
    for name in HOSTILE_FOLDERS.values():  # each name appears as itself (escapes for its newline)
        assert printable(name) in _html(markdown_literal(name)).replace("&lt;", "<").replace("&gt;", ">") \
            .replace("&quot;", '"').replace("&amp;", "&")
    assert at.multiselect(key="compare_pick").options == ["good"]


@pytest.mark.parametrize("kind", sorted(HOSTILE_FOLDERS))
def test_markdown_literal_renders_as_one_paragraph_of_the_same_text(kind):
    name = HOSTILE_FOLDERS[kind]
    html = _html(f"- **{markdown_literal(name)}** (foreign): {markdown_literal(name)}")
    assert html.count("<li>") == 1 and "<img" not in html and "<a " not in html and "<h1" not in html, html
    assert "\n#" not in html


def test_chart_titles_and_legends_carry_no_html_from_names():
    evil = '<a href="https://evil.example">x</a><img src=x>'
    figures = [charts.per_class_bars({evil: [0.9] * 10, "good": [0.8] * 10}),
               charts.training_curves({evil: [{"epoch": 1, "loss": 0.5, "val_loss": 0.6}], "good": []}),
               charts.confusion_matrix([[1] * 10] * 10, title=f"{evil} minus good"),
               charts.probability_heatmap([evil], [[0.1] * 10]),
               charts.image_grid([[[0.0] * 4] * 4], [evil])]
    for fig in figures:
        text = fig.to_json()
        assert "<a href" not in text and "<img" not in text, text[:400]
        assert "&lt;a href" in text  # still there, as text


def test_cli_models_prints_each_hostile_name_on_its_own_line_without_control_characters(capsys, registry_with):
    models = registry_with("good")
    names = ["fake\ngood      ok      mlp   999999  1.0000", "\x1b[2J\x1b[Hcleared", "right\u202eto-left", "bell\x07"]
    for name in names:
        (models / name).mkdir()
    code, out, err = run_cli(capsys, "models")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1 + 1 + len(names), out  # the header, "good", and one line per folder
    assert not any(ch in out for ch in "\x1b\x07\u202e"), repr(out)
    assert sum(line.startswith("good ") for line in lines) == 1, out  # no forged second "good" row
    assert "fake\\ngood" in out and "\\x1b[2J" in out and "\\u202e" in out


def test_printable_and_markdown_literal_keep_ordinary_names():
    for name in ("default", "cnn-c32-d128_2", "digit.png", "0.0.0.0", "é-unicode"):
        assert printable(name) == name
    assert markdown_literal("digit.png") == "digit.png" and markdown_literal("my_model") == r"my\_model"


# ---------- symbolic links in saved_models/ ----------


@pytest.fixture
def linked(registry_with, tmp_path):
    """saved_models/linked -> a real lab model folder outside the registry."""
    models = registry_with("good")
    outside = tmp_path / "outside" / "linked"
    outside.parent.mkdir()
    shutil.copytree(models / "good", outside)
    (models / "linked").symlink_to(outside, target_is_directory=True)
    return models, outside


def test_symlinked_model_folder_is_listed_unsafe_and_never_loaded(linked):
    models, outside = linked
    entries = {e.name: e for e in registry.list_models()}
    assert entries["good"].ok
    assert entries["linked"].status == "unsafe" and "symbolic link" in entries["linked"].reason
    with pytest.raises(LabError, match="symbolic link"):
        registry.load("linked")
    with pytest.raises(LabError, match="symbolic link"):
        registry.update_metadata("linked", {"note": "written through the link"})
    assert "note" not in (outside / registry.METADATA_FILE).read_text()


def test_symlinked_model_file_is_listed_unsafe(registry_with, tmp_path):
    models = registry_with("good", "other")
    (models / "other" / registry.MODEL_FILE).unlink()
    (models / "other" / registry.MODEL_FILE).symlink_to(models / "good" / registry.MODEL_FILE)
    entry = registry.inspect("other")
    assert entry.status == "unsafe" and "model.keras is a symbolic link" in entry.reason


def test_delete_and_rename_never_follow_a_link(linked):
    models, outside = linked
    with pytest.raises(LabError, match="symbolic link"):
        registry.rename("linked", "renamed")
    assert (models / "linked").is_symlink() and not (models / "renamed").exists()
    registry.delete("linked")
    assert not (models / "linked").exists() and not (models / "linked").is_symlink()
    assert (outside / registry.MODEL_FILE).is_file()  # what it pointed to is untouched
    assert [e.name for e in registry.list_models()] == ["good"]
    assert temp_leftovers(models) == []


SAVE_OVER = """
import keras
from mnist_core import registry
model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
registry.save("linked", model, {"note": "saved over the link"}, overwrite=True)
"""


def test_a_deleted_model_saved_over_a_link_never_comes_back(linked):
    """A save over a linked name moves the link aside; once that process has ended, the next sweep must not
    restore it after the user deletes the new model."""
    models, outside = linked
    done = subprocess.run([sys.executable, "-c", SAVE_OVER], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr
    assert not (models / "linked").is_symlink() and registry.read_metadata("linked")["note"] == "saved over the link"
    registry.delete("linked")
    assert "linked" not in [e.name for e in registry.list_models()]  # the listing sweeps first
    assert not (models / "linked").exists()
    assert temp_leftovers(models) == []  # the link moved aside is gone, not waiting to be put back
    assert (outside / registry.MODEL_FILE).is_file()
