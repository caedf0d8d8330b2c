"""Compare's robustness view (AppTest) and `python -m mnist_core test --robustness` (CLI)."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from mnist_core import robustness

SUBSET = 120  # small, to keep the tests fast; the real default is robustness.SUBSET (2,000)


def charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def robustness_curves(at) -> dict | None:
    return next((c for c in charts(at) if any("rotation" in a.get("text", "")
                                               for a in c["layout"].get("annotations", []))), None)


def test_compare_measures_on_request_then_shows_cached_curves(registry_with, app_page, full_mnist, monkeypatch):
    monkeypatch.setattr(robustness, "SUBSET", SUBSET)
    registry_with("tiny", default=True)
    at = app_page("views/compare.py", clean=True)
    assert set(at.multiselect(key="compare_pick").value) == {"tiny", "default"}
    assert robustness_curves(at) is None  # nothing measured yet: a button, no numbers
    at.button(key="robustness_measure").click().run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "robustness_measure"]  # measured: the offer is gone
    fig = robustness_curves(at)
    assert fig is not None
    for name in ("tiny", "default"):
        stored = robustness.cached(name, full_mnist)
        assert stored is not None and stored["subset"] == SUBSET
        traces = [t for t in fig["data"] if t["name"] == name]
        assert len(traces) == len(robustness.LADDERS)  # a curve per perturbation, one colour per model
        assert len({t["line"]["color"] for t in traces}) == 1
        shift = next(t for t in traces if t["xaxis"] == "x")
        assert shift["y"] == pytest.approx(stored["perturbations"]["shift"]["accuracy"])
    table = next(d.value for d in at.dataframe if "summary" in d.value.columns)
    assert list(table["model"]) == at.multiselect(key="compare_pick").value
    default_row = table[table["model"] == "default"].iloc[0]
    assert default_row["summary"] == pytest.approx(robustness.cached("default", full_mnist)["summary"])
    assert default_row["summary"] > table[table["model"] == "tiny"].iloc[0]["summary"]  # a 99% CNN vs a 1-epoch MLP
    strip = next(c for c in charts(at) if any(a.get("text", "").startswith("pgd ")
                                              for a in c["layout"].get("annotations", [])))
    titles = [a["text"] for a in strip["layout"]["annotations"]]
    assert "shift 3" in titles and "pgd 0.2" in titles  # one digit through every ladder, each level titled

    from dashboard.components import robustness_view

    assert robustness_view.summary_score("default") == pytest.approx(default_row["summary"])

    again = app_page("views/compare.py", clean=True)  # a new session: read from the cache, no button
    assert robustness_curves(again) is not None
    assert not [b for b in again.button if b.key == "robustness_measure"]


def test_summary_score_is_none_until_measured(registry_with, full_mnist):
    registry_with("tiny")
    from dashboard.components import robustness_view

    assert robustness_view.summary_score("tiny") is None
    assert robustness_view.summary_score("no-such-model") is None


# ---------- CLI ----------


def run_main(capfd, monkeypatch, *argv: str) -> tuple[int, str, str]:
    from mnist_core import cli

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    capfd.readouterr()
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def test_cli_robustness_table_and_json(registry_with, capfd, monkeypatch, full_mnist):
    registry_with("tiny", "tiny2")
    code, out, err = run_main(capfd, monkeypatch, "test", "--models", "tiny,tiny2", "--robustness",
                              "--subset", str(SUBSET), "--seed", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["perturbation", "level", "unit", "tiny", "tiny2"]
    stored = robustness.cached("tiny", full_mnist, subset=SUBSET, seed=3)
    rotation_20 = next(line for line in lines if line.startswith("rotation") and line.split()[1] == "20")
    assert float(rotation_20.split()[-1]) == pytest.approx(stored["perturbations"]["rotation"]["accuracy"][2], abs=1e-4)
    assert "summary" in out

    code, out, err = run_main(capfd, monkeypatch, "test", "--models", "tiny", "--robustness", "--json",
                              "--subset", str(SUBSET), "--seed", "3")
    assert code == 0, err
    result = json.loads(out)
    assert result["tiny"] == stored  # the second call is the cached one
    assert "measuring" not in err
    assert list(result["tiny"]["perturbations"]) == list(robustness.LADDERS)
    pgd = result["tiny"]["perturbations"]["pgd"]["accuracy"]
    assert pgd[0] == result["tiny"]["clean_accuracy"] and pgd[-1] < pgd[0]
    assert np.isfinite(result["tiny"]["summary"])


@pytest.mark.parametrize(("argv", "words"), [
    (("--models", "tiny,ghost"), "no model named 'ghost'"),
    (("--models", ",".join(f"m{i}" for i in range(9))), "at most 8 models"),
    (("--models", "tiny", "--subset", "0"), "robustness subset 0"),
    (("--models", "tiny", "--subset", "20000"), "robustness subset 20000"),
])
def test_cli_robustness_bad_input_exits_2(argv, words, registry_with, capfd, monkeypatch):
    registry_with("tiny")
    code, out, err = run_main(capfd, monkeypatch, "test", "--robustness", *argv)
    assert code == 2 and words in err and not out
    assert len(err.strip().splitlines()) == 1
