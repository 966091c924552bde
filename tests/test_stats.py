"""Confidence intervals and paired tests against published values and hand counts."""

from __future__ import annotations

import json
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


# --- Boundaries, exact messages and exact strings (mutation testing, issue 13) ---------


@pytest.mark.parametrize("confidence, z", [(0.5, 0.674490), (0.2, 0.253347), (0.9, 1.644854)])
def test_z_quantile_below_one_sigma(confidence, z):
    # Normal table: P(|Z| < 0.674490) = 0.5, P(|Z| < 0.253347) = 0.2, P(|Z| < 1.644854) = 0.9.
    assert abs(stats._z_for(confidence) - z) < 1e-6


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5, -0.5])
def test_confidence_must_be_strictly_between_0_and_1(confidence):
    with pytest.raises(ValueError, match=rf"^confidence must be in \(0, 1\), got {confidence}$"):
        stats.wilson_interval(5, 10, confidence=confidence)


def test_wilson_counts_must_be_whole_numbers_with_named_messages():
    with pytest.raises(TypeError, match="^correct must be a whole number, got float$"):
        stats.wilson_interval(1.5, 10)
    with pytest.raises(TypeError, match="^total must be a whole number, got str$"):
        stats.wilson_interval(1, "10")
    with pytest.raises(TypeError, match="^correct must be a whole number, got bool$"):
        stats.wilson_interval(True, 10)
    # NumPy integers (np.sum of a boolean array) are whole numbers.
    assert stats.wilson_interval(np.int64(81), np.int64(263)) == stats.wilson_interval(81, 263)


def test_wilson_rejects_counts_out_of_range_with_exact_messages():
    with pytest.raises(ValueError, match="^total must be at least 1, got 0$"):
        stats.wilson_interval(0, 0)
    with pytest.raises(ValueError, match=r"^correct must be in \[0, total=10\], got 11$"):
        stats.wilson_interval(11, 10)
    with pytest.raises(ValueError, match=r"^correct must be in \[0, total=10\], got -1$"):
        stats.wilson_interval(-1, 10)


def test_wilson_single_image():
    # One image is a valid sample. Wilson at p = 1: low = n / (n + z^2);
    # at p = 0: high = z^2 / (n + z^2).
    z2 = 1.959964**2
    low, high = stats.wilson_interval(1, 1)
    assert high == 1.0 and low == pytest.approx(1 / (1 + z2), abs=1e-6)  # 0.2065
    low, high = stats.wilson_interval(0, 1)
    assert low == 0.0 and high == pytest.approx(z2 / (1 + z2), abs=1e-6)  # 0.7935


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 13, 15, 33, 100, 263, 1000, 10_000])
def test_wilson_all_right_ends_exactly_at_1_and_all_wrong_at_0(n):
    # The formula gives 1 (and 0) only up to rounding; the interval must end exactly there.
    assert stats.wilson_interval(n, n)[1] == 1.0
    assert stats.wilson_interval(0, n)[0] == 0.0


def test_accuracy_ci95_matches_the_published_table_to_4_decimals():
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662; 0/10 -> 0 to 0.2775.
    assert stats.accuracy_ci95(81 / 263, 263) == [0.2553, 0.3662]
    assert stats.accuracy_ci95(0.0, 10) == [0.0, 0.2775]
    assert stats.accuracy_ci95(1.0, 10) == [0.7225, 1.0]  # mirror image of 0/10


def test_accuracy_ci95_accepts_a_float32_accuracy():
    # Keras reports accuracies as float32: 81/263 in float32 is off by ~1e-8, i.e. 3e-6 images.
    assert stats.accuracy_ci95(np.float32(81 / 263), 263) == [0.2553, 0.3662]


def test_accuracy_ci95_tolerance_is_a_millionth_of_an_image_per_image():
    assert stats.accuracy_ci95(1 - 0.5e-6, 1) == stats.accuracy_ci95(1.0, 1)
    with pytest.raises(ValueError, match="^accuracy 0.9999985 is not a whole number of 1 images$"):
        stats.accuracy_ci95(1 - 1.5e-6, 1)


