"""Figures 8-13: mean ± std test accuracy against the step size h, one line per block.

Everything is drawn from the tidy results table alone (``results.csv`` of a sweep).
"""

from __future__ import annotations

import pandas as pd

from ..stats import summarize

# The paper's legend names.
BLOCK_LABELS = {"plain": "residual block", "batchnorm": "batch norm", "shrinkage": "shrinkage block"}
BLOCK_COLOURS = {"plain": "#d62728", "batchnorm": "#1f77b4", "shrinkage": "#2ca02c"}


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


def plot_comparison(summary: pd.DataFrame, metric: str = "test accuracy"):
    """One panel per dataset: mean ± std per (variant, block, h), grouped and coloured by variant."""
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(summary["dataset"]))
    variants = list(dict.fromkeys(summary["variant"]))
    columns = min(len(datasets), 3)
    rows = -(-len(datasets) // columns)
    figure = Figure(figsize=(4.6 * columns, 3.8 * rows), layout="constrained")
    colours = [f"C{k % 10}" for k in range(len(variants))]
    for k, dataset in enumerate(datasets):
        ax = figure.add_subplot(rows, columns, k + 1)
        cells = summary[summary["dataset"] == dataset]
        ticks, labels = [], []
        for position, cell in enumerate(cells.itertuples()):
            colour = colours[variants.index(cell.variant)]
            ax.errorbar(position, cell.mean, yerr=0.0 if pd.isna(cell.std) else cell.std, fmt="o", color=colour,
                        capsize=3, label=cell.variant if cell.variant not in ax.get_legend_handles_labels()[1] else None)
            ticks.append(position)
            labels.append(f"{cell.block}\nh={cell.h:g}" if cells["block"].nunique() > 1 else f"h={cell.h:g}")
        ax.set_xticks(ticks, labels, fontsize="x-small")
        ax.set_title(dataset)
        ax.set_ylabel(f"{metric}: mean ± std")
        ax.grid(alpha=0.3, axis="y")
    figure.axes[0].legend(fontsize="x-small")
    return figure
