"""dashboard/components/study_charts: Optuna's charts for a real tiny study, labelled in the lab's words."""

from __future__ import annotations

import re

import pytest

from mnist_core.explore import runner
from mnist_core.explore import space as spaces
from mnist_core.explore import study as studies

# Optuna's own labels; none may reach the page. Capital "Trial"/"Step" are Optuna's, the lab writes lower case.
OPTUNA_WORDS = re.compile(r"objective|intermediate|hyperparameter|distribution|#trials|best value|infeasible|Trial|Step",
                          re.IGNORECASE)
CASE_SENSITIVE = {"Trial", "Step"}


def optuna_words(text: str) -> list[str]:
    found = [m.group(0) for m in OPTUNA_WORDS.finditer(text)]
    return [w for w in found if w not in ("trial", "step") or w in CASE_SENSITIVE and w[0].isupper()]


@pytest.fixture
def tiny_study(small_mnist):
    """Four real trials on the fixture: two parameters, two epochs each, so every chart has data."""
    checked = spaces.validate({"blocks": [0], "layers": [1], "dense": [8, 32], "rate": [0.003, 0.01]})
    studies.create_or_resume("charts", studies.open_storage(), checked, 2000, epochs=2)
    return runner.run("charts", n_trials=4, sampler="grid", seed=0, say=lambda line: None, mnist=small_mnist).study


def labels(fig) -> list[str]:
    """Every text a reader sees as a label: titles, axis titles and ticks, legend names, colour bars, hovers."""
    layout = fig.layout
    texts = [layout.title.text, layout.xaxis.title.text, layout.yaxis.title.text,
             *(layout.xaxis.ticktext or []), *(layout.yaxis.ticktext or [])]
    for trace in fig.data:
        texts.append(trace.name)
        marker = getattr(trace, "marker", None)
        if marker is not None and getattr(marker, "colorbar", None) is not None:
            texts.append(marker.colorbar.title.text)
        for row in getattr(trace, "customdata", None) or []:
            texts.extend(str(v) for v in (row if isinstance(row, (list, tuple)) else [row]))
        hover = getattr(trace, "hovertemplate", None)
        texts.extend(hover if isinstance(hover, (list, tuple)) else [hover])  # one per bar, or one for all
    return [t for t in texts if t]


def test_every_chart_speaks_the_labs_words(tiny_study):
    from dashboard.components import study_charts

    assert len([t for t in tiny_study.trials if t.state.name == "COMPLETE"]) >= 2
    for name, build in study_charts.CHARTS.items():
        fig = build(tiny_study)
        texts = labels(fig)
        assert texts, name
        bad = {t: optuna_words(t) for t in texts if optuna_words(t)}
        assert not bad, (name, bad)
    history = study_charts.history(tiny_study)
    assert (history.layout.xaxis.title.text, history.layout.yaxis.title.text) == ("trial", "validation accuracy")
    assert {t.name for t in history.data} >= {"validation accuracy", "best so far"}
    curves = study_charts.learning_curves(tiny_study)
    assert curves.layout.xaxis.title.text == "epoch"
    assert sorted(t.name for t in curves.data) == [f"trial {t.number}" for t in tiny_study.trials]
    parallel = study_charts.parallel_coordinates(tiny_study)
    assert parallel.layout.xaxis.ticktext[0] == "validation accuracy"
    assert set(parallel.layout.xaxis.ticktext[1:]) == {"blocks", "layers", "dense", "rate"}


def test_the_word_check_catches_optunas_labels():
    assert optuna_words("Objective Value") and optuna_words("Trial") and optuna_words("Intermediate Value")
    assert optuna_words("Hyperparameter Importance") and optuna_words("#Trials") and optuna_words("Step")
    assert optuna_words("rate (CategoricalDistribution): 0.05")
    assert not optuna_words("validation accuracy by trial") and not optuna_words("epoch")


def test_show_draws_four_tabs_in_a_page(tiny_study):
    from streamlit.testing.v1 import AppTest

    def page():
        from dashboard.components import study_charts
        from mnist_core.explore import study as studies

        study_charts.show(studies.load_study("charts", studies.open_storage()))

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["Parallel coordinates", "History", "Importances", "Learning curves"]
    assert not [c for c in at.caption if "Not available" in c.value]
