"""The paper's quantitative statements, each checked against our result tables.

A claim names its figure, quotes the paper, says how it is measured, and computes the
measured value and whether it holds from a reproduce run's records and tables alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..viz.sweep import summarize


@dataclass(frozen=True)
class Claim:
    figure: str
    paper: str
    measure: str
    check: Callable[[dict], tuple[str, bool] | None]  # records by figure (and "_out") -> (measured, holds)


def _numbers(records: dict, figure: str) -> dict | None:
    record = records.get(figure)
    return None if record is None else record.get("numbers")


def _summary(records: dict, figure: str) -> pd.DataFrame | None:
    record = records.get(figure)
    if record is None or "table" not in record:
        return None
    return summarize(pd.read_csv(records["_out"] / record["table"])).set_index(["block", "h"])


def _accuracy_about(figure: str, target: float, tolerance: float):
    def check(records):
        numbers = _numbers(records, figure)
        if numbers is None:
            return None
        value = numbers["test_accuracy"]
        return f"{value:.3f}", abs(value - target) <= tolerance
    return check


def _first_perfect_layer(figure: str, before: int):
    def check(records):
        numbers = _numbers(records, figure)
        if numbers is None:
            return None
        layer = numbers["first_layer_accuracy_1"]
        if layer is None:
            return f"never (best {numbers['max_layer_accuracy']:.3f} of {numbers['depth']} layers)", False
        return f"layer {layer}", layer <= before
    return check


def _never_reaches(figure: str, ceiling: float):
    def check(records):
        numbers = _numbers(records, figure)
        if numbers is None:
            return None
        return f"best layer {numbers['max_layer_accuracy']:.3f}", numbers["max_layer_accuracy"] < ceiling
    return check


def _bounded_against_plain(records):
    plain, batchnorm = _numbers(records, "fig2"), _numbers(records, "fig6")
    if plain is None or batchnorm is None:
        return None
    return (f"max |y| at layer 100: batch norm {batchnorm['max_abs_feature_last']:.3g}, "
            f"plain {plain['max_abs_feature_last']:.3g}"), batchnorm["max_abs_feature_last"] < plain["max_abs_feature_last"]


def _large_h_worse(figure: str):
    """Plain block: mean lower and std larger at the largest h (≥ 0.8) than at h = 0.1."""
    def check(records):
        summary = _summary(records, figure)
        if summary is None or "plain" not in summary.index.get_level_values(0):
            return None
        plain = summary.loc["plain"]
        large = plain[plain.index >= 0.8]
        if 0.1 not in plain.index or large.empty:
            return None
        low, high = plain.loc[0.1], large.iloc[-1]
        holds = high["mean"] < low["mean"] and high["std"] > low["std"]
        return (f"h=0.1: {low['mean']:.3f} ± {low['std']:.3f}; h={large.index[-1]:g}: "
                f"{high['mean']:.3f} ± {high['std']:.3f}"), bool(holds)
    return check


def _batchnorm_steadier_at_h1(figure: str):
    def check(records):
        summary = _summary(records, figure)
        if summary is None or ("plain", 1.0) not in summary.index or ("batchnorm", 1.0) not in summary.index:
            return None
        plain, batchnorm = summary.loc[("plain", 1.0)], summary.loc[("batchnorm", 1.0)]
        holds = batchnorm["mean"] > plain["mean"] and batchnorm["std"] < plain["std"]
        return (f"batch norm {batchnorm['mean']:.3f} ± {batchnorm['std']:.3f}, "
                f"plain {plain['mean']:.3f} ± {plain['std']:.3f}"), bool(holds)
    return check


def _batchnorm_not_better_than_small_h(figure: str):
    def check(records):
        summary = _summary(records, figure)
        if summary is None or ("plain", 0.1) not in summary.index or "batchnorm" not in summary.index.get_level_values(0):
            return None
        best = summary.loc["batchnorm"]["mean"].max()
        plain = summary.loc[("plain", 0.1), "mean"]
        return f"best batch norm {best:.3f}, plain h=0.1 {plain:.3f}", bool(best <= plain + 0.005)
    return check


def _small_h_near_perfect(records):
    summary = _summary(records, "fig8")
    if summary is None:
        return None
    values = {block: summary.loc[(block, 0.1), "mean"] for block in ("plain", "batchnorm") if (block, 0.1) in summary.index}
    if not values:
        return None
    return ", ".join(f"{b} {v:.3f}" for b, v in values.items()), all(v >= 0.95 for v in values.values())


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
    summary = _summary(records, "fig14")
    if summary is None or ("plain", 0.1) not in summary.index or ("plain", 1.0) not in summary.index:
        return None
    low, high = summary.loc[("plain", 0.1), "mean"], summary.loc[("plain", 1.0), "mean"]
    return f"plain h=0.1 {low:.3f}, h=1 {high:.3f}", bool(low > high)


UCI = {"fig9": "Wine", "fig10": "Abalone", "fig11": "Absenteeism", "fig12": "Autism", "fig13": "Adult"}

CLAIMS = [
    Claim("fig2", "plain vanilla ResNet (h = 1) ... the solutions oscillate reaching an accuracy of 0.8",
          "test accuracy within 0.1 of 0.8", _accuracy_about("fig2", 0.8, 0.1)),
    Claim("fig3", "h = 0.1, 500 layers: accuracy reaches 1.0 before layer 200",
          "first layer whose head accuracy is 1.0, ≤ 200", _first_perfect_layer("fig3", 200)),
    Claim("fig4", "shrinkage h = 1: accuracy ... does not reach 0.7",
          "best head accuracy over all layers < 0.7", _never_reaches("fig4", 0.7)),
    Claim("fig5", "shrinkage h = 0.1: accuracy on a 100-layer and 500-layer network ... at 0.85",
          "test accuracy within 0.1 of 0.85", _accuracy_about("fig5", 0.85, 0.1)),
    Claim("fig6", "batch norm: axes ranges ... do not explode as did those of plain vanilla ResNet",
          "largest |feature| at the last layer below plain h = 1's", _bounded_against_plain),
    Claim("fig7", "batch norm with h = 0.1, 500 layers: accuracy reaches 1.0 by the 250th layer",
          "first layer whose head accuracy is 1.0, ≤ 250", _first_perfect_layer("fig7", 250)),
    Claim("fig8", "h = 0.1 ... ResNet and batch norm ResNet both at or near an optimal 1.0",
          "mean test accuracy at h = 0.1 ≥ 0.95 for plain and batch norm", _small_h_near_perfect),
    *[Claim(figure, f"{name}: when h = 0.8 or h = 1 the residual block exhibits reduced test accuracy and a "
                    "large variance in accuracy",
            "plain block at the largest h ≥ 0.8 vs h = 0.1: lower mean and larger std", _large_h_worse(figure))
      for figure, name in UCI.items()],
    *[Claim(figure, f"{name}: with batch norm the accuracy when h = 1 is better and much less volatile than "
                    "plain vanilla ResNet",
            "at h = 1: batch norm mean > plain mean and batch norm std < plain std", _batchnorm_steadier_at_h1(figure))
      for figure, name in UCI.items()],
    *[Claim(figure, f"{name}: the accuracy of ResNet with batch norm is not better than that of ResNet with h = 0.1",
            "best batch-norm mean over h ≤ plain mean at h = 0.1 (+0.005)", _batchnorm_not_better_than_small_h(figure))
      for figure, name in UCI.items()],
    Claim("fig14", "setting the step size to h = 0.1 offers improved accuracy (Bitcoin; here Elec2)",
          "plain block: mean test accuracy at h = 0.1 > at h = 1", _small_h_helps_drift_sweep),
    Claim("fig15", "the plain ResNet with h = 0.1 and the shrinkage block with h = 0.1 are most readily "
                   "transferable over time (Bitcoin; here Elec2)",
          "mean accuracy over the periods after training: both ≥ plain h = 1", _transfer_over_time),
]


def evaluate_claims(records: list[dict], out: str | Path) -> pd.DataFrame:
    """One row per claim: figure, paper, measure, measured, holds (None where its figure did not run).

    ``records`` are the figures' done records; their tables are read relative to ``out``.
    """
    by_figure = {record["figure"]: record for record in records}
    by_figure["_out"] = Path(out)
    rows = []
    for claim in CLAIMS:
        outcome = claim.check(by_figure)
        measured, holds = outcome if outcome is not None else ("not run", None)
        rows.append({"figure": claim.figure, "paper": claim.paper, "measure": claim.measure,
                     "measured": measured, "holds": holds})
    table = pd.DataFrame(rows)
    order = table["figure"].str.extract(r"(\d+)", expand=False).astype(int)
    return table.iloc[order.argsort(kind="stable")].reset_index(drop=True)
