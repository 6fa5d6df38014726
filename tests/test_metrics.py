import math

import numpy as np
import pytest

from serac.metrics import (
    accuracy,
    auroc,
    contains_accuracy,
    contains_match,
    drawdown_accuracy,
    drawdown_changed,
    edit_success,
    exact_match,
    latency_summary,
    scope_metrics,
)


def test_exact_match_ignores_case_space_and_edge_punctuation():
    assert exact_match("  Boris   Johnson. ", "boris johnson")
    assert not exact_match("Boris", "Boris Johnson")
    assert not exact_match(None, "x")


def test_edit_success_and_empty_input():
    assert edit_success(["a", "b", "c", "d"], ["a", "b", "x", "D"]) == pytest.approx(0.75)
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy(["a"], [])


def test_drawdown_variants():
    assert drawdown_changed(["x", "b", "c"], ["a", "b", "C"]) == pytest.approx(1 / 3)
    # both 3/4 correct -> no drawdown; then unedited 4/4 vs edited 1/4 -> 0.75
    assert drawdown_accuracy(["t", "f", "f", "f"], ["t", "t", "f", "t"], ["t", "t", "f", "f"]) == pytest.approx(0.0)
    assert drawdown_accuracy(["f", "f", "f", "t"], ["t", "t", "f", "f"], ["t", "t", "f", "f"]) == pytest.approx(0.75)


def test_auroc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    s = rng.random(200).round(1)  # many ties
    y = rng.random(200) > 0.6
    pos, neg = s[y], s[~y]
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(s, y) == pytest.approx(pairwise)
    assert auroc([0.1, 0.9], [False, True]) == 1.0


def test_scope_metrics_at_threshold():
    m = scope_metrics([0.9, 0.8, 0.4, 0.6, 0.1], [True, True, True, False, False], threshold=0.5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(0.5)


def test_latency_summary():
    out = latency_summary([0.001] * 99 + [0.1])
    assert out["p50_ms"] == pytest.approx(1.0)
    assert out["p99_ms"] > 1.0


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("The capital of France is Paris.", "Paris", True),
        ("Paris", "paris", True),
        ("It is in São Paulo, Brazil", "São Paulo", True),
        ("Parisian food", "Paris", False),  # whole words only
        ("Johnson, Boris", "Boris Johnson", False),  # in order
        ("anything", "", False),  # an empty label matches nothing
        (None, "Paris", False),
    ],
)
def test_contains_match(prediction, gold, expected):
    assert contains_match(prediction, gold) is expected


def test_contains_accuracy():
    assert contains_accuracy(["a Paris b", "Rome"], ["paris", "Milan"]) == 0.5
    assert math.isnan(contains_accuracy([], []))
