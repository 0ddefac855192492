"""Figure 15: mean ± std accuracy on each period after training, one line per (block, h).

Drawn from the tidy per-period table alone (``periods.csv`` of a drift experiment). Figure 14 (accuracy
against h) is ``stableresnet.viz.sweep.plot_sweep`` applied to the experiment's ``sweep.csv``.
"""

from __future__ import annotations

import pandas as pd

from ..stats import summarize_drift
from .sweep import BLOCK_COLOURS, BLOCK_LABELS

LINE_STYLES = ("-", "--", ":", "-.")


def plot_drift(periods: pd.DataFrame, step_sizes=None, metric: str = "accuracy", period_unit: str = "period",
               ax=None):
    """Mean ± one standard deviation of ``metric`` against periods after training; returns the Figure.

    Parameters
    ----------
    periods : the per-period table (columns dataset, block, h, periods_after, period_label, n_rows,
        diverged and ``metric``).
    step_sizes : sequence of float, optional
        Only these h (all by default). Colour marks the block, line style the h.
    period_unit : str
        Word for one period on the x axis ("month").
    ax : matplotlib Axes, optional
    """
    from matplotlib.figure import Figure

    if ax is None:
        figure = Figure(figsize=(7.2, 4.4), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    if step_sizes is not None:
        periods = periods[periods["h"].isin(list(step_sizes))]
    summary = summarize_drift(periods, metric)
    styles = {h: LINE_STYLES[i % len(LINE_STYLES)] for i, h in enumerate(sorted(summary["h"].unique()))}
    for (block, h), rows in summary.groupby(["block", "h"], sort=False):
        colour = BLOCK_COLOURS.get(block)
        std = rows["std"].fillna(0.0)
        ax.plot(rows["periods_after"], rows["mean"], linestyle=styles[h], marker=".", color=colour,
                label=f"{BLOCK_LABELS.get(block, block)}, h = {h:g}")
        ax.fill_between(rows["periods_after"], rows["mean"] - std, rows["mean"] + std, color=colour, alpha=0.12,
                        linewidth=0)
    datasets = ", ".join(sorted(summary["dataset"].unique()))
    trials = int(summary["trials"].max()) if len(summary) else 0
    ax.set_title(f"{datasets}: accuracy over time after training, mean ± std over {trials} trial"
                 f"{'s' * (trials != 1)}")
    ax.set_xlabel(f"{period_unit}s after the training window")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure
