"""The ``drift`` command: accuracy over time on time-evolving data (paper Figures 14-15)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ..files import check_output_folder, write_atomically
from .common import (
    COMPILE_OPTION, DEVICE_OPTION, INIT_OPTION, STEP_SIZES_HELP, app, compile_setting, console, parse_step_sizes,
    renamed_option, resolve_device, setting_option, unit_progress, user_errors, workers_option,
)
from .sweep import print_summary


@app.command()
@user_errors
def drift(
    data: str = typer.Option(..., help="Transactions CSV/Parquet file, synthetic-btc or elec2."),
    train_until: str = typer.Option(..., help="Train on rows before this date (2014-01, UTC) or period index (12)."),
    blocks: str = typer.Option("plain,shrinkage,batchnorm", help="Comma-separated blocks."),
    step_sizes: str = typer.Option("0.1,1", help=f"{STEP_SIZES_HELP}."),
    trials: int = typer.Option(5, help="Trials (seeds) per (block, h) [paper: 5]."),
    depth: int = setting_option("depth", default=128, note="paper: 128"),
    width: int = setting_option("width", default=32, note="paper: 32"),
    epochs: int = setting_option("epochs", default=100, note="paper: 100"),
    batch_size: int = setting_option("batch_size", default=100_000, note="paper: 100000"),
    learning_rate: float = setting_option("learning_rate", "--lr", default=1e-3, note="the paper's Keras default"),
    rows: int = typer.Option(1_000_000, help="Rows of synthetic-btc (drawn with --seed)."),
    period: str = typer.Option("month", help="month or week (elec2: 28 or 7 days)."),
    time_feature: bool = typer.Option(False, help="Use the time stamp as a feature (months since start)."),
    plot_step_sizes: Optional[str] = typer.Option(
        None, help="h values drawn in the over-time figure, a grid as --step-sizes [0.1,1; all if none match]."),
    plot_h: Optional[str] = typer.Option(None, "--plot-h", hidden=True, help="Deprecated: --plot-step-sizes."),
    seed: int = typer.Option(0, help="Seed of the trials (and of synthetic-btc)."),
    out: Optional[Path] = typer.Option(None, help="Results folder [results/drift-NAME]."),
    device: str = DEVICE_OPTION,
    compile: Optional[bool] = COMPILE_OPTION,
    workers: Optional[int] = workers_option("Blocks"),
    init: str = INIT_OPTION,
):
    """Train on a time window, then test on every later period (paper Figs. 14-15); resumable."""
    from ..experiments.drift import DriftConfig, run_drift, save_drift
    from ..experiments.runner import RunOptions
    from ..stats import summarize, summarize_drift
    from ..viz.drift import plot_drift
    from ..viz.sweep import plot_sweep

    config = DriftConfig(
        data=data, train_until=train_until, blocks=tuple(b.strip() for b in blocks.split(",") if b.strip()),
        step_sizes=parse_step_sizes(step_sizes), trials=trials, depth=depth, width=width, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, seed=seed, rows=rows, period=period,
        time_feature=time_feature, init=init,
    )
    plot_step_sizes = renamed_option(plot_step_sizes, plot_h, "--plot-step-sizes", "--plot-h") or "0.1,1"
    shown_h = [h for h in parse_step_sizes(plot_step_sizes) if h in config.step_sizes] or None
    out = check_output_folder(out or Path("results") / f"drift-{Path(data).stem}", "--out")
    device = resolve_device(device)
    with unit_progress(RunOptions(device, compile_setting(compile), workers), "block") as options:
        result = run_drift(config, options, directory=out)
    written = save_drift(out, config, result)
    unit = {"month": "month", "week": "week"}[period] if result.data.has_timestamps else f"{period} (row block)"
    figures = {"drift": plot_drift(result.periods, shown_h, period_unit=unit), "sweep": plot_sweep(result.sweep)}
    for name, figure in figures.items():
        for suffix in ("png", "svg"):
            path = out / f"{name}.{suffix}"
            write_atomically(path, lambda p: figure.savefig(p, format=suffix, dpi=150))
            written.append(path)

    split = result.split
    console.print(f"{result.data.name}: trained on {split.n_train} rows (to {result.data.period_labels[split.last_train_period]}), "
                  f"tested on {split.n_test} rows in {len(split.test_periods)} later periods")
    print_summary(summarize(result.sweep))
    over_time = summarize_drift(result.periods)
    table = Table(title="accuracy by periods after training: mean ± std over trials")
    table.add_column("block, h")
    after = sorted(over_time["periods_after"].unique())
    shown_after = after if len(after) <= 6 else [after[i] for i in np.linspace(0, len(after) - 1, 6).round().astype(int)]
    for k in shown_after:
        table.add_column(f"+{k}", justify="right")
    for (block, h), rows_ in over_time.groupby(["block", "h"], sort=False):
        cells = rows_.set_index("periods_after")
        table.add_row(f"{block} h={h:g}", *(f"{cells.loc[k, 'mean']:.3f}±{np.nan_to_num(cells.loc[k, 'std']):.2f}"
                                           for k in shown_after))
    console.print(table)
    console.print(f"wrote {', '.join(p.name for p in written)} to {out}")