@pytest.mark.parametrize("accuracy", [1.5, -0.1, 100.0])
def test_accuracy_ci95_rejects_accuracy_outside_0_1(accuracy):
    with pytest.raises(
        ValueError, match=rf"^accuracy must be a fraction in \[0, 1\], got {accuracy}$"
    ):
        stats.accuracy_ci95(accuracy, 10)


def test_accuracy_ci95_of_no_images_is_refused():
    with pytest.raises(ValueError, match="^total must be at least 1, got 0$"):
        stats.accuracy_ci95(0.0, 0)


@pytest.mark.parametrize(
    "b, c, p",
    [
        (1, 0, 1.0),  # 2 * 1/2 = 1
        (1, 1, 1.0),  # 2 * (1 + 2) / 4 = 1.5, clamped to 1
        (3, 3, 1.0),  # 2 * (1 + 6 + 15 + 20) / 64 = 1.3125, clamped
        (2, 3, 1.0),  # 2 * (1 + 5 + 10) / 32 = 1 exactly
        (0, 5, 2 / 32),  # 2 * 1 / 32
        (1, 6, 2 * (1 + 7) / 128),
        (4, 9, 2 * (1 + 13 + 78 + 286 + 715) / 2**13),  # 2 * sum C(13, i), i <= 4
    ],
)
def test_mcnemar_p_value_is_the_exact_binomial_tail_clamped_to_1(b, c, p):
    a = np.array([True] * b + [False] * c + [True, False])  # last two: concordant
    other = np.array([False] * b + [True] * c + [True, False])
    m = stats.mcnemar(a, other)
    assert (m.b, m.c) == (b, c)
    assert m.p_value == pytest.approx(p, rel=1e-12)
    assert m.p_value <= 1.0


def test_mcnemar_str_is_exact_for_a_tie_and_a_significant_result():
    a = np.array([True] * 90 + [True] * 8 + [False] * 2)
    b = np.array([True] * 90 + [False] * 8 + [True] * 2)
    # p = 2 * 56 / 1024 = 0.109375
    assert str(stats.mcnemar(a, b)) == (
        "A right/B wrong 8, A wrong/B right 2, p = 0.109 (tie: not significant)"
    )
    a = np.array([True] * 20 + [False] * 2)
    b = np.array([False] * 20 + [True] * 2)
    # p = 2 * (1 + 22 + 231) / 2**22 = 0.000121117
    assert str(stats.mcnemar(a, b)) == (
        "A right/B wrong 20, A wrong/B right 2, p = 0.000121 (significant)"
    )


def test_mcnemar_accepts_one_image_and_python_lists():
    m = stats.mcnemar([True], [False])
    assert (m.b, m.c, m.p_value) == (1, 0, 1.0)
    m = stats.mcnemar([True, False, True], [False, False, True])
    assert (m.b, m.c, m.p_value) == (1, 0, 1.0)


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.array([True, False]), np.array([1, 0]), "got bool, int64"),
        (np.array([1, 0]), np.array([True, False]), "got int64, bool"),
        (np.ones((2, 2), bool), np.ones((2, 2), bool), r"got \(2, 2\) and \(2, 2\)"),
        (np.array([], bool), np.array([], bool), r"got \(0,\) and \(0,\)"),
    ],
)
def test_mcnemar_rejects_non_boolean_2d_and_empty_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        stats.mcnemar(a, b)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0, 1.5, 3.0, 12.706])
def test_t_p_value_df1_is_the_cauchy_tail(t):
    # Student's t with 1 degree of freedom is the Cauchy distribution: p = 1 - (2/pi) atan|t|.
    expected = 1 - 2 / math.pi * math.atan(t)
    assert stats.t_two_sided_p(t, 1) == pytest.approx(expected, abs=1e-12)
    assert stats.t_two_sided_p(-t, 1) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("t", [0.05, 0.3, 0.816, 1.0, 1.5, 2.5, 6.0])
def test_t_p_value_df2_and_df3_closed_forms(t):
    # df = 2: p = 1 - t / sqrt(2 + t^2);
    # df = 3: p = 1 - (2/pi) (atan(t / sqrt 3) + sqrt(3) t / (3 + t^2)).
    assert stats.t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    df3 = 1 - 2 / math.pi * (math.atan(t / math.sqrt(3)) + math.sqrt(3) * t / (3 + t * t))
    assert stats.t_two_sided_p(t, 3) == pytest.approx(df3, abs=1e-12)


