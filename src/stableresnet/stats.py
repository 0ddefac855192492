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

The same rule rates a comparison over paired trials (``paired_hold_rate``: trial t of one
setting against trial t of another, same split and seed), as the paper's sweep statements
(Figures 8-14) are rated in ``stableresnet.experiments.claims``.

Two other intervals, each a percentile bootstrap over the pairs (``scipy.stats.bootstrap``,
paired, resamples drawn from a given seed), decide by where the whole interval lies:

- Spearman's ρ (``spearman_interval``): holds above 0 (on the expected side), does not hold
  on the other side, unclear when it contains 0;
- the ratio of standard deviations (``std_ratio_interval``, "a larger variance"): holds
  above 1, does not hold below 1, unclear when it contains 1 or the ratio is undefined
  (fewer than 3 pairs, or no spread in the denominator).

A statement with several parts (``all_hold``) holds when every part holds, does not hold
when any part does not hold, and is unclear otherwise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

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
    # At k = 0 (k = n) the bound is 0 (1) exactly; round-off would leave it a hair off.
    return (0.0 if k == 0 else centre - half), (1.0 if k == n else centre + half)


def verdict(low: float, high: float) -> str:
    """``"holds"`` if low > 1/2, ``"does not hold"`` if high < 1/2, else ``"unclear"`` (module docstring)."""
    if low > VERDICT_THRESHOLD:
        return "holds"
    if high < VERDICT_THRESHOLD:
        return "does not hold"
    return "unclear"


def all_hold(verdicts: Sequence[str]) -> str:
    """The verdict of a statement with several parts: holds when all hold, does not hold when any
    does not hold, else unclear.

    >>> all_hold(["holds", "holds"]), all_hold(["unclear", "does not hold"]), all_hold(["holds", "unclear"])
    ('holds', 'does not hold', 'unclear')
    """
    verdicts = list(verdicts)
    unknown = set(verdicts) - set(VERDICTS)
    if not verdicts or unknown:
        raise ValueError(f"need one or more verdicts out of {VERDICTS}; got {verdicts!r}")
    if "does not hold" in verdicts:
        return "does not hold"
    return "holds" if all(v == "holds" for v in verdicts) else "unclear"


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


# --- paired comparisons and rank correlations -------------------------------------------------


def paired_hold_rate(smaller: Sequence[float], larger: Sequence[float]) -> HoldRate:
    """Hold-rate of "``smaller[i] < larger[i]``" over pairs i; a pair with a NaN is left out.

    The pairs share everything but the one setting compared (same seed, split and data), so
    each pair is one trial of the statement. A tie does not hold.

    >>> str(paired_hold_rate([0.1, 0.2, 0.3], [0.2, 0.2, 0.5]))
    '2/3 (95 % CI 0.21–0.94)'
    """
    smaller, larger = np.asarray(smaller, dtype=float), np.asarray(larger, dtype=float)
    if smaller.shape != larger.shape or smaller.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length; got shapes {smaller.shape} and {larger.shape}")
    kept = ~(np.isnan(smaller) | np.isnan(larger))
    return hold_rate(list(smaller[kept] < larger[kept]))


def spearman(x, y, axis: int = -1) -> np.ndarray:
    """Spearman's rank correlation along ``axis``: Pearson's r of the average ranks (ties share a rank).

    NaN where either variable is constant along the axis.
    """
    from scipy.stats import rankdata

    rank_x, rank_y = rankdata(x, axis=axis), rankdata(y, axis=axis)
    rank_x = rank_x - rank_x.mean(axis=axis, keepdims=True)
    rank_y = rank_y - rank_y.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_x * rank_y).sum(axis=axis) / np.sqrt((rank_x**2).sum(axis=axis) * (rank_y**2).sum(axis=axis))


