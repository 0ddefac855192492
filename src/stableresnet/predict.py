"""Predict a table of new rows with a saved model, reading it by column name and in chunks.

The model file's input schema (`stableresnet.data.InputSchema`) says which columns to read and how
to encode them, exactly as in training; columns may come in any order and extra ones are ignored.
A file saved before schemas existed can still be used if it recorded its feature names (``stableresnet
train --save`` did): its columns are then read as numbers under those names.

Rows are read in chunks (CSV with ``pandas.read_csv(chunksize=...)``, Parquet batch by batch with
pyarrow), so memory stays flat however large the file. The output CSV holds a ``prediction`` column
and, with ``proba``, one ``proba_<label>`` column per class; written to a file, it appears whole
or not at all, even when a bad value is found in the last chunk.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, ModelFileError
from .data import InputSchema
from .estimator import StableResNetClassifier
from .files import write_atomically
from .serialization import load_model

# A multiple of predict_logits' 8192-row batches: every row then meets the same batch as when the
# whole table is predicted at once, so the probabilities match in-process predict_proba bit for bit
# (BLAS may sum a product over a different number of rows in another order).
CHUNK_ROWS = 6 * 8192


@dataclass(frozen=True)
class PredictionSummary:
    """What `predict_file` did: rows predicted, and the table's columns it ignored."""

    rows: int
    ignored_columns: tuple[str, ...]


def load_predictor(model_path: str | Path) -> tuple[StableResNetClassifier, InputSchema]:
    """The saved classifier and the schema its inputs are read by.

    Raises `ModelFileError` for a file that is not a stableresnet model, or that records neither
    an input schema nor feature names.
    """
    classifier = StableResNetClassifier.load(model_path)
    if classifier.schema_ is not None:
        return classifier, classifier.schema_
    _, _, extra = load_model(model_path)
    names = extra.get("feature_names")
    if not isinstance(names, list) or len(names) != classifier.n_features_in_:
        raise ModelFileError(f"{str(model_path)!r} records no input schema or feature names, so its columns cannot "
                             "be matched by name; save it again with clf.save(path, schema=dataset.schema)")
    return classifier, InputSchema.numeric(names)


def predict_file(
    model_path: str | Path,
    data_path: str | Path,
    out: str | Path | None = None,
    *,
    proba: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> PredictionSummary:
    """Predict every row of a CSV or Parquet table with a saved model and write the results as CSV.

    Parameters
    ----------
    model_path : path
        A model saved by ``StableResNetClassifier.save`` or ``stableresnet train --save``.
    data_path : path
        ``.csv`` (comma-separated, header row), ``.parquet`` or ``.pq``, holding every input column
        of the model (any order; others are ignored).
    out : path or None
        Output CSV file, written atomically; None streams the rows to standard output.
    proba : bool
        Add one probability column per class, ``proba_<label>``, in the order of the model's classes.
    chunk_rows : int
        Rows read, encoded and predicted at a time. With a multiple of 8192 (the default is one), the
        probabilities equal ``StableResNetClassifier.predict_proba`` on the whole table bit for bit;
        with other sizes, up to rounding in the last bit.

    Returns
    -------
    PredictionSummary

    Raises
    ------
    ModelFileError
        The model file is not ours, or carries no column names.
    DataError
        An unreadable table, a missing column, an unseen category, a missing or infinite value, or
        text in a numeric column; the message names the file, column and data row. Nothing is written
        to a file ``out``.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    classifier, schema = load_predictor(model_path)
    data_path = Path(data_path)
    columns, chunks = _read_chunks(data_path, schema, chunk_rows)
    used = set(schema.column_names)
    ignored = tuple(str(name) for name in columns if name not in used)
    proba_columns = [f"proba_{label}" for label in classifier.classes_] if proba else []

    def write(stream: TextIO) -> int:
        rows = 0
        pd.DataFrame(columns=["prediction", *proba_columns]).to_csv(stream, index=False, lineterminator="\n")
        for chunk in chunks:
            try:
                X = schema.encode(chunk, first_row=rows + 1)
            except DataError as error:
                raise DataError(f"{data_path}: {error}") from None
            if len(X) == 0:
                continue
            # The same arithmetic as classifier.predict, with the probabilities kept.
            probabilities = classifier.predict_proba(X)
            result = pd.DataFrame({"prediction": classifier.classes_[np.argmax(probabilities, axis=1)]})
            if proba:
                result = pd.concat([result, pd.DataFrame(probabilities, columns=proba_columns)], axis=1)
            result.to_csv(stream, header=False, index=False, lineterminator="\n")
            rows += len(X)
        return rows

    if out is None:
        rows = write(sys.stdout)
    else:
        counted = []

        def write_file(temporary: Path) -> None:
            with open(temporary, "w", newline="") as stream:
                counted.append(write(stream))

        write_atomically(out, write_file)
        rows = counted[0]
    return PredictionSummary(rows=rows, ignored_columns=ignored)


def _read_chunks(path: Path, schema: InputSchema, chunk_rows: int):
    """The table's column names, and an iterator over DataFrames of at most ``chunk_rows`` rows.

    Only the schema's columns are read; a missing one is refused before any row is read.
    Categorical columns are read as text, so a code such as ``"007"`` keeps its zeros.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            columns = list(pd.read_csv(path, nrows=0).columns)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: malformed CSV: {error}") from None
        _refuse_missing(path, schema, columns)
        text = {column.name: str for column in schema.columns if column.kind == "categorical"}
        reader = pd.read_csv(path, usecols=list(schema.column_names), dtype=text, chunksize=chunk_rows)
        return columns, _csv_chunks(path, reader)
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(path)
        except (OSError, ValueError) as error:  # pyarrow's errors derive from these
            raise DataError(f"{path}: cannot read as Parquet: {error}") from None
        columns = list(table.schema_arrow.names)
        _refuse_missing(path, schema, columns)
        return columns, _parquet_chunks(path, table, schema, chunk_rows)
    raise DataError(f"{path}: unsupported extension {suffix!r}, expected .csv, .parquet or .pq")


def _refuse_missing(path: Path, schema: InputSchema, columns: list) -> None:
    missing = schema.missing_columns(columns)
    if missing:
        hint = " (a single column: wrong separator? a comma is expected)" if len(columns) == 1 else ""
        raise DataError(f"{path}: missing column(s) {missing} that the model needs; columns are {columns}{hint}")


def _csv_chunks(path: Path, reader):
    with reader:
        try:
            yield from reader
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: malformed CSV: {error}") from None


def _parquet_chunks(path: Path, table, schema: InputSchema, chunk_rows: int):
    try:
        for batch in table.iter_batches(batch_size=chunk_rows, columns=list(schema.column_names)):
            yield batch.to_pandas()
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as Parquet: {error}") from None
