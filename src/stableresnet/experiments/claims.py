"""The paper's quantitative statements, each checked against our result tables.

A claim names its figure, quotes the paper, says how it is measured, and computes the
measured value and its verdict from a reproduce run's records and tables alone. Verdicts
follow the rules of ``stableresnet.stats`` (stated there once):

- Picture figures (2-7) are one network each in the paper; here each runs several seeds,
  and a picture claim is checked seed by seed and reported as a hold-rate k/N with its
  95 % Wilson interval (holds when the interval lies above 1/2, does not hold when below,
  else unclear). A done record from before seeds (one network, no ``members``) counts as
  one seed: 1/1, which is never conclusive.
- Sweep figures (8-13, and 14 where it compares accuracies) run several trials of every
  (block, h); trial t of every block and h shares its split and seed. An accuracy
  comparison is checked trial by trial, pairing trials by their ``trial`` index, and rated
  by the same Wilson hold-rate over trials. A variance comparison ("a large variance",
  "much less volatile") is rated by the bootstrap interval of the ratio of standard
  deviations over the paired trials (``stats.std_ratio_interval``: holds above 1, does not
  hold below 1, else unclear). A claim with both parts holds when both hold, does not hold
  when either does not, else is unclear (``stats.all_hold``); its hold-rate columns carry
  the accuracy part. Mean ± std stay in the measured text, beside the verdict, not as it.
  A table without a ``trial`` column cannot be paired: its claims are not run.
- Figure 15's claim (accuracy over the periods after training) is still one comparison of
  means over trials and periods, a single bool with no interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..stats import HoldRate, StdRatio, all_hold, hold_rate, paired_hold_rate, std_ratio_interval, summarize


@dataclass(frozen=True)
class Claim:
    """``check(records)`` -> None (not run) or (measured, outcome); ``outcome`` is one bool per seed for
    a picture claim, a ``SweepOutcome`` for a sweep claim, or one bool (figure 15)."""

    figure: str
    paper: str
    measure: str
    check: Callable[[dict], tuple[str, bool | list[bool] | SweepOutcome] | None]  # records by figure (and "_out")


@dataclass(frozen=True)
class SweepOutcome:
    """A sweep claim's parts: the accuracy comparison's hold-rate over paired trials and, for a
    two-part claim, the bootstrap interval of the std ratio; the verdict needs every part."""

    accuracy: HoldRate
    spread: StdRatio | None = None

    @property
    def verdict(self) -> str:
        parts = [self.accuracy] + ([self.spread] if self.spread is not None else [])
        return all_hold([part.verdict for part in parts])


def _numbers(records: dict, figure: str) -> dict | None:
    record = records.get(figure)
    return None if record is None else record.get("numbers")


def _members(records: dict, figure: str) -> list[dict] | None:
    """Each seed's numbers of a picture figure; a record from before seeds is its one member."""
    record = records.get(figure)
    if record is None:
        return None
    return record.get("members") or [record["numbers"]]


def _spread(values) -> str:
    """"median M (range lo-hi)" of finite values; says how many were not finite."""
    finite = sorted(v for v in values if v is not None and math.isfinite(v))
    text = "" if not finite else (f"{finite[0]:.3g}" if len(finite) == 1 else
                                  f"median {pd.Series(finite).median():.3g} (range {finite[0]:.3g}–{finite[-1]:.3g})")
    missing = len(values) - len(finite)
    return text + (f"{'; ' if text else ''}{missing} non-finite" if missing else "")


def _ceiling(members: list[dict]) -> str:
    """The k-NN ceiling on the same test points, beside an "accuracy 1.0" statement."""
    values = [m.get("knn_accuracy") for m in members]
    values = [v for v in values if v is not None and math.isfinite(v)]
    return f"; best the data allow (k-NN on the same test points): {_spread(values)}" if values else ""


