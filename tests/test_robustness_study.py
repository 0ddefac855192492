"""The robustness study (beyond4): paired drops, Spearman with a bootstrap interval, decay, resume, report."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from stableresnet.data import load_dataset
from stableresnet.experiments import reproduce
from stableresnet.experiments.drift import DriftConfig
from stableresnet.experiments.reproduce import load_specs, run_reproduce
from stableresnet.experiments.robustness import ALL_DATASETS, decay_per_member, study_verdicts
from stableresnet.stats import paired_hold_rate, spearman, spearman_interval, wilson_interval


def test_paired_hold_rate_counts_strict_wins_and_leaves_out_nan_pairs():
    rate = paired_hold_rate([0.1, 0.2, 0.3, np.nan, 0.0], [0.2, 0.2, 0.5, 0.1, 0.4])
    # pairs: 0.1<0.2 yes, 0.2<0.2 tie (no), 0.3<0.5 yes, NaN left out, 0.0<0.4 yes
    assert (rate.k, rate.n) == (3, 4)
    assert (rate.low, rate.high) == pytest.approx(wilson_interval(3, 4))
    with pytest.raises(ValueError, match="one length"):
        paired_hold_rate([0.1], [0.1, 0.2])


def test_wilson_bounds_are_exact_at_none_and_all():
    assert wilson_interval(0, 3)[0] == 0.0 and wilson_interval(3, 3)[1] == 1.0


def test_spearman_matches_scipy_with_ties_and_along_an_axis():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(4, 30)).astype(float)  # many ties
    y = x + rng.integers(0, 3, size=(4, 30))
    ours = spearman(x, y, axis=1)
    for row in range(4):
        assert ours[row] == pytest.approx(spearmanr(x[row], y[row]).statistic, abs=1e-12)
    assert spearman(np.arange(10.0), np.arange(10.0) ** 3) == pytest.approx(1.0)


def test_spearman_interval_of_exact_monotone_relations_and_a_constant():
    x = np.arange(12.0)
    up = spearman_interval(x, np.exp(x))
    assert (up.rho, up.low, up.high, up.verdict) == (1.0, 1.0, 1.0, "holds")
    down = spearman_interval(x, -x)
    assert (down.rho, down.verdict) == (-1.0, "does not hold")
    assert spearman_interval(x, -x, sign=-1).verdict == "holds"
    flat = spearman_interval(x, np.ones(12))
    assert math.isnan(flat.rho) and flat.verdict == "unclear" and "undefined" in str(flat)
    with_nan = spearman_interval(np.r_[x, np.nan], np.r_[x, 3.0])
    assert with_nan.n == 12


def test_spearman_interval_covers_the_closed_form_rank_correlation():
    """Bivariate normal with Pearson r: Spearman's population ρ_s = (6/π) arcsin(r/2); a 95 % interval
    should cover it in about 95 % of samples."""
    r = 0.6
    truth = 6 / math.pi * math.asin(r / 2)
    rng = np.random.default_rng(1)
    covered = 0
    for sample in range(120):
        xy = rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=80)
        interval = spearman_interval(xy[:, 0], xy[:, 1], n_resamples=1000, seed=sample)
        covered += interval.low <= truth <= interval.high
    assert 0.86 <= covered / 120 <= 1.0


def members_table():
    """Two data sets, three trials, plain h = 0.1 / 1 and shrinkage h = 1 (hand-made numbers)."""
    rows = []
    # (dataset, trial) -> pgd accuracy of (plain 0.1, plain 1, shrinkage 1); clean accuracy 0.9 for all.
    pgd = {("a", 0): (0.8, 0.6, 0.7), ("a", 1): (0.7, 0.7, 0.8), ("a", 2): (0.85, 0.5, 0.4),
           ("b", 0): (0.8, 0.7, 0.9), ("b", 1): (0.6, 0.7, 0.8), ("b", 2): (0.8, 0.2, 0.5)}
    settings = [("plain", 0.1), ("plain", 1.0), ("shrinkage", 1.0)]
    for (dataset, trial), values in pgd.items():
        for (block, h), value in zip(settings, values):
            rows.append({"dataset": dataset, "block": block, "h": h, "trial": trial,
                         "diverged": dataset == "b" and trial == 2 and block == "plain" and h == 1.0,
                         "clean_accuracy": 0.9, "pgd_accuracy": value, "noise_accuracy": 0.9,
                         "stability_constant": 1.0 + 10 * (0.9 - value) + 0.01 * trial,
                         "max_amplification": 1.0 + (trial % 2)})
    return pd.DataFrame(rows)


def test_study_verdicts_against_hand_counted_pairs():
    verdicts = study_verdicts(members_table(), n_resamples=200).set_index(["dataset", "statement"])
    small_h = "plain h = 0.1 loses less accuracy under PGD (ε = 0.1) than plain h = 1"
    shrink = "shrinkage loses less accuracy under PGD (ε = 0.1) than plain, both at h = 1"
    # a: plain-0.1 drops 0.1, 0.2, 0.05 vs plain-1 drops 0.3, 0.2, 0.4 -> wins in trials 0, 2 (trial 1 ties)
    assert verdicts.loc[("a", small_h), ["k", "n"]].tolist() == [2, 3]
    # b: trial 2's plain h = 1 diverged, so only trials 0 and 1: 0.1 < 0.2 yes, 0.3 < 0.2 no
    assert verdicts.loc[("b", small_h), ["k", "n"]].tolist() == [1, 2]
    assert "left out: 1 with a diverged member" in verdicts.loc[("b", small_h), "measured"]
    # a: shrinkage drops 0.2, 0.1, 0.5 vs plain-1 0.3, 0.2, 0.4 -> 2 of 3
    assert verdicts.loc[("a", shrink), ["k", "n"]].tolist() == [2, 3]
    assert verdicts.loc[(ALL_DATASETS, small_h), ["k", "n"]].tolist() == [3, 5]  # pooled pairs
    # Noise drops are all 0: every pair ties, so the statement never holds.
    noise = "plain h = 0.1 loses less accuracy under noise (σ = 0.1) than plain h = 1"
    assert verdicts.loc[("a", noise), "k"] == 0
    # The correlation over members (diverged ones left out) is scipy's Spearman.
    table = members_table()
    alive = table[(table["dataset"] == "a") & ~table["diverged"]]
    rho = verdicts.loc[("a", "a larger stability constant c goes with a larger PGD drop"), "rho"]
    assert rho == pytest.approx(spearmanr(alive["stability_constant"], 0.9 - alive["pgd_accuracy"]).statistic)
    assert ("a", "a larger stability constant c goes with a faster decay of accuracy over later periods") \
        not in verdicts.index  # no per-period data, no decay statement


def test_decay_is_minus_the_weighted_slope_over_later_periods():
    rows = []
    for t, n_rows in zip(range(0, 5), (50, 100, 100, 100, 3)):
        rows.append({"dataset": "s", "block": "plain", "h": 0.1, "trial": 0, "periods_after": t, "n_rows": n_rows,
                     "accuracy": 0.9 - 0.02 * t})  # an exact line: the weights cannot move it
        # Member 2: the line 0.8 at t = 1..3 but 0.2 in a 3-row last period; period 0 is not "later".
        rows.append({"dataset": "s", "block": "plain", "h": 1.0, "trial": 0, "periods_after": t, "n_rows": n_rows,
                     "accuracy": 0.2 if t in (0, 4) else 0.8})
    decay = decay_per_member(pd.DataFrame(rows)).set_index("h")["decay"]
    assert decay[0.1] == pytest.approx(0.02)
    # Weighted least squares by hand: points (1, .8, 100), (2, .8, 100), (3, .8, 100), (4, .2, 3).
    t, a, w = np.array([1, 2, 3, 4.0]), np.array([0.8, 0.8, 0.8, 0.2]), np.array([100, 100, 100, 3.0])
    t_bar, a_bar = (w * t).sum() / w.sum(), (w * a).sum() / w.sum()
    slope = (w * (t - t_bar) * (a - a_bar)).sum() / (w * (t - t_bar) ** 2).sum()
    assert decay[1.0] == pytest.approx(-slope)


def test_drift_robustness_is_left_out_of_the_saved_config_when_off():
    assert "robustness" not in DriftConfig("elec2", "12").to_json()
    assert DriftConfig("elec2", "12", robustness=True).to_json()["robustness"] is True


def test_autism_noleak_is_autism_without_result():
    full, noleak = load_dataset("autism", seed=3), load_dataset("autism-noleak", seed=3)
    assert noleak.n_features == full.n_features - 1 == 19
    assert "result" in full.feature_names and "result" not in noleak.feature_names
    np.testing.assert_array_equal(noleak.y_test, full.y_test)  # same rows, same split


TINY = """
[beyond4]
title = "Does stability buy robustness? tiny"
kind = "robustness"
datasets = ["wine"]
step_sizes = [0.1, 1.0]
trials = 2
depth = 2
epochs = 1
drift = { data = "elec2", train_until = "12", batch_size = 2000, depth = 2, width = 4, epochs = 1 }

