"""Does a stable forward pass buy robustness? The paper's postulate, tested over paired trials.

The paper argues (it does not measure) that unstable transitions lose accuracy "when input data
is noisy or corrupted by adversaries", and that stability helps a network "transfer ... to
time-evolving data". The study trains every block at several h on many data sets with
``sweep --robustness`` (and Elec2 with ``drift``), one row per member in a *members table*:
clean accuracy, accuracy under Gaussian noise σ = 0.1 and PGD ε = 0.1 on the same test rows,
the stability constant c of eq. 4 and the largest block amplification max |eig ∂Φ_i/∂y|
(Proposition 1's |1 + hλ| for forward Euler); for Elec2 also the decay of accuracy over the
periods after training.

A robustness effect is measured as a **drop**, clean − attacked accuracy, so that a less
accurate network cannot win by having less to lose. Statements (``study_verdicts``):

- *paired*: members of one trial share seed, split and mini-batch order and differ only in h
  or the block, so each trial is one pair; "A loses less than B" holds for a pair when
  drop_A < drop_B, and the hold-rate over pairs gets its Wilson interval
  (``stats.paired_hold_rate``);
- *rank correlations* over all members of a data set: Spearman's ρ between c (or the
  amplification) and the PGD drop, and on Elec2 between c and the decay, with a bootstrap
  interval (``stats.spearman_interval``); the postulate expects ρ > 0.

Diverged members are left out of every statement (their accuracy is chance and c undefined);
the counts say how many pairs or members remain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import ATTACKS, paired_hold_rate, spearman_interval, with_drops

ALL_DATASETS = "all data sets"

# (statement, drop column, the (block, h) expected to lose less, the (block, h) it is compared with)
PAIRED = [
    ("plain h = 0.1 loses less accuracy under {attack} than plain h = 1", "pgd_drop", ("plain", 0.1), ("plain", 1.0)),
    ("plain h = 0.1 loses less accuracy under {attack} than plain h = 1", "noise_drop", ("plain", 0.1), ("plain", 1.0)),
    ("shrinkage loses less accuracy under {attack} than plain, both at h = 1", "pgd_drop", ("shrinkage", 1.0),
     ("plain", 1.0)),
    ("shrinkage loses less accuracy under {attack} than plain, both at h = 1", "noise_drop", ("shrinkage", 1.0),
     ("plain", 1.0)),
]
# (statement, x column, y column): the postulate expects a positive rank correlation.
CORRELATIONS = [
    ("a larger stability constant c goes with a larger PGD drop", "stability_constant", "pgd_drop"),
    ("a larger block amplification goes with a larger PGD drop", "max_amplification", "pgd_drop"),
    ("a larger stability constant c goes with a faster decay of accuracy over later periods",
     "stability_constant", "decay"),
]
# k of n pairs hold (paired statements) or Spearman's rho over n members (correlations); [low, high] is the
# 95 % interval of the hold-rate (Wilson) or of rho (bootstrap).
VERDICT_COLUMNS = ["dataset", "statement", "measured", "k", "n", "rho", "low", "high", "verdict"]


def decay_per_member(periods: pd.DataFrame) -> pd.DataFrame:
    """Each member's decay over the periods after training: −(slope of accuracy against period).

    The slope is a least-squares line through (periods_after, accuracy) over the periods
    after the cut (periods_after ≥ 1), each weighted by its number of rows, so a short last
    period counts for little. Positive decay = accuracy falls as time passes.
    """
    later = periods[periods["periods_after"] >= 1]

    def slope(member: pd.DataFrame) -> float:
        t, accuracy, rows = (member[c].to_numpy(float) for c in ("periods_after", "accuracy", "n_rows"))
        if len(t) < 2:
            return np.nan
        return float(np.polyfit(t, accuracy, 1, w=np.sqrt(rows))[0])

    keys = ["dataset", "block", "h", "trial"]
    slopes = later.groupby(keys, sort=False)[["periods_after", "accuracy", "n_rows"]].apply(slope)
    return (-slopes).rename("decay").reset_index()


def _paired(members: pd.DataFrame, column: str, better: tuple, worse: tuple):
    """``column`` of the two settings lined up by (dataset, trial); diverged members become NaN."""
    def side(block, h):
        rows = members[(members["block"] == block) & np.isclose(members["h"], h)]
        values = rows[column].where(~rows["diverged"].astype(bool))
        return pd.Series(values.to_numpy(), index=pd.MultiIndex.from_frame(rows[["dataset", "trial"]]))

    a, b = side(*better), side(*worse)
    a, b = a.align(b, join="inner")
    return a.to_numpy(float), b.to_numpy(float)


def _paired_row(members: pd.DataFrame, dataset: str, statement: str, drop: str, better: tuple,
                worse: tuple) -> dict | None:
    a, b = _paired(members, drop, better, worse)
    kept = ~(np.isnan(a) | np.isnan(b))
    if not kept.any():
        return None
    rate = paired_hold_rate(a, b)
    clean_a, clean_b = (values[kept].mean() for values in _paired(members, "clean_accuracy", better, worse))
    measured = (f"mean drop {a[kept].mean():.3f} vs {b[kept].mean():.3f} (clean accuracy {clean_a:.3f} vs "
                f"{clean_b:.3f}) over {kept.sum()} pairs (left out: {len(a) - kept.sum()} with a diverged member)")
    return {"dataset": dataset, "statement": statement.format(attack=ATTACKS[drop]), "measured": measured,
            "k": rate.k, "n": rate.n, "rho": None, "low": rate.low, "high": rate.high, "verdict": rate.verdict}


def study_verdicts(members: pd.DataFrame, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per (data set, statement): the paired hold-rates and rank correlations of the module docstring.

    ``members`` has one row per member: dataset, block, h, trial, diverged, clean_accuracy,
    pgd_accuracy, noise_accuracy, stability_constant, max_amplification and, for temporal data,
    decay. Paired statements also get a row pooling the pairs of every data set.
    """
    members = with_drops(members)
    rows = []
    for dataset, own in members.groupby("dataset", sort=False):
        for statement, drop, better, worse in PAIRED:
            row = _paired_row(own, dataset, statement, drop, better, worse)
            if row is not None:
                rows.append(row)
        alive = own[~own["diverged"].astype(bool)]
        for statement, x, y in CORRELATIONS:
            if y not in alive or alive[y].isna().all():
                continue
            correlation = spearman_interval(alive[x], alive[y], n_resamples=n_resamples, seed=seed)
            rows.append({"dataset": dataset, "statement": statement,
                         "measured": f"{correlation} members (left out: {len(own) - len(alive)} diverged)",
                         "k": None, "n": correlation.n, "rho": correlation.rho, "low": correlation.low, "high": correlation.high,
                         "verdict": correlation.verdict})
    for statement, drop, better, worse in PAIRED:
        row = _paired_row(members, ALL_DATASETS, statement, drop, better, worse)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)