def _sweep(records: dict, figure: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """A sweep figure's summary (mean, std per (block, h)) and its test accuracies, one row per
    trial and one column per (block, h): row t pairs the members that share trial t's split and seed."""
    record = records.get(figure)
    if record is None or "table" not in record:
        return None
    table = pd.read_csv(records["_out"] / record["table"])
    if "trial" not in table:
        return None
    accuracy = table.pivot(index="trial", columns=["block", "h"], values="test_accuracy")
    return summarize(table).set_index(["block", "h"]), accuracy


def _paired(accuracy: pd.DataFrame, *keys: tuple[str, float]) -> pd.DataFrame | None:
    """The trials in which every (block, h) of ``keys`` was run and has an accuracy; None if none."""
    if any(key not in accuracy.columns for key in keys):
        return None
    trials = accuracy[list(keys)].dropna()
    return None if trials.empty else trials


def _mean_std(summary: pd.DataFrame, key: tuple[str, float]) -> str:
    return f"{summary.loc[key, 'mean']:.3f} ± {summary.loc[key, 'std']:.3f}"


def _trials_text(rate: HoldRate) -> str:
    """"k/N trials (95 % CI lo–hi)"."""
    return f"{rate.k}/{rate.n} trials (95 % CI {rate.low:.2f}–{rate.high:.2f})"


def _accuracy_about(figure: str, target: float, tolerance: float):
    def check(records):
        members = _members(records, figure)
        if members is None:
            return None
        values = [m["test_accuracy"] for m in members]
        return f"test accuracy {_spread(values)}", [abs(v - target) <= tolerance for v in values]
    return check


def _first_perfect_layer(figure: str, before: int):
    def check(records):
        members = _members(records, figure)
        if members is None:
            return None
        layers = [m["first_layer_accuracy_1"] for m in members]
        reached = [layer for layer in layers if layer is not None]
        text = (f"reached by {len(reached)} of {len(layers)} seeds"
                + (f" (layers {', '.join(map(str, sorted(reached)))})" if reached else "")
                + f"; best layer accuracy {_spread([m['max_layer_accuracy'] for m in members])}"
                + _ceiling(members))
        return text, [layer is not None and layer <= before for layer in layers]
    return check


def _never_reaches(figure: str, ceiling: float):
    def check(records):
        members = _members(records, figure)
        if members is None:
            return None
        values = [m["max_layer_accuracy"] for m in members]
        return f"best layer accuracy {_spread(values)}", [v < ceiling for v in values]
    return check


def _scale(value) -> float:
    """max |y| with an overflowed (non-finite) layer counted as infinitely large."""
    return value if value is not None and math.isfinite(value) else math.inf


def _scale_ratio(figure: str, factor: float, grows: bool):
    """max |y| at the last layer vs layer 0: ≥ ``factor`` × (grows) or < 1 × (shrinks)."""
    def check(records):
        members = _members(records, figure)
        if members is None:
            return None
        ratios = [_scale(m["max_abs_feature_last"]) / m["max_abs_feature_first"] for m in members]
        holds = [ratio >= factor for ratio in ratios] if grows else [ratio < 1 for ratio in ratios]
        return f"max |y| last / layer 0: {_spread(ratios)}", holds
    return check


def _bounded_against_plain(records):
    """Seed by seed (same seeds, same data): batch norm's max |y| at the last layer below plain's."""
    plain, batchnorm = _members(records, "fig2"), _members(records, "fig6")
    if plain is None or batchnorm is None:
        return None
    plain_by_seed = {m.get("seed", index): m for index, m in enumerate(plain)}
    pairs = [(m, plain_by_seed[m.get("seed", index)]) for index, m in enumerate(batchnorm)
             if m.get("seed", index) in plain_by_seed]
    if not pairs:
        return None
    return (f"max |y| at the last layer: batch norm {_spread([b['max_abs_feature_last'] for b, _ in pairs])}; "
            f"plain {_spread([p['max_abs_feature_last'] for _, p in pairs])}"), \
        [_scale(b["max_abs_feature_last"]) < _scale(p["max_abs_feature_last"]) for b, p in pairs]


def _depths_alike(figure: str, tolerance: float):
    """Each seed's test accuracy at the figure's depth and at ``compare_depth`` differ by ≤ tolerance."""
    def check(records):
        members = _members(records, figure)
        if members is None or any("compare_depth_test_accuracy" not in m for m in members):
            return None
        gaps = [m["test_accuracy"] - m["compare_depth_test_accuracy"] for m in members]
        depths = f"{members[0]['depth']} − {members[0]['compare_depth']} layers"
        return f"accuracy gap {depths}: {_spread(gaps)}", [abs(gap) <= tolerance for gap in gaps]
    return check


def _large_h_worse(figure: str):
    """Plain block at the largest h (≥ 0.8) vs h = 0.1, trial by trial: lower accuracy, and a larger std."""
    def check(records):
        sweep = _sweep(records, figure)
        if sweep is None:
            return None
        summary, accuracy = sweep
        large = max((h for block, h in accuracy.columns if block == "plain" and h >= 0.8), default=None)
        trials = None if large is None else _paired(accuracy, ("plain", 0.1), ("plain", large))
        if trials is None:
            return None
        small_h, large_h = trials[("plain", 0.1)], trials[("plain", large)]
        outcome = SweepOutcome(paired_hold_rate(large_h, small_h), std_ratio_interval(large_h, small_h))
        return (f"h=0.1: {_mean_std(summary, ('plain', 0.1))}; h={large:g}: {_mean_std(summary, ('plain', large))}; "
                f"lower in {_trials_text(outcome.accuracy)}; {outcome.spread}, h={large:g} over h=0.1"), outcome
    return check


def _batchnorm_steadier_at_h1(figure: str):
    """At h = 1, trial by trial: batch norm more accurate than plain, and plain's std larger."""
    def check(records):
        sweep = _sweep(records, figure)
        trials = None if sweep is None else _paired(sweep[1], ("plain", 1.0), ("batchnorm", 1.0))
        if trials is None:
            return None
        summary = sweep[0]
        plain, batchnorm = trials[("plain", 1.0)], trials[("batchnorm", 1.0)]
        outcome = SweepOutcome(paired_hold_rate(plain, batchnorm), std_ratio_interval(plain, batchnorm))
        return (f"batch norm {_mean_std(summary, ('batchnorm', 1.0))}, plain {_mean_std(summary, ('plain', 1.0))}; "
                f"better in {_trials_text(outcome.accuracy)}; {outcome.spread}, plain over batch norm"), outcome
    return check


def _batchnorm_not_better_than_small_h(figure: str):
    """The batch-norm h with the best mean; per trial its accuracy ≤ plain h = 0.1's + 0.005."""
    def check(records):
        sweep = _sweep(records, figure)
        if sweep is None:
            return None
        summary, accuracy = sweep
        means = summary["mean"].dropna()
        means = means[means.index.get_level_values("block") == "batchnorm"]
        best = None if means.empty else means.idxmax()
        trials = None if best is None else _paired(accuracy, best, ("plain", 0.1))
        if trials is None:
            return None
        rate = hold_rate(list(trials[best] <= trials[("plain", 0.1)] + 0.005))
        return (f"best batch norm (h={best[1]:g}) {_mean_std(summary, best)}, plain h=0.1 "
                f"{_mean_std(summary, ('plain', 0.1))}; not better in {_trials_text(rate)}"), SweepOutcome(rate)
    return check


def _small_h_near_perfect(records):
    """Per trial: plain and batch norm (those run) at h = 0.1 both reach ≥ 0.95."""
    sweep = _sweep(records, "fig8")
    if sweep is None:
        return None
    summary, accuracy = sweep
    keys = [(block, 0.1) for block in ("plain", "batchnorm") if (block, 0.1) in accuracy.columns]
    trials = _paired(accuracy, *keys) if keys else None
    if trials is None:
        return None
    rate = hold_rate(list((trials >= 0.95).all(axis=1)))
    return (", ".join(f"{block} {_mean_std(summary, (block, h))}" for block, h in keys)
            + f"; all ≥ 0.95 in {_trials_text(rate)}"), SweepOutcome(rate)


def _transfer_over_time(records):
    record = records.get("fig15")
    if record is None:
        return None
    periods = pd.read_csv(records["_out"] / record["table"])
    after = periods[periods["periods_after"] >= 1].groupby(["block", "h"])["accuracy"].mean()
    needed = [("plain", 0.1), ("shrinkage", 0.1), ("plain", 1.0)]
    if any(key not in after.index for key in needed):
        return None
    holds = min(after[("plain", 0.1)], after[("shrinkage", 0.1)]) >= after[("plain", 1.0)]
    return (f"mean over later periods: plain h=0.1 {after[('plain', 0.1)]:.3f}, shrinkage h=0.1 "
            f"{after[('shrinkage', 0.1)]:.3f}, plain h=1 {after[('plain', 1.0)]:.3f}"), bool(holds)


def _small_h_helps_drift_sweep(records):
    """Plain block, trial by trial: pooled test accuracy higher at h = 0.1 than at h = 1."""
    sweep = _sweep(records, "fig14")
    trials = None if sweep is None else _paired(sweep[1], ("plain", 0.1), ("plain", 1.0))
    if trials is None:
        return None
    rate = paired_hold_rate(trials[("plain", 1.0)], trials[("plain", 0.1)])
    summary = sweep[0]
    return (f"plain h=0.1 {_mean_std(summary, ('plain', 0.1))}, h=1 {_mean_std(summary, ('plain', 1.0))}; "
            f"higher at h=0.1 in {_trials_text(rate)}"), SweepOutcome(rate)


UCI = {"fig9": "Wine", "fig10": "Abalone", "fig11": "Absenteeism", "fig12": "Autism", "fig13": "Adult"}

CLAIMS = [
    Claim("fig2", "plain vanilla ResNet (h = 1) ... the solutions oscillate reaching an accuracy of 0.8",
          "per seed: test accuracy within 0.1 of 0.8", _accuracy_about("fig2", 0.8, 0.1)),
    Claim("fig2", "plain vanilla ResNet: the activations diverge to very large values on the deeper layers",
          "per seed: max |y| at the last layer ≥ 10 × at layer 0 (non-finite counts)",
          _scale_ratio("fig2", 10.0, grows=True)),
    Claim("fig3", "h = 0.1, 500 layers: accuracy reaches 1.0 before layer 200",
          "per seed: first layer whose accuracy is 1.0 (the head on the test points, or the set-up's reader), ≤ 200", _first_perfect_layer("fig3", 200)),
    Claim("fig4", "shrinkage h = 1: accuracy ... does not reach 0.7",
          "per seed: best layer accuracy (the head on the test points, or the set-up's reader) < 0.7", _never_reaches("fig4", 0.7)),
    Claim("fig4", "shrinkage h = 1: note that axes shrink rather than diverge",
          "per seed: max |y| at the last layer < at layer 0", _scale_ratio("fig4", 1.0, grows=False)),
    Claim("fig5", "shrinkage h = 0.1: accuracy on a 100-layer and 500-layer network ... at 0.85",
          "per seed: test accuracy within 0.1 of 0.85", _accuracy_about("fig5", 0.85, 0.1)),
    Claim("fig5", "shrinkage h = 0.1: increased depth does not offer an advantage; accuracy on a 100-layer and "
                  "500-layer network are largely the same",
          "per seed: test accuracies of the same seed's 500- and 100-layer networks within 0.05",
          _depths_alike("fig5", 0.05)),
    Claim("fig6", "batch norm: axes ranges ... do not explode as did those of plain vanilla ResNet",
          "per seed: largest |feature| at the last layer below plain h = 1's (same seed)", _bounded_against_plain),
    Claim("fig7", "batch norm with h = 0.1, 500 layers: accuracy reaches 1.0 by the 250th layer",
          "per seed: first layer whose accuracy is 1.0 (the head on the test points, or the set-up's reader), ≤ 250", _first_perfect_layer("fig7", 250)),
    Claim("fig8", "h = 0.1 ... ResNet and batch norm ResNet both at or near an optimal 1.0",
          "per trial: test accuracy at h = 0.1 ≥ 0.95 for plain and for batch norm", _small_h_near_perfect),
    *[Claim(figure, f"{name}: when h = 0.8 or h = 1 the residual block exhibits reduced test accuracy and a "
                    "large variance in accuracy",
            "plain block at the largest h ≥ 0.8 vs h = 0.1: lower accuracy per trial (paired by trial), and "
            "std ratio large h / h = 0.1 above 1 (bootstrap interval)", _large_h_worse(figure))
      for figure, name in UCI.items()],
    *[Claim(figure, f"{name}: with batch norm the accuracy when h = 1 is better and much less volatile than "
                    "plain vanilla ResNet",
            "at h = 1: batch norm more accurate than plain per trial (paired by trial), and std ratio "
            "plain / batch norm above 1 (bootstrap interval)", _batchnorm_steadier_at_h1(figure))
      for figure, name in UCI.items()],
    *[Claim(figure, f"{name}: the accuracy of ResNet with batch norm is not better than that of ResNet with h = 0.1",
            "batch norm at its h of best mean vs plain h = 0.1, per trial (paired by trial): ≤ plain + 0.005",
            _batchnorm_not_better_than_small_h(figure))
      for figure, name in UCI.items()],
    Claim("fig14", "setting the step size to h = 0.1 offers improved accuracy (Bitcoin; here Elec2)",
          "plain block, per trial (paired by trial): pooled test accuracy at h = 0.1 > at h = 1",
          _small_h_helps_drift_sweep),
    Claim("fig15", "the plain ResNet with h = 0.1 and the shrinkage block with h = 0.1 are most readily "
                   "transferable over time (Bitcoin; here Elec2)",
          "mean accuracy over the periods after training: both ≥ plain h = 1", _transfer_over_time),
]


def evaluate_claims(records: list[dict], out: str | Path) -> pd.DataFrame:
    """One row per claim: figure, paper, measure, measured, seeds_held, seeds, ci_low, ci_high, verdict, holds.

    ``verdict`` is "holds", "does not hold", "unclear" or "not run"; ``holds`` is True or
    False where the verdict is one of the first two, else None. For a picture claim
    ``seeds_held`` of ``seeds`` seeds hold, with the 95 % Wilson interval [ci_low, ci_high]
    (``stableresnet.stats``); for a sweep claim the same four columns hold its accuracy
    part's hold-rate over paired trials (k of n trials), and the verdict combines it with
    the std-ratio part where the claim has one (module docstring). For figure 15's claim
    the four are empty. ``records`` are the figures' done records; their tables are read
    relative to ``out``.
    """
    by_figure = {record["figure"]: record for record in records}
    by_figure["_out"] = Path(out)
    rows = []
    for claim in CLAIMS:
        outcome = claim.check(by_figure)
        row = {"figure": claim.figure, "paper": claim.paper, "measure": claim.measure, "measured": "not run",
               "seeds_held": None, "seeds": None, "ci_low": None, "ci_high": None, "verdict": "not run"}
        if outcome is not None:
            measured, holds = outcome
            row["measured"] = measured
            if isinstance(holds, list):
                rate = hold_rate(holds)
                row.update(seeds_held=rate.k, seeds=rate.n, ci_low=rate.low, ci_high=rate.high, verdict=rate.verdict)
            elif isinstance(holds, SweepOutcome):
                rate = holds.accuracy
                row.update(seeds_held=rate.k, seeds=rate.n, ci_low=rate.low, ci_high=rate.high, verdict=holds.verdict)
            else:
                row["verdict"] = "holds" if holds else "does not hold"
        row["holds"] = {"holds": True, "does not hold": False}.get(row["verdict"])
        rows.append(row)
    table = pd.DataFrame(rows)
    order = table["figure"].str.extract(r"(\d+)", expand=False).astype(int)
    return table.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def verdict_counts(claims: pd.DataFrame) -> str:
    """"K of N checked statements hold, D do not, U unclear" of a claims table (claims not run left out)."""
    verdicts = claims.loc[claims["verdict"] != "not run", "verdict"].value_counts()
    return (f"{verdicts.get('holds', 0)} of {int(verdicts.sum())} checked statements hold, "
            f"{verdicts.get('does not hold', 0)} do not, {verdicts.get('unclear', 0)} unclear")


def hold_rate_text(claim) -> str:
    """"k/N (95 % CI lo–hi)" of a claims-table row (seeds of a picture claim, trials of a sweep claim's
    accuracy part), "" for a claim without a hold-rate (figure 15)."""
    if claim.seeds is None or pd.isna(claim.seeds):
        return ""
    return f"{int(claim.seeds_held)}/{int(claim.seeds)} (95 % CI {claim.ci_low:.2f}–{claim.ci_high:.2f})"
