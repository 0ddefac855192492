"""Hold-rates and Wilson score intervals against hand-computed values and the closed form."""

import math

import pytest

from stableresnet.stats import Z_95, hold_rate, verdict, wilson_interval


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