[fig12]
title = "Different h on the Autism Screening dataset"
note = "the label <leaks>"
kind = "sweep"
dataset = "autism"
trials = 1
step_sizes = [1.0]
blocks = ["plain"]
depth = 2
epochs = 1
"""


def test_the_study_resumes_after_a_kill_and_reports_its_verdicts(tmp_path, monkeypatch):
    from stableresnet.experiments import drift
    from stableresnet.experiments.report import build_report
    from stableresnet.experiments.claims import evaluate_claims

    spec = tmp_path / "spec.toml"
    spec.write_text(TINY)
    experiments = load_specs("quick", spec)
    whole = run_reproduce(experiments[:1], tmp_path / "whole", "quick")
    expected = pd.read_csv(tmp_path / "whole" / whole[0]["table"]).drop(columns="seconds")

    real_run_block, calls = drift.run_block, []

    def killed_in_second_block(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_block(*args, **kwargs)

    monkeypatch.setattr(drift, "run_block", killed_in_second_block)
    with pytest.raises(KeyboardInterrupt):
        run_reproduce(experiments[:1], tmp_path / "resumed", "quick", workers=1)
    rerun = []
    monkeypatch.setattr(drift, "run_block", lambda *a, **k: (rerun.append(a[1]), real_run_block(*a, **k))[1])
    records = run_reproduce(experiments, tmp_path / "resumed", "quick", workers=1)
    assert calls[:1] == ["plain"] and rerun == ["shrinkage", "batchnorm"]  # the finished block is not retrained
    resumed = pd.read_csv(tmp_path / "resumed" / records[0]["table"]).drop(columns="seconds")
    pd.testing.assert_frame_equal(resumed, expected)
    assert len(resumed) == (3 * 2 * 2) * 2  # (blocks × h × trials) for wine and for elec2
    assert resumed.groupby(["dataset", "trial"])["seed"].nunique().eq(1).all()  # paired: one seed per trial
    assert resumed["decay"].notna().sum() == 12 and resumed["pgd_accuracy"].notna().all()

    verdicts = pd.read_csv(tmp_path / "resumed" / "beyond4" / "verdicts.csv")
    assert {"wine", "elec2", ALL_DATASETS} == set(verdicts["dataset"])
    assert records[0]["numbers"]["statements"] == len(verdicts)
    page = build_report(tmp_path / "resumed", records, evaluate_claims(records, tmp_path / "resumed"), "quick",
                        "cpu").read_text()
    assert "beyond4: Does stability buy robustness?" in page and "src='beyond4/drops.png'" in page
    assert "faster decay of accuracy over later periods" in page
    assert "the label &lt;leaks&gt;" in page  # fig12's note, escaped
    assert json.loads((tmp_path / "resumed" / "fig12" / "done.json").read_text())["note"] == "the label <leaks>"


def test_the_bundled_study_runs_every_block_at_four_h_with_ten_trials_at_paper_scale():
    for scale, trials in (("quick", 3), ("paper", 10)):
        study = {e.figure: e for e in load_specs(scale)}["beyond4"]
        sweeps, drift_config = reproduce.RobustnessKind.config(study.settings)
        assert [c.dataset for c in sweeps] == ["circles", "wine", "abalone", "absenteeism", "autism",
                                               "autism-noleak", "adult"]
        for config in [*sweeps, drift_config]:
            assert config.robustness and config.trials == trials
            assert config.step_sizes == (0.1, 0.3, 0.5, 1.0) and len(config.blocks) == 3
        assert drift_config.data == "elec2"
