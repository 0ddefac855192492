"""The robustness study's figures, drawn from its members table and verdicts alone.

- ``plot_drops``: the accuracy lost under PGD (ε = 0.1) and under Gaussian noise (σ = 0.1)
  against h, one line per block (mean ± std over trials), one column per data set.
- ``plot_stability_scatter``: each member's stability constant c against its PGD drop (and, for
  temporal data, against its decay over later periods), Spearman's ρ in each title.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import ATTACKS, drop_summary, with_drops
from .sweep import BLOCK_COLOURS, BLOCK_LABELS


def plot_drops(members: pd.DataFrame, per_row: int = 4):
    """Per data set a PGD-drop panel above a noise-drop panel, ``per_row`` data sets across: mean ± std
    drop against h, one line per block."""
    from matplotlib.figure import Figure

    summary = drop_summary(members)
    datasets = list(dict.fromkeys(summary["dataset"]))
    columns, bands = min(per_row, len(datasets)), -(-len(datasets) // per_row)
    figure = Figure(figsize=(3.2 * columns, 5.2 * bands), layout="constrained")
    axes = figure.subplots(2 * bands, columns, squeeze=False, sharex=True)
    for column in range(len(datasets) - (bands - 1) * columns, columns):  # empty slots of the last band
        axes[-2, column].set_visible(False)
        axes[-1, column].set_visible(False)
    for kind, drop in enumerate(("pgd_drop", "noise_drop")):
        for index, dataset in enumerate(datasets):
            row, column = 2 * (index // columns) + kind, index % columns
            ax = axes[row, column]
            for block, rows in summary[summary["dataset"] == dataset].groupby("block", sort=False):
                mean, std = rows[f"{drop}_mean"], rows[f"{drop}_std"].fillna(0.0)
                colour = BLOCK_COLOURS.get(block)
                ax.plot(rows["h"], mean, marker="o", color=colour, label=BLOCK_LABELS.get(block, block))
                ax.fill_between(rows["h"], mean - std, mean + std, color=colour, alpha=0.18, linewidth=0)
            ax.axhline(0, color="#888", linewidth=0.6)
            ax.grid(alpha=0.3)
            ax.tick_params(labelbottom=True)
            if kind == 0:
                ax.set_title(dataset)
            else:
                ax.set_xlabel("step size h")
            if column == 0:
                ax.set_ylabel(f"accuracy lost under\n{ATTACKS[drop]}")
    axes[0, 0].legend(fontsize=8)
    trials = int(summary["trials"].max())
    figure.suptitle(f"Clean − attacked test accuracy, mean ± std over up to {trials} trials (diverged members left out)")
    return figure


def plot_stability_scatter(members: pd.DataFrame, verdicts: pd.DataFrame):
    """One panel per (data set, y): c (log axis) against the PGD drop or the decay, ρ from ``verdicts``."""
    from matplotlib.figure import Figure

    members = with_drops(members)
    alive = members[~members["diverged"].astype(bool)]
    panels = [(dataset, "pgd_drop") for dataset in dict.fromkeys(alive["dataset"])]
    if "decay" in alive:
        panels += [(dataset, "decay") for dataset in dict.fromkeys(alive.dropna(subset=["decay"])["dataset"])]
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(3.3 * columns, 3.0 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (dataset, y) in zip(axes, panels):
        own = alive[alive["dataset"] == dataset]
        for block, points in own.groupby("block", sort=False):
            ax.scatter(points["stability_constant"], points[y], s=12, alpha=0.7, color=BLOCK_COLOURS.get(block),
                       label=BLOCK_LABELS.get(block, block))
        c = own["stability_constant"]
        if (c > 0).all() and np.isfinite(c).all() and c.max() > 10 * c.min():  # log only over a decade or more
            ax.set_xscale("log")
        match = verdicts[(verdicts["dataset"] == dataset) & verdicts["statement"].str.contains("stability constant")
                         & verdicts["statement"].str.contains("decay" if y == "decay" else "PGD")]
        rho = f"ρ = {match['rho'].iloc[0]:.2f}" if len(match) and np.isfinite(match["rho"].iloc[0]) else "ρ undefined"
        ax.set_title(f"{dataset}: {rho}", fontsize=9)
        ax.set_xlabel("stability constant c (eq. 4)")
        ax.set_ylabel("PGD drop" if y == "pgd_drop" else "decay per period")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    figure.suptitle("Stability constant against robustness, one point per trained member")
    return figure