@pytest.mark.parametrize(
    "t, df", [(1.000, 1), (0.816, 2), (0.765, 3), (0.741, 4), (0.727, 5), (0.700, 10)]
)
def test_t_p_values_match_the_50_percent_column_of_the_table(t, df):
    # Two-sided 50 % critical values of Student's t (any statistics table).
    assert abs(stats.t_two_sided_p(t, df) - 0.5) < 1e-3


@pytest.mark.parametrize("t", [0.01, 0.2, 0.5, 1.0, 1.7, 2.5])
def test_t_p_value_for_huge_df_is_the_normal_tail(t):
    # With 10**6 degrees of freedom, t is normal to ~1e-6: p = erfc(|t| / sqrt 2).
    assert stats.t_two_sided_p(t, 10**6) == pytest.approx(math.erfc(t / math.sqrt(2)), abs=1e-5)


def test_t_p_value_at_the_extremes():
    for t in (math.inf, -math.inf, 1e200, -1e200):  # t * t overflows for 1e200
        assert stats.t_two_sided_p(t, 3) == 0.0
    assert stats.t_two_sided_p(1e-200, 3) == 1.0  # t * t underflows to 0
    with pytest.raises(ValueError, match="^df must be at least 1, got 0$"):
        stats.t_two_sided_p(1.0, 0)


def test_regularized_incomplete_beta_closed_forms():
    # I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b, I_x(1/2, 1/2) = (2/pi) asin(sqrt x).
    for x in (0.05, 0.3, 0.5, 0.7, 0.95):
        assert stats._betainc(3.0, 1.0, x) == pytest.approx(x**3, abs=1e-13)
        assert stats._betainc(1.0, 4.0, x) == pytest.approx(1 - (1 - x) ** 4, abs=1e-13)
        arcsine = 2 / math.pi * math.asin(math.sqrt(x))
        assert stats._betainc(0.5, 0.5, x) == pytest.approx(arcsine, abs=1e-13)
    assert stats._betainc(2.0, 3.0, 0.0) == 0.0
    assert stats._betainc(2.0, 3.0, -0.5) == 0.0
    assert stats._betainc(2.0, 3.0, 1.0) == 1.0
    assert stats._betainc(2.0, 3.0, 1.5) == 1.0


def test_mean_std_two_values_and_messages():
    assert stats.mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert stats.mean_std((4, 8)) == (6.0, pytest.approx(math.sqrt(8)))  # ints are fine
    with pytest.raises(ValueError, match="^need at least one value$"):
        stats.mean_std([])
    with pytest.raises(ValueError, match=r"^values must be finite, got \[1.0, inf\]$"):
        stats.mean_std([1.0, math.inf])


def test_mean_std_of_float32_accuracies_is_computed_in_double_precision():
    values = [np.float32(0.9829), np.float32(0.9821), np.float32(0.9833)]
    exact = [float(v) for v in values]  # the float32 values, widened exactly
    mean = sum(exact) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in exact) / 2)
    got_mean, got_std = stats.mean_std(values)
    assert type(got_mean) is float and type(got_std) is float
    assert got_mean == pytest.approx(mean, rel=1e-15)
    assert got_std == pytest.approx(std, rel=1e-9)


def test_paired_t_with_identical_differences():
    # Every seed improves by exactly 1: no spread, so t is infinite and p is 0.
    test = stats.paired_t([3.0, 5.0, 7.0], [2.0, 4.0, 6.0])
    assert (test.mean_diff, test.std_diff, test.t, test.df) == (1.0, 0.0, math.inf, 2)
    assert test.p_value == 0.0 and test.significant
    test = stats.paired_t([2.0, 4.0], [3.0, 5.0])
    assert (test.t, test.p_value) == (-math.inf, 0.0)
    # Identical results on every seed: no difference at all, t = 0 and p = 1.
    test = stats.paired_t([0.98, 0.97, 0.99], [0.98, 0.97, 0.99])
    assert (test.mean_diff, test.std_diff, test.t, test.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not test.significant


def test_paired_t_negative_direction_by_hand():
    # differences -1, -2, -3: t = -2 sqrt(3), same p as +2 sqrt(3) (df = 2 closed form).
    test = stats.paired_t([2.0, 3.0, 4.0], [3.0, 5.0, 7.0])
    assert test.t == pytest.approx(-2 * math.sqrt(3))
    assert test.p_value == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14), abs=1e-12)


