"""Hold-rates and Wilson score intervals against hand-computed values and the closed form; the
bootstrap interval of a std ratio; the verdict of a statement with several parts."""

import math

import numpy as np
import pytest

from stableresnet.stats import Z_95, StdRatio, all_hold, hold_rate, std_ratio_interval, verdict, wilson_interval


def closed_form(k, n, z=Z_95):
    """Wilson's interval as the roots in p of (p̂ − p)² = z² p (1 − p) / n, by the quadratic formula."""
    p_hat = k / n
    a = 1 + z * z / n
    b = -(2 * p_hat + z * z / n)
    c = p_hat * p_hat
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def test_hand_computed_intervals():
    z2 = 1.959963984540054 ** 2
    # k = 0: [0, (z²/n) / (1 + z²/n)]; k = n: [1 / (1 + z²/n), 1]; k = n/2: 1/2 ± (z/2)·sqrt(1/n + z²/(4n²))·2/(1 + z²/n).
    assert wilson_interval(0, 10) == pytest.approx((0.0, (z2 / 10) / (1 + z2 / 10)))
    assert wilson_interval(10, 10) == pytest.approx((1 / (1 + z2 / 10), 1.0))
    half = 1.959963984540054 * math.sqrt(0.25 / 10 + z2 / 400) / (1 + z2 / 10)
    assert wilson_interval(5, 10) == pytest.approx((0.5 - half, 0.5 + half))
    # The same numbers to four places, worked by hand: 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634].
    assert wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=5e-5)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-5)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=5e-5)


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (1, 5), (3, 5), (4, 5), (7, 10), (2, 10), (37, 50)])
def test_intervals_match_the_quadratic_closed_form(k, n):
    low, high = wilson_interval(k, n)
    assert (low, high) == pytest.approx(closed_form(k, n), abs=1e-12)
    assert 0 <= low <= k / n <= high <= 1


def test_verdict_rule_and_hold_rates():
    assert hold_rate([True] * 5).verdict == "holds"  # 5/5: [0.566, 1]
    assert hold_rate([False] * 5).verdict == "does not hold"  # 0/5: [0, 0.434]
    assert hold_rate([True] * 4 + [False]).verdict == "unclear"  # 4/5: [0.376, 0.964]
    assert hold_rate([True] * 8 + [False] * 2).verdict == "unclear"  # 8/10: [0.490, 0.943]
    assert hold_rate([True] + [False] * 9).verdict == "does not hold"  # 1/10: [0.018, 0.404]
    assert hold_rate([True]).verdict == "unclear"  # one seed never decides: [0.207, 1]
    rate = hold_rate([True, False, True, True, True, True, True, True, True, True])
    assert (rate.k, rate.n) == (9, 10) and str(rate) == "9/10 (95 % CI 0.60–0.98)"
    assert verdict(0.51, 0.9) == "holds" and verdict(0.1, 0.49) == "does not hold" and verdict(0.5, 0.9) == "unclear"


@pytest.mark.parametrize("k, n", [(-1, 5), (6, 5), (0, 0), (1.5, 3), (True, 2)])
def test_bad_counts_are_refused(k, n):
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def test_an_empty_hold_rate_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        hold_rate([])


# --- the ratio of standard deviations and statements with several parts ------------------------

@pytest.mark.parametrize("seed", range(5))
def test_a_sample_scaled_by_three_has_std_ratio_three(seed):
    # Property: std(3x + c) / std(x) = 3 exactly, in the sample and in every resample (same pairs).
    sample = np.random.default_rng(seed).normal(size=8)
    result = std_ratio_interval(3 * sample + 0.5, sample)
    assert result.ratio == pytest.approx(3.0) and result.n == 8
    assert result.low <= 3.0 + 1e-9 and result.high >= 3.0 - 1e-9
    assert result.low == pytest.approx(3.0) and result.high == pytest.approx(3.0)
    assert result.verdict == "holds"
    assert std_ratio_interval(sample, 3 * sample).verdict == "does not hold"  # the ratio is 1/3


