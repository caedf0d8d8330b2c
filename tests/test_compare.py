"""Unit tests of mnist_core.compare's pairwise significance, A-better difference matrix and gallery paging."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_core import compare, evaluate


def test_holm_matches_hand_computed_step_down():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06 (monotone).
    assert compare.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert compare.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert compare.holm([0.02]) == pytest.approx([0.02])  # one test: nothing to correct
    assert compare.holm([]) == []


def test_pairwise_mcnemar_every_pair_holm_corrected(small_mnist):
    labels = small_mnist.y_test[:200].astype(np.int64)
    rng = np.random.default_rng(0)
    wrong = (labels + 1) % 10
    models = {"good": labels.copy(), "half": np.where(rng.random(200) < 0.5, labels, wrong),
              "poor": np.where(rng.random(200) < 0.2, labels, wrong)}
    rows = compare.pairwise_mcnemar(models, labels)
    assert [(r["model A"], r["model B"]) for r in rows] == [("good", "half"), ("good", "poor"), ("half", "poor")]
    raw = [evaluate.mcnemar(models[r["model A"]], models[r["model B"]], labels) for r in rows]
    assert [r["only A right"] for r in rows] == [m["only_a_right"] for m in raw]
    assert [r["p"] for r in rows] == [m["p_value"] for m in raw]
    assert [r["Holm p"] for r in rows] == pytest.approx(compare.holm([m["p_value"] for m in raw]))
    assert all(r["Holm p"] >= r["p"] for r in rows)
    assert [r["significant"] for r in rows] == [r["Holm p"] < 0.05 for r in rows]
    assert rows[1]["significant"]  # 100% vs about 20% right on 200 images


def test_a_better_matrix_is_positive_where_a_does_better():
    a = np.array([[9, 1], [0, 10]])
    b = np.array([[7, 3], [2, 8]])
    diff = compare.a_better_matrix(a, b)
    # Diagonal: A right 9 vs 7, 10 vs 8 -> +2, +2. Off: A errs 1 vs 3 and 0 vs 2 -> B's minus A's = +2, +2.
    assert diff.tolist() == [[2, 2], [2, 2]]
    assert compare.a_better_matrix(b, a).tolist() == [[-2, -2], [-2, -2]]


def test_disagreement_pages_and_titles():
    ids = np.arange(95)
    assert list(compare.disagreement_page(ids, 1)) == list(range(40))
    assert list(compare.disagreement_page(ids, 3)) == list(range(80, 95))
    assert list(compare.disagreement_page(ids, 9)) == list(range(80, 95))  # past the end: the last page
    assert compare.disagreement_title(7, 7, 9) == "7: A✓ 7 | B✗ 9"
    assert compare.disagreement_title(3, 5, 3) == "3: A✗ 5 | B✓ 3"
