"""Figures 8-13: mean ± std test accuracy against the step size h, one line per block.

Everything is drawn from the tidy results table alone (``results.csv`` of a sweep).
"""

from __future__ import annotations

import pandas as pd

from ..stats import paired_hold_rate

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
