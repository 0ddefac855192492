"""User data: a CSV or Parquet table with a target column.

Rules, chosen so that nothing is guessed silently:

- The format comes from the extension: ``.csv`` (comma-separated, header row) or ``.parquet``/``.pq``.
- Missing values are refused, not imputed: any NaN/empty cell, in a feature or in the target, raises
  `DataError` naming the column and the number of missing cells. So are ``inf`` values.
- Text columns are categorical and encoded like the bundled sets (ordinal codes, or one-hot with
  ``one_hot=True``; vocabulary from all rows' feature values). A text column in which some values
  are numbers and others are not is refused as a likely typo in a numeric column.
- Classes are the sorted distinct target values; at least two are needed.
- The split is seeded and stratified, as for the bundled sets.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from .dataset import build_dataset


def _read(path):
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return pd.read_csv(path)
        except pd.errors.EmptyDataError as err:
            raise DataError(f"{path}: the file is empty") from err
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: malformed CSV: {err}") from err
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as err:  # pyarrow's errors derive from these
            raise DataError(f"{path}: cannot read as Parquet: {err}") from err
    raise DataError(f"{path}: unsupported extension {suffix!r}, expected .csv, .parquet or .pq")


def load_table(path, target, *, seed=0, test_size=0.2, one_hot=False):
    """Read a CSV or Parquet table and split it into an encoded `Dataset`.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (comma-separated, with a header row), ``.parquet`` or ``.pq``.
    target : str
        Name of the label column; every other column is a feature.
    seed : int
        Seed of the stratified train/test split.
    test_size : float
        Fraction of rows in the test set.
    one_hot : bool
        One 0/1 column per category of text columns instead of ordinal codes.

    Returns
    -------
    Dataset
        Named after the file's stem; ``class_names`` are the sorted distinct target values as text.

    Raises
    ------
    DataError
        For an unreadable, empty or malformed file, a missing target column, missing or infinite
        values, a text column mixing numbers and words, or a target with a single class.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
    >>> _ = path.write_text("x,colour,label\\n" + "".join(f"{i},{'red' if i % 3 else 'blue'},{i % 2}\\n" for i in range(20)))
    >>> data = load_table(path, "label", seed=0)
    >>> data.feature_names, data.class_names, data.X_train.shape
    (('x', 'colour'), ('0', '1'), (16, 2))
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    table = _read(path)
    if target not in table.columns:
        hint = " (a single column: wrong separator? a comma is expected)" if table.shape[1] == 1 else ""
        raise DataError(f"{path}: no target column {target!r}; columns are {list(table.columns)}{hint}")
    if len(table) == 0:
        raise DataError(f"{path}: no data rows, only a header")
    if table.shape[1] < 2:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    for column in table.columns:
        missing = int(table[column].isna().sum())
        if missing:
            role = "target column" if column == target else "column"
            raise DataError(f"{path}: {role} {column!r} has {missing} missing values; "
                            "fill or drop them first (user data is not imputed)")
        if pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(table[column]):
            infinite = int(np.isinf(table[column].to_numpy(np.float64)).sum())
            if infinite:
                raise DataError(f"{path}: column {column!r} has {infinite} infinite values")
        elif column != target:
            numbers = pd.to_numeric(table[column].astype(str), errors="coerce")
            if numbers.notna().any() and numbers.isna().any():
                row = int(np.flatnonzero(numbers.isna().to_numpy())[0])
                raise DataError(f"{path}: column {column!r} mixes numbers and text (data row {row + 1} holds "
                                f"{table[column].iloc[row]!r}); fix the value or make the column all text")

    labels = table.pop(target)
    classes, indices = np.unique(labels.to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{path}: target column {target!r} has a single class {classes[0]!r}; need at least two")
    try:
        return build_dataset(path.stem, table, indices, tuple(str(c) for c in classes),
                             seed=seed, test_size=test_size, one_hot=one_hot, target=target)
    except DataError as err:
        raise DataError(f"{path}: {err}") from err
