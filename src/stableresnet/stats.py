"""Statements checked over many seeds: the hold-rate k/N, its 95 % Wilson interval, one verdict rule.

A statement ("accuracy reaches 1.0 before layer 200") is checked once per seed; it holds
for k of N seeds. The hold-rate p̂ = k/N gets the Wilson score interval (Wilson 1927)

    centre ± half = (p̂ + z²/2N ± z·sqrt(p̂(1 − p̂)/N + z²/4N²)) / (1 + z²/N),

z = 1.959964 (the 97.5 % normal quantile) for a 95 % interval. Unlike p̂ ± z·sqrt(p̂(1−p̂)/N)
it stays inside [0, 1] and is not empty at k = 0 or k = N: 0/10 gives [0, 0.278], 10/10
gives [0.722, 1].

Verdict rule (the only place it lives): a statement **holds** when the interval's lower
bound is above 1/2 (most seeds agree, beyond chance), **does not hold** when its upper
bound is below 1/2, and is **unclear** otherwise. With 5 seeds only 5/5 or 0/5 decide;
with 10 seeds 9/10 or more (1/10 or fewer) do; one seed never does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile
VERDICT_THRESHOLD = 0.5
VERDICTS = ("holds", "does not hold", "unclear")


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of a proportion seen k times in n trials.

    >>> [round(v, 4) for v in wilson_interval(5, 10)]
    [0.2366, 0.7634]
    """
    for name, value in (("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer; got {value!r}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 ≤ k ≤ n and n ≥ 1; got k={k}, n={n}")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At k = 0 (k = n) the bound is 0 (1) exactly; clip the round-off.
    return max(0.0, centre - half), min(1.0, centre + half)


def verdict(low: float, high: float) -> str:
    """``"holds"`` if low > 1/2, ``"does not hold"`` if high < 1/2, else ``"unclear"`` (module docstring)."""
    if low > VERDICT_THRESHOLD:
        return "holds"
    if high < VERDICT_THRESHOLD:
        return "does not hold"
    return "unclear"


@dataclass(frozen=True)
class HoldRate:
    """k of n seeds for which a statement holds, with its 95 % Wilson interval and verdict."""

    k: int
    n: int
    low: float
    high: float

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high)

    def __str__(self) -> str:
        return f"{self.k}/{self.n} (95 % CI {self.low:.2f}–{self.high:.2f})"


def hold_rate(outcomes: Sequence[bool]) -> HoldRate:
    """The hold-rate of per-seed outcomes (True where the statement holds for that seed).

    >>> str(hold_rate([True, True, False, True, True]))
    '4/5 (95 % CI 0.38–0.96)'
    """
    outcomes = [bool(outcome) for outcome in outcomes]
    if not outcomes:
        raise ValueError("a hold-rate needs at least one outcome")
    k, n = sum(outcomes), len(outcomes)
    return HoldRate(k, n, *wilson_interval(k, n))
