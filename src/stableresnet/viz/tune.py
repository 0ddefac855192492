"""The table ``stableresnet tune`` chose from: mean ± std CV accuracy against h per block, the choice marked.

Drawn from the tidy ``cv_results.csv`` records alone (``stableresnet.tuning.cv_results_frame``).
"""

from __future__ import annotations

import pandas as pd

from .sweep import BLOCK_COLOURS, BLOCK_LABELS


def plot_tune(table: pd.DataFrame, ax=None):
    """Mean ± std (over folds) of the CV accuracy against h, one line per block; returns the Figure.

    ``table`` has one row per (block, h) with columns ``block``, ``step_size``, ``mean_test_score``,
    ``std_test_score``, ``chosen`` and ``split{k}_test_score``; the chosen row gets a ring.
    """
    from matplotlib.figure import Figure

    if ax is None:
        figure = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    for block, rows in table.groupby("block", sort=False):
        rows = rows.sort_values("step_size")
        colour = BLOCK_COLOURS.get(block)
        mean, std = rows["mean_test_score"], rows["std_test_score"]
        ax.plot(rows["step_size"], mean, marker="o", color=colour, label=BLOCK_LABELS.get(block, block))
        ax.fill_between(rows["step_size"], mean - std, mean + std, color=colour, alpha=0.18, linewidth=0)
    chosen = table[table["chosen"]].iloc[0]
    ax.plot(chosen["step_size"], chosen["mean_test_score"], marker="o", markersize=16, markerfacecolor="none",
            markeredgecolor="black", linestyle="none",
            label=f"chosen: {BLOCK_LABELS.get(chosen['block'], chosen['block'])}, h = {chosen['step_size']:g}")
    n_folds = sum(column.startswith("split") for column in table.columns)
    ax.set_title(f"Cross-validated accuracy: mean ± std over {n_folds} folds")
    ax.set_xlabel("step size h")
    ax.set_ylabel("CV accuracy")
    ax.set_xticks(sorted(table["step_size"].unique()))
    ax.grid(alpha=0.3)
    ax.legend()
    return figure
