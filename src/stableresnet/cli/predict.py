"""The ``predict`` command: label the rows of a CSV or Parquet table with a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..files import check_output_file
from ..errors import ConfigError
from ..predict import CHUNK_ROWS, predict_file
from .common import app, console, errors, user_errors


@app.command()
@user_errors
def predict(
    model: Path = typer.Option(..., help="Model file from `train --save` or `StableResNetClassifier.save`."),
    data: Path = typer.Option(..., help="CSV or Parquet table holding the model's input columns (any order)."),
    out: Optional[Path] = typer.Option(None, help="Output CSV [standard output]."),
    proba: bool = typer.Option(False, help="Add one probability column per class, proba_LABEL."),
    chunk_rows: int = typer.Option(CHUNK_ROWS, help="Rows read and predicted at a time (memory stays flat)."),
):
    """Predict each row's label; columns are matched by name, extra ones are ignored."""
    if out is not None:
        check_output_file(out, "--out")
        for option, path in (("--data", data), ("--model", model)):
            if path.exists() and out.resolve() == path.resolve():
                raise ConfigError(f"--out {str(out)!r} is the {option} file; give another name")
    summary = predict_file(model, data, out, proba=proba, chunk_rows=chunk_rows)
    if summary.ignored_columns:
        errors.print(f"ignored columns not used by the model: {list(summary.ignored_columns)}", highlight=False)
    if out is not None:
        console.print(f"wrote {summary.rows} predictions to {out}", highlight=False)
