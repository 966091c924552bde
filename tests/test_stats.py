"""Confidence intervals and paired tests against published values and hand counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import stats


def test_wilson_matches_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662.
    low, high = stats.wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    # 15/148 -> 0.0624 to 0.1605 (same table).
    low, high = stats.wilson_interval(15, 148)
    assert (round(low, 4), round(high, 4)) == (0.0624, 0.1605)


def test_wilson_edges_stay_inside_0_1_and_are_not_degenerate():
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and 0.2 < high < 0.35  # Newcombe table I, 0/10: 0 to 0.2775
    assert round(high, 4) == 0.2775
    low, high = stats.wilson_interval(10, 10)
    assert high == 1.0 and round(low, 4) == 0.7225


def test_accuracy_ci95_rounds_and_validates():
    low, high = stats.accuracy_ci95(0.9801, 10_000)
    assert low < 0.9801 < high
    # half-width ~ 1.96 * sqrt(p (1 - p) / n) = 0.00274 for p = 0.98, n = 10,000
    assert abs((high - low) / 2 - 1.96 * math.sqrt(0.9801 * 0.0199 / 10_000)) < 2e-4
    with pytest.raises(ValueError, match="whole number"):
        stats.accuracy_ci95(0.12345, 10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.accuracy_ci95(98.01, 10_000)
    with pytest.raises(TypeError):
        stats.wilson_interval(1.5, 10)


def test_z_quantile():
    assert abs(stats._z_for(0.95) - 1.959964) < 1e-6
    assert abs(stats._z_for(0.99) - 2.575829) < 1e-6


@pytest.mark.parametrize(
    "t, df", [(12.706, 1), (4.303, 2), (3.182, 3), (2.776, 4), (2.228, 10), (1.960, 10**6)]
)
def test_t_p_values_match_the_critical_values_table(t, df):
    # Two-sided 5 % critical values of Student's t (any statistics table).
    assert abs(stats.t_two_sided_p(t, df) - 0.05) < 2e-4


def test_t_p_value_of_zero_is_one_and_of_large_t_is_small():
    assert stats.t_two_sided_p(0.0, 3) == pytest.approx(1.0)
    assert stats.t_two_sided_p(31.821, 1) == pytest.approx(0.02, abs=2e-4)


def test_mcnemar_counts_only_discordant_pairs():
    a = np.array([True] * 90 + [True] * 8 + [False] * 2)
    b = np.array([True] * 90 + [False] * 8 + [True] * 2)
    m = stats.mcnemar(a, b)
    assert (m.b, m.c) == (8, 2)
    # exact: 2 * P(X <= 2 | n=10, p=1/2) = 2 * (1 + 10 + 45) / 1024
    assert m.p_value == pytest.approx(2 * 56 / 1024)
    assert not m.significant
    assert "tie" in str(m)


def test_mcnemar_significant_and_symmetric():
    a = np.array([True] * 20 + [False] * 2)
    b = np.array([False] * 20 + [True] * 2)
    m = stats.mcnemar(a, b)
    assert m.p_value == pytest.approx(2 * (1 + 22 + 231) / 2**22)
    assert m.significant
    assert stats.mcnemar(b, a).p_value == pytest.approx(m.p_value)


def test_mcnemar_rejects_bad_input():
    with pytest.raises(ValueError, match="boolean"):
        stats.mcnemar(np.array([1, 0]), np.array([1, 1]))
    with pytest.raises(ValueError, match="same length"):
        stats.mcnemar(np.array([True]), np.array([True, False]))
    assert stats.mcnemar(np.array([True, False]), np.array([True, False])).p_value == 1.0


def test_paired_t_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt(3)) = 3.4641, df = 2
    test = stats.paired_t([3.0, 5.0, 7.0], [2.0, 3.0, 4.0])
    assert test.mean_diff == pytest.approx(2.0)
    assert test.std_diff == pytest.approx(1.0)
    assert test.t == pytest.approx(2 * math.sqrt(3))
    assert test.df == 2
    # closed form for df = 2: p = 1 - t / sqrt(2 + t^2)
    assert test.p_value == pytest.approx(1 - test.t / math.sqrt(2 + test.t**2))


def test_paired_t_rejects_bad_input():
    with pytest.raises(ValueError, match="pair up"):
        stats.paired_t([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        stats.paired_t([1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        stats.paired_t([1.0, float("nan")], [1.0, 2.0])


def test_seed_comparison_reports_a_tie_when_not_significant():
    cmp = stats.seed_comparison("a", [0.981, 0.979, 0.982], "b", [0.980, 0.981, 0.979])
    assert not cmp.significant
    assert "tie" in str(cmp)
    record = cmp.as_dict()
    assert record["seeds"] == 3 and record["significant"] is False
    assert record["mean_a"] == pytest.approx(0.980667, abs=1e-6)


def test_mean_std():
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert stats.mean_std([5.0]) == (5.0, 0.0)
    with pytest.raises(ValueError):
        stats.mean_std([])
