"""Sweep claims (Figures 8-14): accuracy comparisons rated over trials paired by their ``trial`` index,
variance comparisons by the bootstrap interval of the std ratio, two-part claims by both parts."""

import numpy as np
import pandas as pd
import pytest

from stableresnet.experiments.claims import SweepOutcome, evaluate_claims, hold_rate_text
from stableresnet.stats import StdRatio, hold_rate, std_ratio_interval, wilson_interval

# Ten trials of a Wine-like sweep; entry t of every list is trial t (same split and seed).
PLAIN_SMALL_H = [0.98, 0.99, 0.97, 0.98, 0.99, 0.98, 0.97, 0.99, 0.98, 0.98]
PLAIN_H1 = [0.60, 0.90, 0.70, 0.99, 0.50, 0.85, 0.65, 0.95, 0.55, 0.80]
BATCHNORM_SMALL_H = [0.99, 0.97, 0.99, 0.97, 0.98, 0.99, 0.99, 0.97, 0.99, 0.99]
BATCHNORM_H1 = [0.93, 0.94, 0.92, 0.93, 0.95, 0.94, 0.93, 0.92, 0.94, 0.93]


def write_sweep(path, columns: dict, seed=0):
    """A results table: one row per (block, h, trial), rows shuffled so that only ``trial`` pairs them."""
    rows = [{"block": block, "h": h, "trial": trial, "test_accuracy": accuracy}
            for (block, h), values in columns.items() for trial, accuracy in enumerate(values)
            if accuracy is not None]
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)
    table["dataset"], table["diverged"] = "toy", False
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


def claims_of(tmp_path, figure, columns):
    write_sweep(tmp_path / "runs" / figure / "results.csv", columns)
    claims = evaluate_claims([{"figure": figure, "table": f"runs/{figure}/results.csv"}], tmp_path)
    return claims[claims["figure"] == figure].reset_index(drop=True)


def rate(row):
    return int(row["seeds_held"]), int(row["seeds"]), row["verdict"]


@pytest.fixture
def wine(tmp_path):
    return claims_of(tmp_path, "fig9", {("plain", 0.1): PLAIN_SMALL_H, ("plain", 1.0): PLAIN_H1,
                                         ("batchnorm", 0.1): BATCHNORM_SMALL_H, ("batchnorm", 1.0): BATCHNORM_H1})


def test_large_h_is_lower_in_9_of_10_trials_and_wider(wine):
    # h = 1 below h = 0.1 in every trial but trial 3 (0.99 > 0.98): 9/10, Wilson [0.60, 0.98] -> holds.
    lower = [large < small for large, small in zip(PLAIN_H1, PLAIN_SMALL_H)]
    assert lower == [True, True, True, False, True, True, True, True, True, True]
    row = wine.iloc[0]
    assert rate(row)[:2] == (9, 10) and (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(9, 10))
    spread = std_ratio_interval(PLAIN_H1, PLAIN_SMALL_H)
    assert spread.ratio == pytest.approx(np.std(PLAIN_H1, ddof=1) / np.std(PLAIN_SMALL_H, ddof=1))
    assert spread.verdict == "holds" and row["verdict"] == "holds" and bool(row["holds"])
    # Mean ± std stay in the text, beside each part's rate.
    assert row["measured"] == (f"h=0.1: {np.mean(PLAIN_SMALL_H):.3f} ± {np.std(PLAIN_SMALL_H, ddof=1):.3f}; "
                               f"h=1: {np.mean(PLAIN_H1):.3f} ± {np.std(PLAIN_H1, ddof=1):.3f}; "
                               f"lower in 9/10 trials (95 % CI 0.60–0.98); {spread}, h=1 over h=0.1")
    assert hold_rate_text(row) == "9/10 (95 % CI 0.60–0.98)"