# values_a step 0.0012222 (mean 0.9824568, sd 0.0012222), values_b step 0.0002222
# (mean 0.9804564, sd 0.0002222); differences 0.0010004, 0.0020004, 0.0030004: mean 0.0020004,
# sd 0.001, t = 2.0004 sqrt(3), df = 2: p = 1 - t / sqrt(2 + t^2) = 0.0741535.
VALUES_A = [0.9812346, 0.9824568, 0.9836790]
VALUES_B = [0.9802342, 0.9804564, 0.9806786]


def test_seed_comparison_as_dict_is_rounded_to_6_decimals_and_p_to_4():
    record = stats.seed_comparison("qat", VALUES_A, "ptq", VALUES_B).as_dict()
    assert record == {
        "a": "qat",
        "b": "ptq",
        "seeds": 3,
        "values_a": [0.981235, 0.982457, 0.983679],
        "values_b": [0.980234, 0.980456, 0.980679],
        "mean_a": 0.982457,
        "std_a": 0.001222,
        "mean_b": 0.980456,
        "std_b": 0.000222,
        "mean_diff": 0.002,
        "p_value": 0.0742,
        "significant": False,
    }


def test_seed_comparison_as_dict_is_json_ready_from_numpy_values():
    record = stats.seed_comparison(
        "a", np.array(VALUES_A, np.float32), "b", np.array(VALUES_B, np.float32)
    ).as_dict()
    assert all(type(v) is float for v in record["values_a"] + record["values_b"])
    assert json.loads(json.dumps(record)) == record


def test_seed_comparison_str_tie_and_significant_exactly():
    cmp = stats.seed_comparison("qat", VALUES_A, "ptq", VALUES_B)
    assert str(cmp) == (
        "qat 98.25 ± 0.12 % vs ptq 98.05 ± 0.02 % (3 seeds): +0.20 points, "
        "p = 0.074 (tie: not significant)"
    )
    # The docstring's example: differences 0.0032, 0.0020, 0.0038 (t = 5.669, p = 0.0297).
    cmp = stats.seed_comparison("qat", [0.9829, 0.9821, 0.9833], "ptq", [0.9797, 0.9801, 0.9795])
    assert str(cmp) == (
        "qat 98.28 ± 0.06 % vs ptq 97.98 ± 0.03 % (3 seeds): +0.30 points, p = 0.03 (significant)"
    )
    # Spreads of whole points show every digit of the percent conversion:
    # a: 90 ± 10 %, b: 60 ± 10 %, differences 0.3, 0.2, 0.4: t = 3 sqrt(3), p = 0.0351.
    cmp = stats.seed_comparison("a", [0.8, 0.9, 1.0], "b", [0.5, 0.7, 0.6])
    assert str(cmp) == (
        "a 90.00 ± 10.00 % vs b 60.00 ± 10.00 % (3 seeds): +30.00 points, p = 0.035 (significant)"
    )
    # and the other direction prints a minus sign
    cmp = stats.seed_comparison("b", [0.5, 0.7, 0.6], "a", [0.8, 0.9, 1.0])
    assert "): -30.00 points, p = 0.035 (significant)" in str(cmp)


# --- Seed comparisons that also ask the test images (McNemar per seed) -----------------

N_IMAGES = 10_000


def _pair(a_right, only_a, only_b):
    """Right/wrong arrays of two models on N_IMAGES images: A right on the first a_right,
    B right on the same except A's last only_a, plus only_b images A gets wrong."""
    a = np.zeros(N_IMAGES, bool)
    a[:a_right] = True
    b = a.copy()
    b[a_right - only_a : a_right] = False
    b[a_right : a_right + only_b] = True
    return a, b


