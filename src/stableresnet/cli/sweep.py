"""The ``sweep`` and ``plot-sweep`` commands: run an h-sweep, draw one from its results table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ..experiments.sweep import SweepConfig
from ..files import check_output_folder, write_atomically
from ..errors import ConfigError
from .common import (
    BATCH_SIZE_OPTION, COMPILE_OPTION, DATASET_OPTION, DATA_OPTION, DEPTH_OPTION, DEVICE_OPTION, EPOCHS_OPTION,
    INIT_OPTION, INTEGRATOR_OPTION, LEARNING_RATE_OPTION, LEVELS_OPTION, ONE_HOT_OPTION, POLICY_OPTION,
    STEP_SIZES_HELP, TARGET_OPTION, TEST_SIZE_OPTION, WIDTH_OPTION, app, check_data_source, compile_setting, console,
    errors,
    parse_step_sizes, resolve_device, unit_progress, user_errors, workers_option,
)

# For the help text only; a sweep reads the estimator's defaults again when it runs.


@app.command()
@user_errors
def sweep(
    data: Optional[Path] = DATA_OPTION,
    target: Optional[str] = TARGET_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    blocks: str = typer.Option("plain,shrinkage,batchnorm", help="Comma-separated blocks."),
    step_sizes: Optional[str] = typer.Option(
        None, help=f"{STEP_SIZES_HELP} [paper preset, else the paper's grid 0.1:1.0:0.1]."),
    trials: Optional[int] = typer.Option(None, help="Trials per (block, h) [paper preset, else the paper's 10]."),
    preset: str = typer.Option("paper", help="Hyper-parameter preset of the bundled datasets; only 'paper' exists."),
    depth: Optional[int] = DEPTH_OPTION,
    width: Optional[int] = WIDTH_OPTION,
    epochs: Optional[int] = EPOCHS_OPTION,
    batch_size: Optional[int] = BATCH_SIZE_OPTION,
    learning_rate: Optional[float] = LEARNING_RATE_OPTION,
    seed: int = typer.Option(
        0, help="Sweep seed; trial t's seed (its split, initialisation, batch order) derives from it."),
    test_size: float = TEST_SIZE_OPTION,
    one_hot: bool = ONE_HOT_OPTION,
    members_per_group: int = typer.Option(100, help="Members trained together in one batched model."),
    out: Optional[Path] = typer.Option(None, help="Results folder [results/sweep-DATASET, or sweep-STEM of --data]."),
    device: str = DEVICE_OPTION,
    integrator: str = INTEGRATOR_OPTION,
    step_size_policy: str = POLICY_OPTION,
    robustness: bool = typer.Option(False, help="Add per member: stability constant c, largest block amplification (|1+hλ| for Euler), accuracy "
                                          "under noise σ=0.1 and FGSM/PGD ε=0.1 (slower)."),
    backend: str = typer.Option("local", help="local (this process) or ray (one Ray task per group)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address [start a local Ray]."),
    workers: Optional[int] = workers_option("Groups (local backend)", "; 1 with --backend ray"),
    levels: int = LEVELS_OPTION,
    compile: Optional[bool] = COMPILE_OPTION,
    init: str = INIT_OPTION,
):
    """Train every (block, h, trial) of an h-sweep as batched ensembles; resumable.

    On --data (or a bundled set the paper did not use) the network and training defaults are
    StableResNetClassifier's, the h grid and trials the paper's.
    """
    from ..experiments.runner import RunIncomplete, RunOptions
    from ..experiments.sweep import groups, run_sweep
    from ..stats import summarize

    if preset != "paper":
        raise ConfigError(f"unknown preset {preset!r}; expected 'paper'")
    check_data_source(data, target, dataset)
    settings = {
        "blocks": tuple(b.strip() for b in blocks.split(",") if b.strip()),
        "step_sizes": parse_step_sizes(step_sizes) if step_sizes is not None else None,
        "trials": trials, "depth": depth, "width": width, "epochs": epochs, "batch_size": batch_size,
        "learning_rate": learning_rate, "seed": seed, "members_per_group": members_per_group,
        "integrator": integrator, "step_size_policy": step_size_policy, "robustness": robustness, "levels": levels,
        "test_size": test_size, "one_hot": one_hot, "init": init,
    }
    if data is not None:
        config = SweepConfig.from_table(data, target, **settings)
    else:
        config = SweepConfig.for_dataset(dataset, **settings)
    out = check_output_folder(out or Path("results") / f"sweep-{config.dataset}", "--out")
    options = RunOptions(resolve_device(device), compile_setting(compile), workers, backend, address)
    n_members = len(config.blocks) * len(config.step_sizes) * config.trials
    width_text = "width = number of features" if config.width is None else f"width {config.width}"
    console.print(
        f"{config.dataset}: {n_members} members ({len(config.blocks)} blocks × {len(config.step_sizes)} h × "
        f"{config.trials} trials), depth {config.depth}, {width_text}, {config.epochs} epochs, "
        f"batch {config.batch_size} → {out}"
    )
    with unit_progress(options, "group") as options:
        try:
            table = run_sweep(config, out, options)
        except RunIncomplete as error:
            errors.print(f"[bold red]incomplete:[/] {error}", highlight=False)
            raise typer.Exit(1) from None
    summary = summarize(table)
    print_summary(summary)
    console.print(f"{len(table)} rows in {out / 'results.csv'} ({len(groups(config))} groups)")


def print_summary(summary) -> None:
    table = Table(title="test accuracy: mean ± std over trials")
    blocks = list(dict.fromkeys(summary["block"]))
    table.add_column("h", justify="right")
    for block in blocks:
        table.add_column(block, justify="right")
    for h, rows in summary.groupby("h"):
        by_block = rows.set_index("block")
        cells = []
        for block in blocks:
            row = by_block.loc[block] if block in by_block.index else None
            cells.append("" if row is None else f"{row['mean']:.3f} ± {0 if np.isnan(row['std']) else row['std']:.3f}"
                         + (f" ({int(row['diverged'])} div.)" if row["diverged"] else ""))
        table.add_row(f"{h:g}", *cells)
    console.print(table)


@app.command("plot-sweep")
@user_errors
def plot_sweep_command(
    directory: Path = typer.Argument(..., help="A sweep's results folder (holding results.csv)."),
):
    """Draw mean ± std test accuracy against h (Figures 8-13) and a summary table, from results.csv alone."""
    import pandas as pd

    from ..stats import summarize
    from ..viz.sweep import plot_sweep

    results = directory / "results.csv"
    if not results.is_file():
        raise ConfigError(f"{str(results)!r} does not exist; run `stableresnet sweep --out {directory}` first")
    table = pd.read_csv(results)
    missing = {"dataset", "block", "h", "test_accuracy", "diverged"} - set(table.columns)
    if table.empty or missing:
        raise ConfigError(f"{str(results)!r} is not a sweep results table (missing {sorted(missing) or 'rows'})")
    from ..experiments.sweep import ROBUSTNESS_COLUMNS

    summary = summarize(table)
    for metric in ["test_accuracy"] + [c for c in ROBUSTNESS_COLUMNS if c in table.columns]:
        stem = "sweep" if metric == "test_accuracy" else f"sweep-{metric.replace('_', '-')}"
        figure = plot_sweep(table, metric)
        for suffix in ("png", "svg"):
            write_atomically(directory / f"{stem}.{suffix}", lambda p: figure.savefig(p, format=suffix, dpi=150))
    write_atomically(directory / "summary.csv", lambda p: summary.to_csv(p, index=False))
    print_summary(summary)
    console.print(f"wrote {directory / 'sweep.png'}, sweep.svg and summary.csv")