def test_batchnorm_at_h1_better_in_8_of_10_trials_is_unclear_though_steadier(wine):
    # Batch norm above plain at h = 1 except trials 3 (0.93 < 0.99) and 7 (0.92 < 0.95): 8/10, [0.49, 0.94].
    better = [b > p for b, p in zip(BATCHNORM_H1, PLAIN_H1)]
    assert sum(better) == 8 and not better[3] and not better[7]
    row = wine.iloc[1]
    assert rate(row) == (8, 10, "unclear") and row["holds"] is None
    spread = std_ratio_interval(PLAIN_H1, BATCHNORM_H1)
    assert spread.verdict == "holds"  # the variance part holds; the accuracy part keeps the claim unclear
    assert f"better in 8/10 trials (95 % CI 0.49–0.94); {spread}, plain over batch norm" in row["measured"]


def test_best_batchnorm_not_better_than_plain_small_h_in_4_of_10_trials(wine):
    # Best batch-norm mean is at h = 0.1 (0.983 vs 0.933); ≤ plain h = 0.1 + 0.005 in trials 1, 3, 4, 7.
    assert np.mean(BATCHNORM_SMALL_H) > np.mean(BATCHNORM_H1)
    held = [b <= p + 0.005 for b, p in zip(BATCHNORM_SMALL_H, PLAIN_SMALL_H)]
    assert [t for t, h in enumerate(held) if h] == [1, 3, 4, 7]
    row = wine.iloc[2]
    assert rate(row) == (4, 10, "unclear")
    assert row["measured"].startswith("best batch norm (h=0.1) 0.983 ± ")
    assert "not better in 4/10 trials" in row["measured"]


def test_a_two_part_claim_does_not_hold_when_its_accuracy_part_does_not(tmp_path):
    # h = 1 is above h = 0.1 in every trial (0/10: does not hold) although far wider (the std part holds).
    steady = [0.800, 0.801, 0.799, 0.800, 0.802, 0.801, 0.800, 0.799, 0.801, 0.800]
    high_and_wide = [0.85, 1.0, 0.90, 0.95, 0.99, 0.86, 0.97, 0.88, 1.0, 0.92]
    claims = claims_of(tmp_path, "fig10", {("plain", 0.1): steady, ("plain", 1.0): high_and_wide})
    row = claims.iloc[0]
    assert std_ratio_interval(high_and_wide, steady).verdict == "holds"
    assert rate(row) == (0, 10, "does not hold") and row["holds"] is False


def test_the_largest_h_at_least_0_8_is_compared_and_missing_trials_are_left_out(tmp_path):
    # Plain at h = 0.8 only (no h = 1); trial 4 of h = 0.8 was not run, so 4 pairs remain.
    claims = claims_of(tmp_path, "fig11", {("plain", 0.1): [0.9, 0.9, 0.9, 0.95, 0.9],
                                           ("plain", 0.5): [0.2, 0.2, 0.2, 0.2, 0.2],
                                           ("plain", 0.8): [0.5, 0.95, 0.6, 0.7, None]})
    row = claims.iloc[0]
    # Lower at h = 0.8 in trials 0, 2, 3 (not trial 1: 0.95 > 0.9): 3/4.
    assert rate(row) == (3, 4, "unclear") and "h=0.8:" in row["measured"]
    assert "lower in 3/4 trials" in row["measured"]


def test_no_spread_at_small_h_makes_the_variance_part_hold(tmp_path):
    """All trials at 1.0 for h = 0.1 against varying ones at h = 1: an infinite std ratio, the strongest case."""
    claims = claims_of(tmp_path, "fig12", {("plain", 0.1): [1.0, 1.0, 1.0], ("plain", 1.0): [0.5, 0.8, 0.6]})
    row = claims.iloc[0]
    assert rate(row) == (3, 3, "unclear")  # 3/3: [0.44, 1] cannot decide the accuracy part
    assert "std ratio inf (95 % CI inf–inf)" in row["measured"]