def _binom_p(k, n):
    """Exact two-sided sign-test p-value, from binomial coefficients (math.comb)."""
    k = min(k, n - k)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def test_seed_comparison_alike_seeds_and_a_few_images_is_a_tie():
    # 04_combined's case: seeds that agree to the image make the t test confident about a
    # gap of 3-5 test images, which McNemar's test cannot tell from chance
    pairs = [_pair(9806, 10, 7), _pair(9806, 11, 6), _pair(9806, 11, 6)]
    correct_a, correct_b = [a for a, _ in pairs], [b for _, b in pairs]
    values_a = [a.sum() / N_IMAGES for a in correct_a]
    values_b = [b.sum() / N_IMAGES for b in correct_b]
    assert values_b == [0.9803, 0.9801, 0.9801]
    cmp = stats.seed_comparison("pcqat", values_a, "pqat", values_b, correct_a, correct_b)
    # differences 3, 5, 5 images: t = 6.5, df 2, p = 1 - t / sqrt(2 + t^2)
    assert cmp.test.p_value == pytest.approx(1 - 6.5 / math.sqrt(2 + 6.5**2), rel=1e-6)
    assert cmp.test.significant
    assert [m.p_value for m in cmp.per_seed] == pytest.approx(
        [_binom_p(7, 17), _binom_p(6, 17), _binom_p(6, 17)], rel=1e-9
    )
    assert _binom_p(7, 17) == pytest.approx(2 * 41226 / 2**17)  # hand sum of C(17, 0..7)
    assert not cmp.significant
    record = cmp.as_dict()
    assert record["mcnemar_p_values"] == [0.629, 0.332, 0.332]  # 2 * 21778 / 2**17
    assert record["p_value"] == 0.0229 and record["significant"] is False
    assert str(cmp).endswith(
        "+0.04 points, p = 0.023; McNemar per seed p = 0.63, 0.33, 0.33 (tie: not significant)"
    )


def test_seed_comparison_needs_every_seed_to_pass_mcnemar():
    # differences 17, 16, 15 images: the t test is sure (t = 16 sqrt(3)); the first two seeds
    # pass McNemar's test, the third (50 vs 35 discordant images) does not
    pairs = [_pair(9850, 20, 3), _pair(9850, 20, 4), _pair(9850, 50, 35)]
    correct_a, correct_b = [a for a, _ in pairs], [b for _, b in pairs]
    values_a = [a.mean() for a in correct_a]
    values_b = [b.mean() for b in correct_b]
    cmp = stats.seed_comparison("a", values_a, "b", values_b, correct_a, correct_b)
    assert cmp.test.significant
    expected = [_binom_p(3, 23), _binom_p(4, 24), _binom_p(35, 85)]
    assert expected[0] < 0.05 and expected[1] < 0.05 and expected[2] > 0.05
    assert [m.p_value for m in cmp.per_seed] == pytest.approx(expected, rel=1e-9)
    assert not cmp.significant
    # with the third seed as clear as the others, the comparison is significant
    pairs[2] = _pair(9850, 18, 3)
    correct_a, correct_b = [a for a, _ in pairs], [b for _, b in pairs]
    cmp = stats.seed_comparison(
        "a",
        [a.mean() for a in correct_a],
        "b",
        [b.mean() for b in correct_b],
        correct_a,
        correct_b,
    )
    assert cmp.significant
    assert str(cmp).endswith("(significant)")


def test_seed_comparison_rejects_per_image_arrays_that_do_not_fit():
    a, b = _pair(9806, 10, 7)
    with pytest.raises(ValueError, match="give both correct_a and correct_b, or neither"):
        stats.seed_comparison("a", [0.9806] * 2, "b", [0.9803] * 2, correct_a=[a, a])
    with pytest.raises(ValueError, match="correct_b holds 1 arrays for 2 seeds"):
        stats.seed_comparison("a", [0.9806] * 2, "b", [0.9803] * 2, [a, a], [b])
    with pytest.raises(ValueError, match=r"correct_a\[1\] is 0.980300 right, but values_a\[1\]"):
        stats.seed_comparison("a", [0.9806] * 2, "b", [0.9803] * 2, [a, b], [b, b])
    with pytest.raises(ValueError, match="boolean"):
        stats.seed_comparison("a", [0.9806] * 2, "b", [0.9803] * 2, [a, a], [b.astype(int)] * 2)