def test_a_much_wider_sample_holds_and_a_similar_one_is_unclear():
    rng = np.random.default_rng(1)
    wide, narrow = rng.normal(0.7, 0.15, size=10), rng.normal(0.98, 0.01, size=10)
    result = std_ratio_interval(wide, narrow)
    assert result.ratio == pytest.approx(np.std(wide, ddof=1) / np.std(narrow, ddof=1))
    assert 1 < result.low <= result.ratio <= result.high and result.verdict == "holds"
    assert str(result).startswith(f"std ratio {result.ratio:.3g} (95 % CI ")
    similar = std_ratio_interval(rng.normal(size=10), rng.normal(size=10))
    assert similar.low < 1 < similar.high and similar.verdict == "unclear"
    # The same seed gives the same interval; pairs with a NaN are left out.
    assert std_ratio_interval(wide, narrow) == result
    assert std_ratio_interval(np.append(wide, np.nan), np.append(narrow, 0.5)).n == 10


@pytest.mark.parametrize("larger, smaller, reason", [
    ([0.5, 0.9], [0.9, 0.95], "fewer than 3 pairs"),  # n < 3
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], "no spread in either sample"),  # 0 / 0
    ([0.5, np.nan, 0.7, 0.2], [0.9, 0.9, np.nan, 0.8], "fewer than 3 pairs"),  # 2 pairs without NaN
    ([], [], "fewer than 3 pairs"),
])
def test_an_undefined_std_ratio_is_unclear_not_an_error(larger, smaller, reason):
    result = std_ratio_interval(larger, smaller)
    assert np.isnan(result.ratio) and np.isnan(result.low) and np.isnan(result.high)
    assert result.verdict == "unclear" and str(result) == f"std ratio undefined ({reason})"


def test_no_spread_in_the_steadier_sample_alone_is_an_infinite_ratio_that_holds():
    """Perfectly steady against varying is the strongest case of "less volatile", not an undefined one."""
    result = std_ratio_interval([0.5, 0.9, 0.7, 0.6, 0.8], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert result.ratio == float("inf") and result.verdict == "holds"
    assert str(result).startswith("std ratio inf (95 % CI ")


def test_no_spread_in_the_larger_sample_does_not_hold():
    result = std_ratio_interval([0.9, 0.9, 0.9, 0.9], [0.5, 0.9, 0.7, 0.6])
    assert (result.ratio, result.low, result.high, result.verdict) == (0.0, 0.0, 0.0, "does not hold")


def test_std_ratio_refuses_unpaired_samples():
    with pytest.raises(ValueError, match="one length"):
        std_ratio_interval([1.0, 2.0, 3.0], [1.0, 2.0])


def test_std_ratio_verdict_rule():
    assert StdRatio(2.0, 1.01, 3.0, 10).verdict == "holds"
    assert StdRatio(0.5, 0.2, 0.99, 10).verdict == "does not hold"
    assert StdRatio(1.5, 1.0, 3.0, 10).verdict == "unclear"  # touching 1 is not above it
    assert StdRatio(3.0, 1.5, float("inf"), 3).verdict == "holds"  # an infinite upper end


@pytest.mark.parametrize("parts, expected", [
    (["holds"], "holds"), (["holds", "holds"], "holds"),
    (["holds", "unclear"], "unclear"), (["unclear", "unclear"], "unclear"),
    (["holds", "does not hold"], "does not hold"), (["does not hold", "unclear"], "does not hold"),
    (["does not hold", "does not hold"], "does not hold"),
])
def test_a_statement_with_parts_needs_all_of_them(parts, expected):
    assert all_hold(parts) == expected and all_hold(parts[::-1]) == expected


@pytest.mark.parametrize("parts", [[], ["holds", "not run"]])
def test_all_hold_refuses_no_or_unknown_verdicts(parts):
    with pytest.raises(ValueError):
        all_hold(parts)
