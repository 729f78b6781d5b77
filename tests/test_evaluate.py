import math

import pytest

from kit.errors import KitError
from kit.evaluate import compare, evaluate, paired_test, per_query

QRELS = {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 2}}


def test_exact_values():
    run = {"q1": {"d2": 2.0, "d1": 1.0}, "q2": {"x": 2.0, "d3": 1.0}}
    m = evaluate(run, QRELS, ["nDCG@10", "RR@10", "R@100"])
    # trec_eval's nDCG (what ir-measures computes) uses the grade itself as the gain.
    ideal = 2 + 1 / math.log2(3)
    got_q1 = (1 + 2 / math.log2(3)) / ideal
    got_q2 = 2 / math.log2(3) / 2
    assert m["nDCG@10"] == pytest.approx((got_q1 + got_q2) / 2, abs=1e-4)
    assert m["RR@10"] == pytest.approx((1 + 0.5) / 2)
    assert m["R@100"] == pytest.approx(1.0)


def test_missing_query_scores_zero():
    table = per_query({"q1": {"d1": 1.0}}, QRELS, ["RR@10"])
    assert table.loc["q2", "RR@10"] == 0.0
    assert evaluate({"q1": {"d1": 1.0}}, QRELS, ["RR@10"])["RR@10"] == pytest.approx(0.5)


def test_unknown_measure_and_empty_qrels():
    with pytest.raises(KitError, match="unknown measure 'nDGC@10'"):
        evaluate({}, QRELS, ["nDGC@10"])
    with pytest.raises(KitError, match="qrels are empty"):
        evaluate({}, {})


def test_paired_test():
    assert paired_test([0.1, 0.2, 0.3, 0.4], [0.5, 0.7, 0.6, 0.9]) == pytest.approx(0.003, abs=5e-4)
    assert paired_test([0.5, 0.5], [0.5, 0.5]) == 1.0
    with pytest.raises(KitError, match="equal-length"):
        paired_test([1.0], [1.0, 2.0])


def test_compare_counts_wins_ties_losses():
    qrels = {f"q{i}": {"good": 2} for i in range(4)}
    base = {f"q{i}": {"bad": 2.0, "good": 1.0} for i in range(4)}
    better = {"q0": {"good": 1.0}, "q1": {"good": 1.0}, "q2": {"bad": 2.0, "good": 1.0}, "q3": {"bad": 1.0}}
    table = compare({"base": base, "new": better}, qrels, ["RR@10"])
    assert table.loc["new", "win/tie/loss"] == "2/1/1"
    assert table.loc["new", "Δ RR@10"] == pytest.approx((0.5 + 0.5 + 0 - 0.5) / 4)
    with pytest.raises(KitError, match="at least two runs"):
        compare({"base": base}, qrels)