@dataclass(frozen=True)
class Correlation:
    """Spearman's ρ of n pairs with its bootstrap interval [low, high] (``spearman_interval``).

    ``sign`` is the direction the statement expects (+1: larger x goes with larger y). The
    verdict: **holds** when the whole interval lies on that side of 0, **does not hold** when it
    lies on the other side, **unclear** when it contains 0 (or ρ is undefined: a constant variable).
    """

    rho: float
    low: float
    high: float
    n: int
    sign: int = 1

    @property
    def verdict(self) -> str:
        low, high = sorted((self.sign * self.low, self.sign * self.high))
        if low > 0:
            return "holds"
        if high < 0:
            return "does not hold"
        return "unclear"

    def __str__(self) -> str:
        if not math.isfinite(self.rho):
            return f"ρ undefined (a constant variable), n = {self.n}"
        return f"ρ = {self.rho:.2f} (95 % CI {self.low:.2f} to {self.high:.2f}), n = {self.n}"


def spearman_interval(x, y, sign: int = 1, n_resamples: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> Correlation:
    """Spearman's ρ of the pairs (x_i, y_i) with a percentile bootstrap interval over the pairs.

    Pairs with a NaN are left out (infinite values rank last, as the largest). The interval
    resamples pairs with replacement (``scipy.stats.bootstrap``, paired, ``n_resamples``
    resamples drawn from ``seed``).
    """
    from scipy.stats import bootstrap

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length; got shapes {x.shape} and {y.shape}")
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1; got {sign!r}")
    kept = ~(np.isnan(x) | np.isnan(y))
    x, y = x[kept], y[kept]
    rho = float(spearman(x, y)) if len(x) >= 2 else math.nan
    if not math.isfinite(rho) or len(x) < 3:
        return Correlation(rho, math.nan, math.nan, len(x), sign)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample of one repeated pair has no ρ: it is dropped below
        result = bootstrap((x, y), lambda a, b, axis: spearman(a, b, axis=axis), paired=True, vectorized=True,
                           n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                           random_state=np.random.default_rng(seed))
    distribution = result.bootstrap_distribution
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(distribution, [tail, 100 - tail])
    return Correlation(rho, float(low), float(high), len(x), sign)



@dataclass(frozen=True)
class StdRatio:
    """std(larger) / std(smaller) of n pairs with its bootstrap interval [low, high] (``std_ratio_interval``).

    The verdict of "``larger`` varies more than ``smaller``": **holds** when the whole interval lies
    above 1, **does not hold** when it lies below 1, **unclear** when it contains 1 or the ratio is
    undefined (NaN: fewer than 3 pairs, or ``smaller`` has no spread).
    """

    ratio: float
    low: float
    high: float
    n: int

    @property
    def verdict(self) -> str:
        if self.low > 1:  # False for NaN
            return "holds"
        if self.high < 1:
            return "does not hold"
        return "unclear"

    def __str__(self) -> str:
        if math.isnan(self.ratio):
            return f"std ratio undefined ({'fewer than 3 pairs' if self.n < 3 else 'no spread in either sample'})"
        return f"std ratio {self.ratio:.3g} (95 % CI {self.low:.3g}–{self.high:.3g})"


def _std_ratio(larger, smaller, axis: int = -1) -> np.ndarray:
    """std(larger) / std(smaller) along ``axis``; inf where only the denominator has no spread, NaN where both."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.std(larger, axis=axis, ddof=1) / np.std(smaller, axis=axis, ddof=1)


def std_ratio_interval(larger, smaller, n_resamples: int = 2000, seed: int = 0,
                       confidence: float = 0.95) -> StdRatio:
    """The ratio of standard deviations std(larger) / std(smaller) of paired samples, with a
    percentile bootstrap interval over the pairs.

    Pair i shares everything but the setting compared (same trial: split and seed), so pairs
    are resampled together (``scipy.stats.bootstrap``, paired, ``n_resamples`` resamples drawn
    from ``seed``); a pair with a NaN is left out. A resample in which only ``smaller`` has no
    spread has an infinite ratio and counts as the largest; one in which neither has spread has
    none and is dropped. The interval's ends are the resampled ratios at the 2.5 % and 97.5 %
    ranks, rounded outward (no interpolation, so an infinite end stays infinite). No spread in
    ``smaller`` alone is the strongest case, an infinite ratio (perfectly steady against varying);
    with fewer than 3 pairs, or no spread in either sample, the ratio is undefined (NaN) and the
    verdict unclear.

    Parameters
    ----------
    larger, smaller : array-like, shape (n,)
        The sample expected to vary more, and the one expected to vary less; entry i of each is pair i.
    n_resamples, seed, confidence
        Bootstrap resamples, the seed they are drawn from, and the interval's coverage.

    Returns
    -------
    StdRatio
        ratio, low, high, n (pairs kept) and ``verdict``.

    Examples
    --------
    >>> result = std_ratio_interval([0.1, 0.9, 0.3, 0.7, 0.5], [0.50, 0.52, 0.49, 0.51, 0.50])
    >>> round(result.ratio, 1), result.verdict
    (27.7, 'holds')
    """
    from scipy.stats import bootstrap

    larger, smaller = np.asarray(larger, dtype=float), np.asarray(smaller, dtype=float)
    if larger.shape != smaller.shape or larger.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length; got shapes {larger.shape} and {smaller.shape}")
    kept = ~(np.isnan(larger) | np.isnan(smaller))
    larger, smaller = larger[kept], smaller[kept]
    n = len(larger)
    ratio = float(_std_ratio(larger, smaller)) if n >= 3 else math.nan
    if math.isnan(ratio):
        return StdRatio(math.nan, math.nan, math.nan, n)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resamples without spread give inf or NaN: handled below
        result = bootstrap((larger, smaller), _std_ratio, paired=True, vectorized=True, n_resamples=n_resamples,
                           confidence_level=confidence, method="percentile",
                           random_state=np.random.default_rng(seed))
    distribution = result.bootstrap_distribution
    distribution = distribution[~np.isnan(distribution)]
    if distribution.size == 0:
        return StdRatio(ratio, math.nan, math.nan, n)
    tail = (1 - confidence) / 2 * 100
    low = np.percentile(distribution, tail, method="lower")
    high = np.percentile(distribution, 100 - tail, method="higher")
    return StdRatio(ratio, float(low), float(high), n)


# --------------------------------------------------------------------------------------
# Tables of results summarised: what the figures, the claims and the command line read.

def summarize(table: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per (dataset, block, h): trials, mean, std (sample, ddof=1), min, max of ``metric`` and diverged count."""
    grouped = table.groupby(["dataset", "block", "h"], sort=True)
    summary = grouped[metric].agg(trials="count", mean="mean", std="std", min="min", max="max")
    summary["diverged"] = grouped["diverged"].sum().astype(int)
    return summary.reset_index()


def summarize_comparison(table: pd.DataFrame, order=None, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per (dataset, variant, block, h): trials, mean, std, variance (ddof=1) of ``metric``, diverged
    count, the blocks' mean trained h_i, and the paired comparison with the first variant
    (``compare_with_first``; the first variant's verdict reads "reference"); variants in ``order``
    (else as they first appear)."""
    keys = ["dataset", "variant", "block", "h"]
    grouped = table.groupby(keys, sort=False)
    summary = grouped[metric].agg(trials="count", mean="mean", std="std", var="var")
    summary["diverged"] = grouped["diverged"].sum().astype(int)
    summary["block_h_mean"] = grouped["block_h_mean"].mean()
    summary = summary.reset_index()
    order = list(order) if order is not None else list(dict.fromkeys(summary["variant"]))
    summary = summary.merge(compare_with_first(table, order, metric), on=keys, how="left")
    summary.loc[summary["variant"] == order[0], "verdict"] = "reference"
    summary["variant"] = pd.Categorical(summary["variant"], categories=order, ordered=True)
    summary = summary.sort_values(["dataset", "variant", "block", "h"], kind="stable")
    summary["variant"] = summary["variant"].astype(str)
    return summary.reset_index(drop=True)


def compare_with_first(table: pd.DataFrame, order, metric: str = "test_accuracy") -> pd.DataFrame:
    """Every variant after the first against the first, trial by trial, per (dataset, variant, block, h);
    a higher ``metric`` is better.

    A member pairs with the first variant's member of the same data set, block and seed (same
    split, initial weights and batches) whose h has the same rank among its variant's step sizes,
    where both variants have as many (equal h when they share them; D blocks at h against D/4
    blocks at 4h in an equal-compute comparison), else the same h. Columns: ``first_h``, the
    ``pairs``, how many are ``better`` and ``worse`` (the rest tie), the 95 % Wilson interval of
    each rate (``stats.paired_hold_rate``), the mean paired difference, and the ``verdict``:
    "better" or "worse" where that rate holds (interval above 1/2), else "no clear difference".
    """
    order = list(order)
    keys = ["dataset", "block", "seed"]
    members = table[keys + ["variant", "h", metric]].copy()
    members["rank"] = members.groupby(["dataset", "block", "variant"])["h"].rank(method="dense")
    first = members[members["variant"] == order[0]]
    rows = []
    for (dataset, variant, block), own in members[members["variant"] != order[0]].groupby(
            ["dataset", "variant", "block"], sort=False):
        base = first[(first["dataset"] == dataset) & (first["block"] == block)]
        by = "rank" if own["h"].nunique() == base["h"].nunique() else "h"
        pairs = own.merge(base, on=keys + [by], suffixes=("", "_first"))
        if by == "h":
            pairs["h_first"] = pairs["h"]
        pairs = pairs.dropna(subset=[metric, f"{metric}_first"])  # a pair with a NaN says nothing
        for h in sorted(own["h"].unique()):
            row = {"dataset": dataset, "variant": variant, "block": block, "h": h}
            paired = pairs[pairs["h"] == h]
            if len(paired):
                mine, theirs = paired[metric].to_numpy(), paired[f"{metric}_first"].to_numpy()
                better, worse = paired_hold_rate(theirs, mine), paired_hold_rate(mine, theirs)
                verdict = ("better" if better.verdict == "holds" else "worse" if worse.verdict == "holds"
                           else "no clear difference")
                row |= {"first_h": paired["h_first"].iloc[0], "pairs": better.n, "better": better.k,
                        "better_ci": f"{better.low:.2f}-{better.high:.2f}", "worse": worse.k,
                        "worse_ci": f"{worse.low:.2f}-{worse.high:.2f}",
                        "mean_difference": float((mine - theirs).mean()), "verdict": verdict}
            rows.append(row)
    columns = ["dataset", "variant", "block", "h", "first_h", "pairs", "better", "better_ci", "worse", "worse_ci",
               "mean_difference", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def summarize_drift(periods: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per (dataset, block, h, periods_after): trials, mean, std (ddof=1), rows of that period, diverged count."""
    grouped = periods.groupby(["dataset", "block", "h", "periods_after"], sort=True)
    summary = grouped[metric].agg(trials="count", mean="mean", std="std")
    summary["n_rows"] = grouped["n_rows"].first()
    summary["period_label"] = grouped["period_label"].first()
    summary["diverged"] = grouped["diverged"].sum().astype(int)
    return summary.reset_index()


# A robustness drop is clean − attacked accuracy, on the same test rows (``experiments.robustness``).
DROPS = {"pgd_drop": "pgd_accuracy", "noise_drop": "noise_accuracy"}
ATTACKS = {"pgd_drop": "PGD (ε = 0.1)", "noise_drop": "noise (σ = 0.1)"}


def with_drops(members: pd.DataFrame) -> pd.DataFrame:
    """The members table with ``pgd_drop`` and ``noise_drop`` = clean − attacked accuracy."""
    return members.assign(**{drop: members["clean_accuracy"] - members[column] for drop, column in DROPS.items()})


def drop_summary(members: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of clean accuracy and of both drops per (dataset, block, h), diverged members left out."""
    members = with_drops(members)
    alive = members[~members["diverged"].astype(bool)]
    summary = alive.groupby(["dataset", "block", "h"], sort=False).agg(
        trials=("trial", "size"), clean=("clean_accuracy", "mean"),
        pgd_drop_mean=("pgd_drop", "mean"), pgd_drop_std=("pgd_drop", "std"),
        noise_drop_mean=("noise_drop", "mean"), noise_drop_std=("noise_drop", "std"),
        median_c=("stability_constant", "median"),
    )
    return summary.reset_index()
