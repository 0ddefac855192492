"""The ``reproduce`` command: the whole paper from one command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..files import check_output_folder
from .common import (
    COMPILE_OPTION,
    DEVICE_OPTION,
    StepLog,
    app,
    compile_setting,
    console,
    engine_notes,
    resolve_device,
    user_errors,
    workers_option,
)


@app.command()
@user_errors
def reproduce(
    scale: str = typer.Option("quick", help="quick (minutes on a laptop) or paper (the paper's settings)."),
    only: Optional[str] = typer.Option(None, help="Comma-separated figures, e.g. fig2,fig9 [all]."),
    out: Path = typer.Option(Path("results/reproduce"), help="Output folder; an existing one is resumed."),
    device: str = DEVICE_OPTION,
    compile: Optional[bool] = COMPILE_OPTION,
    workers: Optional[int] = workers_option("Units of each experiment (sweep groups, drift blocks, atlas runs)"),
):
    """Reproduce the paper's figures 1-15 and the beyond-the-paper experiments; HTML report DIR/index.html; resumable."""
    from ..experiments.claims import evaluate_claims, hold_rate_text, verdict_counts
    from ..experiments.reproduce import load_specs, run_reproduce
    from ..experiments.specs import select
    from ..experiments.runner import RunOptions
    from ..experiments.report import build_report

    experiments = select(load_specs(scale), only)
    options = RunOptions(resolve_device(device), compile_setting(compile), workers)
    out = out / scale if out == Path("results/reproduce") else out
    check_output_folder(out, "--out")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TextColumn("{task.fields[engine]}"), console=console, transient=True,
    ) as progress:
        overall = progress.add_task("figures", total=len(experiments), engine="")
        inner = progress.add_task("", total=1, engine="")

        steps = StepLog()

        def on_start(experiment, index, total):
            progress.update(overall, completed=index, description=f"{experiment.figure}: {experiment.title[:60]}")
            steps.begin(f"{experiment.figure} ({index + 1}/{total}): {experiment.title}")

            def on_run(epochs, label=None):
                progress.reset(inner, total=epochs, description=f"  {label or experiment.kind} epochs")
                return lambda epoch, loss: progress.update(inner, completed=epoch + 1)

            return on_run

        with engine_notes(progress, inner, steps):
            records = run_reproduce(experiments, out, scale, options, on_start)
        steps.end()
        progress.update(overall, completed=len(experiments))
    claims = evaluate_claims(records, out)
    report = build_report(out, records, claims, scale, options.device)
    # The statements of the figures this run has (a figure left out by --only is not listed).
    # Hold-rates: seeds of a picture claim, trials (paired by trial) of a sweep claim's accuracy part;
    # a sweep claim's variance part is the std ratio's bootstrap interval, shown in "measured".
    claims = claims[claims["figure"].isin({record["figure"] for record in records})]
    if claims.empty:
        console.print("No statement of the paper is in these figures (it states them in figures 2-15).")
    else:
        table = Table(title="paper vs. here (hold-rate: seeds, or paired trials of a sweep; 95 % Wilson interval)")
        for column in ("figure", "measured", "seeds / trials where it holds", "verdict"):
            table.add_column(column)
        colours = {"holds": "green", "does not hold": "red", "unclear": "yellow"}
        for claim in claims.itertuples():
            verdict = f"[{colours[claim.verdict]}]{claim.verdict}[/]" if claim.verdict in colours else claim.verdict
            table.add_row(claim.figure, claim.measured, hold_rate_text(claim), verdict)
        console.print(table)
        console.print(f"{verdict_counts(claims)} "
                      "(Wilson interval of the hold-rate over seeds or paired trials vs 1/2; for variance, "
                      "bootstrap interval of the std ratio vs 1)")
    for record in records:
        if record["kind"] == "robustness":
            _print_verdicts(record, out)
    console.print(f"{len(records)} figures in {sum(r['seconds'] for r in records):.0f} s of compute; report: {report}")


def _print_verdicts(record: dict, out: Path) -> None:
    """The robustness study in one table: for each statement, the data sets where it holds, fails or is unclear."""
    import pandas as pd

    verdicts = pd.read_csv(out / record["figure"] / "verdicts.csv")
    table = Table(title=f"{record['figure']}: {record['title'][:60]}")
    for column in ("statement", "holds", "does not hold", "unclear"):
        table.add_column(column)
    for statement, rows in verdicts.groupby("statement", sort=False):
        table.add_row(statement, *(", ".join(rows.loc[rows["verdict"] == verdict, "dataset"])
                                   for verdict in ("holds", "does not hold", "unclear")))
    console.print(table)
    counts = verdicts["verdict"].value_counts()
    console.print(f"{record['figure']}: {counts.get('holds', 0)} of {len(verdicts)} statements hold, "
                  f"{counts.get('does not hold', 0)} do not, {counts.get('unclear', 0)} unclear "
                  f"(per data set; table {out / record['figure'] / 'verdicts.csv'})")
