"""Heat-maps of the claims atlas (``stableresnet.experiments.atlas``), drawn from its table alone.

Colour is the hold-rate k/N of a statement in a set-up (red 0, yellow 1/2, green 1); each
cell says k/N, in bold where the verdict is "holds" (95 % Wilson interval above 1/2). The
chosen default set-up is framed in black. matplotlib is imported inside the functions
(Figure objects, never pyplot); nothing is shown.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

COLOURS = "RdYlGn"


def _cell(ax, x, y, text, holds, chosen):
    ax.text(x, y, text, ha="center", va="center", fontsize=8, fontweight="bold" if holds else "normal")
    if chosen:
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2.2))


def plot_overview(table: pd.DataFrame, chosen: str | None = None):
    """Every set-up (rows, atlas order) against every statement (columns): the whole atlas in one picture."""
    from matplotlib.figure import Figure

    setups = list(dict.fromkeys(table["setup"]))
    statements = list(dict.fromkeys(table["statement"]))
    rates = table.pivot(index="setup", columns="statement", values="hold_rate").reindex(index=setups,
                                                                                       columns=statements)
    cells = table.set_index(["setup", "statement"])
    figure = Figure(figsize=(1.0 * len(statements) + 3.2, 0.36 * len(setups) + 1.8), layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(rates.to_numpy(dtype=float), cmap=COLOURS, vmin=0, vmax=1, aspect="auto")
    for row, setup in enumerate(setups):
        for column, statement in enumerate(statements):
            if (setup, statement) in cells.index:
                cell = cells.loc[(setup, statement)]
                _cell(ax, column, row, f"{cell['k']}/{cell['n']}", cell["verdict"] == "holds", False)
    ax.set_xticks(range(len(statements)), statements)
    ax.set_yticks(range(len(setups)), [f"▶ {s} (chosen)" if s == chosen else s for s in setups])
    ax.xaxis.tick_top()
    ax.set_title("Claims atlas: seeds where each picture statement holds (bold: holds, 95 % Wilson > 1/2)",
                 fontsize=10)
    figure.colorbar(image, ax=ax, label="hold-rate k/N", shrink=0.6)
    return figure


def plot_statement(table: pd.DataFrame, statement: str, chosen: str | None = None):
    """One statement over the atlas: a row per axis moved (today's set-up first, pairs last),
    a cell per level of that axis, coloured by hold-rate and labelled level and k/N."""
    from matplotlib.figure import Figure

    rows = table[table["statement"] == statement]
    groups = list(dict.fromkeys(rows["axis"]))
    by_group = {group: rows[rows["axis"] == group] for group in groups}
    width = max(len(part) for part in by_group.values())
    rates = np.full((len(groups), width), np.nan)
    figure = Figure(figsize=(2.0 * width + 1.8, 0.8 * len(groups) + 1.6), layout="constrained")
    ax = figure.add_subplot()
    for y, group in enumerate(groups):
        for x, cell in enumerate(by_group[group].itertuples()):
            rates[y, x] = cell.hold_rate
    image = ax.imshow(rates, cmap=COLOURS, vmin=0, vmax=1, aspect="auto")
    for y, group in enumerate(groups):
        for x, cell in enumerate(by_group[group].itertuples()):
            level = cell.setup if group in ("today", "pair") else cell.setup.split("=", 1)[1]
            label = "\n".join(textwrap.wrap(level.replace("+", " + "), 18))
            _cell(ax, x, y, f"{label}\n{cell.k}/{cell.n}", cell.verdict == "holds", cell.setup == chosen)
    ax.set_yticks(range(len(groups)), groups)
    ax.set_xticks([])
    paper = rows["paper"].iloc[0] if len(rows) else ""
    ax.set_title(f"{statement}: " + "\n".join(textwrap.wrap(f"“{paper}”", 90)), fontsize=9)
    figure.colorbar(image, ax=ax, label="hold-rate k/N", shrink=0.8)
    return figure
