"""Figures 8-13: mean ± std test accuracy against the step size h, one line per block.

Everything is drawn from the tidy results table alone (``results.csv`` of a sweep).
"""

from __future__ import annotations

import pandas as pd

# The paper's legend names.
BLOCK_LABELS = {"plain": "residual block", "batchnorm": "batch norm", "shrinkage": "shrinkage block"}
BLOCK_COLOURS = {"plain": "#d62728", "batchnorm": "#1f77b4", "shrinkage": "#2ca02c"}


def summarize(table: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """Per (dataset, block, h): trials, mean, std (sample, ddof=1), min, max of ``metric`` and diverged count."""
    grouped = table.groupby(["dataset", "block", "h"], sort=True)
    summary = grouped[metric].agg(trials="count", mean="mean", std="std", min="min", max="max")
    summary["diverged"] = grouped["diverged"].sum().astype(int)
    return summary.reset_index()


def plot_sweep(table: pd.DataFrame, metric: str = "test_accuracy", ax=None):
    """Mean ± one standard deviation of ``metric`` against h, one line per block; returns the Figure."""
    from matplotlib.figure import Figure

    if ax is None:
        figure = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    summary = summarize(table, metric)
    for block, rows in summary.groupby("block", sort=False):
        colour = BLOCK_COLOURS.get(block)
        std = rows["std"].fillna(0.0)
        ax.plot(rows["h"], rows["mean"], marker="o", color=colour, label=BLOCK_LABELS.get(block, block))
        ax.fill_between(rows["h"], rows["mean"] - std, rows["mean"] + std, color=colour, alpha=0.18, linewidth=0)
    datasets = ", ".join(sorted(summary["dataset"].unique()))
    trials = int(summary["trials"].max())
    ax.set_title(f"Different h on {datasets}: mean ± std over {trials} trial{'s' * (trials != 1)}")
    ax.set_xlabel("step size h")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_xticks(sorted(summary["h"].unique()))
    ax.grid(alpha=0.3)
    ax.legend()
    return figure
