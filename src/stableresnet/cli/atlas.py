"""The ``atlas`` command: the picture statements (Figures 2-7) over a grid of set-ups, many seeds each."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..files import check_output_folder
from .common import (COMPILE_OPTION, DEVICE_OPTION, app, compile_setting, console, resolve_device, unit_progress,
                     user_errors, workers_option)


@app.command()
@user_errors
def atlas(
    scale: str = typer.Option("quick", help="quick (5 seeds, reproduce's quick epochs) or paper (10 seeds, 100 "
                                            "epochs)."),
    out: Path = typer.Option(Path("results/atlas"), help="Results folder [results/atlas/SCALE]; an existing one is "
                                                         "resumed."),
    seeds: Optional[int] = typer.Option(None, help="Networks per figure and set-up [the scale's: 5 quick, 10 paper]."),
    setups: Optional[str] = typer.Option(
        None, help="Comma-separated set-ups to run, e.g. optimiser=sgd-1e-1,data=moons+framework=keras "
                   "[every one-axis set-up, then the pairs they point to]."),
    workers: Optional[int] = workers_option("(Set-up, figure) trainings"),
    device: str = DEVICE_OPTION,
    compile: Optional[bool] = COMPILE_OPTION,
):
    """Check every picture statement over a grid of set-ups (data, inputs, optimiser, epochs, framework, initialiser,
    test points, batch, batch-norm placement, reader); resumable.

    Writes atlas.csv (set-up × statement: k/N, Wilson interval, verdict), one heat-map per statement,
    and choice.json: the set-up where the most statements hold, chosen by a stated rule.
    """
    from ..experiments.atlas import atlas_config, hold_counts, parse_setup, run_atlas
    from ..experiments.runner import RunOptions

    config = atlas_config(scale, seeds)
    options = RunOptions(resolve_device(device), compile_setting(compile), workers)
    names = None if setups is None else [name.strip() for name in setups.split(",") if name.strip()]
    for name in names or []:
        parse_setup(config, name)  # an unknown key fails here, before anything is written
    out = out / scale if out == Path("results/atlas") else out
    check_output_folder(out, "--out")
    started = time.perf_counter()
    with unit_progress(options, "run") as options:
        result = run_atlas(config, out, names, options)
    wall = time.perf_counter() - started

    counts = hold_counts(result.table)
    starts = result.table.drop_duplicates("setup").set_index("setup")["start"].fillna("")
    table = Table(title=f"claims atlas ({scale}): statements that hold over seeds, of {result.choice.statements}")
    for column in ("set-up", "statements that hold", "at initialisation (median network)"):
        table.add_column(column)
    for setup, count in counts.items():
        mark = " [bold](chosen)[/]" if setup == result.choice.setup else ""
        table.add_row(setup + mark, str(count), starts.get(setup) or "ok")
    console.print(table)
    console.print(f"pairs: {result.pairs_reason}", highlight=False, soft_wrap=True)
    console.print(f"chosen default: {result.choice.reason}", highlight=False, soft_wrap=True)
    if len(set(result.by_figure.values())) > 1:
        console.print("per block family (the families' own set-ups make more statements hold): "
                      + ", ".join(f"{figure} {setup}" for figure, setup in result.by_figure.items()),
                      highlight=False, soft_wrap=True)
    for row in result.unmet.itertuples():
        console.print(f"no set-up makes {row.statement} hold in most seeds: best {row.k}/{row.n} ({row.best_setup}), "
                      f"over {row.setups} set-ups", highlight=False, soft_wrap=True)
    console.print(f"{len(counts)} set-ups in {result.seconds:.0f} s of training compute "
                  f"({wall:.0f} s wall this run); results in {out}", highlight=False)