def test_fig8_counts_trials_where_both_blocks_reach_0_95(tmp_path):
    plain, batchnorm = [0.99, 0.96, 0.94, 1.0, 0.97], [0.98, 0.99, 0.99, 0.93, 0.96]
    claims = claims_of(tmp_path, "fig8", {("plain", 0.1): plain, ("batchnorm", 0.1): batchnorm,
                                          ("plain", 1.0): [0.5] * 5})
    # Both ≥ 0.95 in trials 0, 1 and 4; trial 2 fails on plain (0.94), trial 3 on batch norm (0.93).
    assert [p >= 0.95 and b >= 0.95 for p, b in zip(plain, batchnorm)] == [True, True, False, False, True]
    row = claims.iloc[0]
    assert rate(row) == (3, 5, "unclear") and "all ≥ 0.95 in 3/5 trials" in row["measured"]


def test_fig14_pairs_trials_and_unanimous_trials_decide(tmp_path):
    small_h = [0.70, 0.72, 0.71, 0.69, 0.73, 0.70, 0.71, 0.72, 0.70, 0.71]
    large_h = [0.60, 0.65, 0.62, 0.61, 0.66, 0.60, 0.64, 0.63, 0.62, None]  # trial 9 not run
    claims = claims_of(tmp_path, "fig14", {("plain", 0.1): small_h, ("plain", 1.0): large_h,
                                           ("plain", 0.5): [0.9] * 10})
    row = claims.iloc[0]
    assert rate(row) == (9, 9, "holds") and bool(row["holds"])  # 9/9: [0.70, 1]
    assert "higher at h=0.1 in 9/9 trials (95 % CI 0.70–1.00)" in row["measured"]


def test_pairing_is_by_trial_index_not_by_row_order(tmp_path):
    # Plain h = 1 is worse than h = 0.1 in the same trial, though its values in ascending order would
    # beat h = 0.1's in descending order: only pairing by ``trial`` gives 5/5.
    small_h, large_h = [0.95, 0.85, 0.75, 0.65, 0.55], [0.90, 0.80, 0.70, 0.60, 0.50]
    for seed in range(3):
        write_sweep(tmp_path / f"r{seed}.csv", {("plain", 0.1): small_h, ("plain", 1.0): large_h}, seed=seed)
        claims = evaluate_claims([{"figure": "fig14", "table": f"r{seed}.csv"}], tmp_path)
        assert rate(claims[claims["figure"] == "fig14"].iloc[0]) == (5, 5, "holds")


def test_a_table_without_trials_cannot_be_paired_and_is_not_run(tmp_path):
    table = pd.DataFrame({"block": ["plain"] * 4, "h": [0.1, 0.1, 1.0, 1.0], "test_accuracy": [0.9, 0.9, 0.5, 0.6],
                          "dataset": "toy", "diverged": False})
    table.to_csv(tmp_path / "old.csv", index=False)
    claims = evaluate_claims([{"figure": "fig14", "table": "old.csv"}], tmp_path)
    row = claims[claims["figure"] == "fig14"].iloc[0]
    assert row["verdict"] == "not run" and hold_rate_text(row) == ""


UNDEFINED = StdRatio(float("nan"), float("nan"), float("nan"), 2)


@pytest.mark.parametrize("accuracy, spread, expected", [
    (hold_rate([True] * 10), StdRatio(5.0, 2.0, 9.0, 10), "holds"),
    (hold_rate([True] * 10), StdRatio(1.2, 0.8, 2.0, 10), "unclear"),
    (hold_rate([True] * 10), UNDEFINED, "unclear"),
    (hold_rate([True] * 8 + [False] * 2), StdRatio(5.0, 2.0, 9.0, 10), "unclear"),
    (hold_rate([False] * 10), StdRatio(5.0, 2.0, 9.0, 10), "does not hold"),
    (hold_rate([True] * 10), StdRatio(0.5, 0.2, 0.9, 10), "does not hold"),
    (hold_rate([True] * 8 + [False] * 2), StdRatio(0.5, 0.2, 0.9, 10), "does not hold"),
    (hold_rate([True] * 10), None, "holds"),  # a one-part claim is its accuracy part
])
def test_a_two_part_verdict_needs_both_parts(accuracy, spread, expected):
    assert SweepOutcome(accuracy, spread).verdict == expected

