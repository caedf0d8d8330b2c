"""Unit tests of mnist_core.compare's pairwise significance, A-better difference matrix and gallery paging."""

from __future__ import annotations

import time

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


# ---------- the verdict, specs in words, timings side by side ----------


def _pair(a, b, only_a, only_b, significant):
    return {"model A": a, "model B": b, "only A right": only_a, "only B right": only_b, "significant": significant}


def test_verdict_names_the_best_the_significant_and_the_digits():
    cm_best, cm_next = np.eye(10, dtype=int) * 100, np.eye(10, dtype=int) * 100
    cm_next[9, 9], cm_next[9, 4] = 88, 12  # the runner-up misreads twelve 9s as 4s
    cm_next[4, 4], cm_next[4, 9] = 103, 0
    accuracy = {"cnn": 0.99, "mlp": 0.98, "tiny": 0.90}
    pairs = [_pair("cnn", "mlp", 30, 25, False), _pair("cnn", "tiny", 300, 10, True),
             _pair("mlp", "tiny", 290, 12, True)]
    text = compare.verdict(accuracy, pairs, {"cnn": cm_best, "mlp": cm_next, "tiny": cm_next})
    assert text == ["cnn is the most accurate on the 10,000 test digits (99.00%).",
                    "It is significantly better than tiny (Holm-corrected McNemar, p < 0.05).",
                    "Its lead over mlp is within chance: not significant.",
                    "mlp is also significantly better than tiny.",
                    "Against mlp, cnn reads more 9s (+12) and fewer 4s (-3) correctly."]
    assert compare.verdict({"one": 0.9}, [], {}) == []


def test_significant_leader_needs_every_pair():
    accuracy = {"a": 0.99, "b": 0.98, "c": 0.97}
    assert compare.significant_leader(accuracy, [_pair("a", "b", 9, 1, True), _pair("a", "c", 9, 1, True),
                                                 _pair("b", "c", 5, 5, False)]) == "a"
    assert compare.significant_leader(accuracy, [_pair("a", "b", 9, 1, True), _pair("c", "a", 3, 2, False)]) is None


def test_spec_words_read_layer_by_layer():
    from mnist_core import spec_words

    cnn = {"spec": {"kind": "cnn", "conv_blocks": [{"filters": f, "kernel": 3, "padding": "same", "pooling": "max",
                                                   "batch_norm": True, "dropout": 0.0} for f in (16, 32, 64)],
                    "dense_layers": [{"units": 128, "activation": "relu", "dropout": 0.0}]},
           "config": {"optimizer": "adam", "learning_rate": 0.005, "schedule": "one-cycle", "warmup_fraction": 0.2,
                      "batch_size": 128, "epochs": 1, "seed": 0}}
    mlp = {"spec": {"kind": "mlp", "conv_blocks": [],
                    "dense_layers": [{"units": 512, "activation": "relu", "dropout": 0.2}] * 2},
           "config": dict(cnn["config"], optimizer="adam", learning_rate=0.005)}
    assert spec_words.one_line(cnn, mlp) == (
        "conv blocks: 3 conv blocks 16-32-64 (3x3, relu, same padding, max-pool) with batch-norm vs none; "
        "dense layers: dense 128 relu vs dense 512-512 relu with dropout 0.2")
    rows, differing = spec_words.diff_rows({"cnn": cnn, "mlp": mlp})
    assert differing == ["Conv blocks", "Dense layers"]
    assert next(r for r in rows if r["aspect"] == "Optimizer")["cnn"] == \
        "adam, learning rate 0.005, one-cycle schedule (20% warm-up)"
    mixed = [{"filters": 8, "kernel": 3, "batch_norm": True, "dropout": 0.1}, {"filters": 8, "kernel": 5}]
    assert spec_words.conv_words(mixed) == \
        "2 conv blocks 8-8 (kernels 3-5, relu, valid padding, max-pool) with batch-norm in block 1 with dropout 0.1-0"
    assert spec_words.one_line(cnn, cnn) == "same spec and config"


class _FakePredictor:
    """Stands in for predict.Predictor with a known cost per call, so the timing order is known."""

    def __init__(self, seconds):
        self.seconds, self.calls = seconds, 0

    def classify(self, _):
        self.calls += 1
        time.sleep(self.seconds)

    def probabilities(self, batch):
        time.sleep(self.seconds * 4)


def test_timings_interleave_and_mark_only_a_clear_winner(small_mnist):
    from mnist_core import speed

    models = {"slow": _FakePredictor(0.004), "fast": _FakePredictor(0.0005)}
    seen = []
    result = speed.measure(models, small_mnist.x_test, rounds=6, progress=lambda f, _: seen.append(f))
    assert seen == pytest.approx([(r + 1) / 6 for r in range(6)])
    assert models["slow"].calls == models["fast"].calls == 1 + 6 * speed.SINGLE_CALLS
    assert result["slow"]["latency ms"] > 3 * result["fast"]["latency ms"]
    assert len(result["fast"]["samples"]["images/s"]) == 6
    samples = {n: r["samples"]["latency ms"] for n, r in result.items()}
    assert speed.clear_winner(samples, higher_is_better=False) == "fast"
    same = [1.0, 1.2, 0.9, 1.1, 1.0, 0.95]
    assert speed.clear_winner({"a": same, "b": same[::-1]}, higher_is_better=False) is None
    assert speed.clear_winner({"a": same}, higher_is_better=False) is None


def test_verdict_says_when_the_best_accuracy_is_shared():
    accuracy = {"a": 0.99, "b": 0.99, "c": 0.95}
    pairs = [_pair("a", "b", 0, 0, False), _pair("a", "c", 50, 10, True), _pair("b", "c", 50, 10, True)]
    text = compare.verdict(accuracy, pairs, {})
    assert text[0] == "a and b share the best accuracy on the 10,000 test digits (99.00%); a stands for them below."
    assert text[1:3] == ["It is significantly better than c (Holm-corrected McNemar, p < 0.05).",
                         "Its lead over b is within chance: not significant."]
