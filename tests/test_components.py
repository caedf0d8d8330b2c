"""AppTests of the shared page pieces: components/messages (flash/show/error) and components/mnist_gate
(the one Fetch-MNIST action). Each runs a tiny script of its own through AppTest.from_function."""

from __future__ import annotations

import logging
import os

import pytest
from streamlit.testing.v1 import AppTest

from mnist_core import data

TIMEOUT = 60


@pytest.fixture(autouse=True)
def empty_streamlit_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def run(script, **kwargs) -> AppTest:
    at = AppTest.from_function(script, kwargs=kwargs, default_timeout=TIMEOUT)
    return at.run()


# ---------- messages ----------


def flash_and_show():
    import streamlit as st

    from dashboard.components import messages

    st.button("Save", on_click=messages.flash, args=("save", "success", "Saved digit 3."))
    st.button("Fail", on_click=messages.flash, args=("save", "error", "no saved digit with id 9"))
    st.button("Odd kind", on_click=messages.flash, args=("save", "shout", "hey"))
    st.write("before the slot")
    messages.show("save")
    messages.show("sidebar", st.sidebar)
    if st.session_state.get("to_sidebar"):
        messages.flash("sidebar", "info", "Shown in the sidebar.")


def test_a_flashed_message_shows_once_where_the_page_puts_it():
    at = run(flash_and_show)
    assert not at.exception and not at.success and not at.error
    at.button[0].click().run()
    assert [s.value for s in at.success] == ["Saved digit 3."]
    assert [m.value for m in at.markdown][-1] == "before the slot"  # drawn after the text, in the slot's place
    at.run()
    assert not at.success  # once: a rerun does not repeat it
    at.button[1].click().run()
    assert [e.value for e in at.error] == ["no saved digit with id 9"] and not at.success


def test_a_message_can_go_into_a_container():
    at = run(flash_and_show)
    at.session_state["to_sidebar"] = True
    at.run()  # flashed at the end of this run, shown in the sidebar on the next
    assert not at.sidebar.info
    at.session_state["to_sidebar"] = False
    at.run()
    assert [i.value for i in at.sidebar.info] == ["Shown in the sidebar."] and not at.main.info


def test_an_unknown_message_kind_is_refused():
    at = run(flash_and_show)
    at.button[2].click().run()
    assert at.exception and "unknown message kind 'shout'" in at.exception[0].message


def show_error(what):
    from dashboard.components import messages
    from mnist_core.errors import LabError

    if what == "lab":
        messages.error(LabError("model.keras: refusing to load\nsecond line"))
    elif what == "unexpected":
        messages.error(KeyError("spec"))
    elif what == "empty":
        messages.error("")
    else:
        messages.error(what)


def test_errors_are_one_line_and_unexpected_ones_are_logged(caplog):
    assert [e.value for e in run(show_error, what="lab").error] == ["model.keras: refusing to load"]
    assert [e.value for e in run(show_error, what="bad input: 3 lines\nmore").error] == ["bad input: 3 lines"]
    assert [e.value for e in run(show_error, what="empty").error] == ["Something went wrong (no details were given)"]
    with caplog.at_level(logging.ERROR, logger="dashboard.components.messages"):
        at = run(show_error, what="unexpected")
    assert [e.value for e in at.error] == ["'spec'"] and not at.exception
    logged = [r for r in caplog.records if r.name == "dashboard.components.messages"]
    assert len(logged) == 1 and logged[0].exc_info[0] is KeyError  # the traceback is on the server, not the page


# ---------- mnist_gate ----------


def gated_page(strict):
    import streamlit as st

    from dashboard.components import mnist_gate

    mnist = mnist_gate.require() if strict else mnist_gate.available()
    st.write(f"after the gate: {'no data' if mnist is None else f'{len(mnist.x_test)} test images'}")


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """An empty MNIST cache and no MNIST_DATA: a first run."""
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("MNIST_DATA", raising=False)
    return tmp_path / "empty-cache"


def _texts(at) -> list[str]:
    return [m.value for m in at.markdown]


def test_require_without_data_warns_offers_fetch_and_stops_the_page(no_mnist):
    at = run(gated_page, strict=True)
    assert not at.exception
    assert "MNIST is not downloaded yet" in at.warning[0].value
    assert [b.label for b in at.button] == ["Fetch MNIST"]
    assert not any(t.startswith("after the gate") for t in _texts(at))  # the page stopped at the gate


def test_available_without_data_offers_fetch_and_lets_the_page_go_on(no_mnist):
    at = run(gated_page, strict=False)
    assert not at.exception and [b.label for b in at.button] == ["Fetch MNIST"]
    assert "after the gate: no data" in _texts(at)


def test_with_data_the_gate_is_silent(full_mnist):
    at = run(gated_page, strict=True)
    assert not at.exception and not at.warning and not at.button
    assert "after the gate: 10000 test images" in _texts(at)


def test_a_failed_fetch_says_why_in_one_line_and_offers_fetch_again(no_mnist, tmp_path, monkeypatch):
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("MNIST_DATA", str(nowhere))  # the only source tried, so nothing goes to the network
    at = run(gated_page, strict=True)
    assert f"MNIST_DATA points to {nowhere}" in at.warning[0].value
    at.button[0].click().run()
    assert not at.exception
    assert at.status[0].label == "Fetching MNIST failed" and at.status[0].state == "error"
    error = at.error[0].value
    assert "\n" not in error and error.startswith(f"MNIST at {nowhere} (from --data or MNIST_DATA) is unusable")
    assert [b.label for b in at.button] == ["Fetch MNIST"]


def test_fetch_verifies_caches_and_reruns_into_the_page(full_mnist, no_mnist, tmp_path, monkeypatch):
    """A real fetch from a local source: MNIST_DATA names a folder that is empty at first, then gets the
    real files; Fetch verifies them, writes the cache and reruns, and the page carries on with the data."""
    source = tmp_path / "source"
    source.mkdir()
    monkeypatch.setenv("MNIST_DATA", str(source))
    at = run(gated_page, strict=True)
    assert "not found" in at.warning[0].value and [b.label for b in at.button] == ["Fetch MNIST"]

    for key, fname in data.FILES.items():
        (source / fname).write_bytes(data.idx_bytes(getattr(full_mnist, key)))
    os.utime(source, ns=(0, 0))  # a new stamp for the folder even on a coarse-clock file system
    at.button[0].click().run()
    assert not at.exception and not at.error and not at.warning
    assert "after the gate: 10000 test images" in _texts(at)
    assert data.load(no_mnist / data.CACHE_NAME).source == f"path {no_mnist / data.CACHE_NAME}"  # cached, verified
