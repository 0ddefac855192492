"""`InputSchema`: the raw input columns a model was trained on, and how they become features.

`build_dataset` learns the schema from the training table and encodes *through* it, so a saved
schema encodes new rows exactly as training did:

- **Numeric column** -> one feature, the value as float64. A gap (NaN) is filled with the median of
  the training rows, but only in a column that had gaps when the model was trained (autism's
  ``age``); that median is kept as the column's ``fill``. Everywhere else, and always for user
  tables (`load_table` refuses gaps), a gap is an error, as is ``inf`` or text.
- **Categorical column** (text) -> an ordinal code ``0..k-1`` in sorted order of its vocabulary, or
  with ``one_hot`` one 0/1 feature per category named ``"column=value"``. A value outside the
  vocabulary, or a missing value, is an error: the model has never seen it.
- Columns are matched by name, so their order and any extra columns do not matter.

Standardisation is not part of the schema: the model holds it (its ``input_mean`` and
``input_scale`` buffers), so a saved model file carries it anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError


KINDS = ("numeric", "categorical")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class InputColumn:
    """One raw input column: its name, kind, and vocabulary (categorical) or gap fill (numeric)."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    fill: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise DataError(f"a column name must be non-empty text, got {self.name!r}")
        if self.kind not in KINDS:
            raise DataError(f"column {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "categorical":
            if not self.categories or list(self.categories) != sorted(set(self.categories)):
                raise DataError(f"column {self.name!r}: the vocabulary must be sorted, distinct and non-empty, "
                                f"got {list(self.categories)[:10]}")
            if not all(isinstance(category, str) for category in self.categories):
                raise DataError(f"column {self.name!r}: categories must be text")
            if self.fill is not None:
                raise DataError(f"column {self.name!r}: a categorical column has no gap fill")
        else:
            if self.categories:
                raise DataError(f"column {self.name!r}: a numeric column has no vocabulary")
            if self.fill is not None and not (isinstance(self.fill, (int, float)) and math.isfinite(self.fill)):
                raise DataError(f"column {self.name!r}: the gap fill must be a finite number, got {self.fill!r}")

    def feature_names(self, one_hot: bool) -> tuple[str, ...]:
        if self.kind == "categorical" and one_hot:
            return tuple(f"{self.name}={category}" for category in self.categories)
        return (self.name,)


@dataclass(frozen=True)
class InputSchema:
    """The raw input columns of a model, in training order, and their encoding.

    Attributes
    ----------
    columns : tuple of InputColumn
    one_hot : bool
        Categorical columns as one 0/1 feature per category instead of one ordinal code.
    target : str or None
        Name of the label column in the training table, where the loader knew it.

    Examples
    --------
    >>> import pandas as pd
    >>> schema = InputSchema((InputColumn("x", "numeric"),
    ...                       InputColumn("colour", "categorical", ("blue", "red"))), one_hot=True)
    >>> schema.feature_names
    ('x', 'colour=blue', 'colour=red')
    >>> schema.encode(pd.DataFrame({"colour": ["red", "blue"], "x": [1.5, 2.0], "note": ["a", "b"]}))
    array([[1.5, 0. , 1. ],
           [2. , 1. , 0. ]])
    """

    columns: tuple[InputColumn, ...]
    one_hot: bool
    target: str | None = None

    def __post_init__(self):
        names = [column.name for column in self.columns]
        if not names:
            raise DataError("an input schema needs at least one column")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise DataError(f"an input schema names each column once; repeated: {duplicates}")

    @classmethod
    def numeric(cls, names, target=None) -> InputSchema:
        """All columns numeric, no gaps allowed: the schema of data that arrives already encoded."""
        return cls(tuple(InputColumn(str(name), "numeric") for name in names), one_hot=False, target=target)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the encoded features, in order (equal to the training `Dataset.feature_names`)."""
        return tuple(name for column in self.columns for name in column.feature_names(self.one_hot))

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def extra_columns(self, frame: pd.DataFrame) -> list[str]:
        """Columns of ``frame`` that the model does not use (ignored by `encode`)."""
        known = set(self.column_names)
        return [str(name) for name in frame.columns if name not in known]

    def missing_columns(self, names) -> list[str]:
        """The schema's columns absent from ``names``, in schema order."""
        present = set(names)
        return [name for name in self.column_names if name not in present]

    def encode(self, frame: pd.DataFrame, *, first_row: int = 1) -> np.ndarray:
        """Encode a table's rows as the model's features.

        Parameters
        ----------
        frame : pandas.DataFrame, shape (n_rows, any)
            Must hold every schema column, in any order; other columns are ignored.
        first_row : int
            Number of the frame's first row in error messages (for a chunk of a larger file).

        Returns
        -------
        ndarray of float64, shape (n_rows, n_features)

        Raises
        ------
        DataError
            A missing column, an unseen or missing category, NaN (outside a column with a gap
            fill), ``inf``, or text in a numeric column; the message names the column and a row.
        """
        missing = self.missing_columns(frame.columns)
        if missing:
            raise DataError(f"missing column(s) {missing}; the model needs {list(self.column_names)}")
        encoded = np.empty((len(frame), self.n_features), dtype=np.float64)
        position = 0
        for column in self.columns:
            values = frame[column.name]
            if column.kind == "numeric":
                encoded[:, position] = _numbers(values, column, first_row)
                position += 1
                continue
            codes = _codes(values, column, first_row)
            if self.one_hot:
                width = len(column.categories)
                encoded[:, position : position + width] = codes[:, None] == np.arange(width)
                position += width
            else:
                encoded[:, position] = codes
                position += 1
        return encoded

    def to_json(self) -> dict:
        """A JSON-ready dict; `from_json` inverts it exactly (fills are floats, which JSON round-trips)."""
        columns = []
        for column in self.columns:
            entry = {"name": column.name, "kind": column.kind}
            if column.kind == "categorical":
                entry["categories"] = list(column.categories)
            elif column.fill is not None:
                entry["fill"] = float(column.fill)
            columns.append(entry)
        return {"version": SCHEMA_VERSION, "columns": columns, "one_hot": self.one_hot, "target": self.target}

    @classmethod
    def from_json(cls, data: dict) -> InputSchema:
        """Rebuild a schema from `to_json`'s dict; anything else raises `DataError`."""
        try:
            if data["version"] != SCHEMA_VERSION:
                raise DataError(f"input schema version {data['version']!r}; this stableresnet reads {SCHEMA_VERSION}")
            if not isinstance(data["one_hot"], bool) or not isinstance(data["target"], (str, type(None))):
                raise DataError("input schema: one_hot must be true/false and target text or null")
            columns = tuple(
                InputColumn(entry["name"], entry["kind"], tuple(entry.get("categories", ())), entry.get("fill"))
                for entry in data["columns"]
            )
            return cls(columns, one_hot=data["one_hot"], target=data["target"])
        except (KeyError, TypeError) as error:
            raise DataError(f"malformed input schema ({type(error).__name__}: {error})") from None


def _first(mask: np.ndarray, values: pd.Series, first_row: int) -> str:
    """'data row N holds V' for the first row where mask is true."""
    row = int(np.flatnonzero(mask)[0])
    return f"data row {row + first_row} holds {values.iloc[row]!r}"


def _numbers(values: pd.Series, column: InputColumn, first_row: int) -> np.ndarray:
    numbers = pd.to_numeric(values, errors="coerce")
    text = (numbers.isna() & values.notna()).to_numpy()
    if text.any():
        raise DataError(f"numeric column {column.name!r} holds text ({_first(text, values, first_row)})")
    array = numbers.to_numpy(np.float64, na_value=np.nan)
    infinite = np.isinf(array)
    if infinite.any():
        raise DataError(f"column {column.name!r} has {int(infinite.sum())} infinite values "
                        f"(first at data row {int(np.flatnonzero(infinite)[0]) + first_row})")
    gaps = np.isnan(array)
    if gaps.any():
        if column.fill is None:
            raise DataError(f"column {column.name!r} has {int(gaps.sum())} missing values "
                            f"(first at data row {int(np.flatnonzero(gaps)[0]) + first_row}); "
                            "the model was trained without gaps there, so fill or drop them first")
        array = np.where(gaps, column.fill, array)
    return array


def _codes(values: pd.Series, column: InputColumn, first_row: int) -> np.ndarray:
    """Index of each value in the column's sorted vocabulary."""
    gaps = values.isna().to_numpy()
    if gaps.any():
        raise DataError(f"categorical column {column.name!r} has {int(gaps.sum())} missing values "
                        f"(first at data row {int(np.flatnonzero(gaps)[0]) + first_row})")
    codes = pd.Index(column.categories).get_indexer(values.astype(str))
    unseen = codes < 0
    if unseen.any():
        shown = list(column.categories[:20]) + (["..."] if len(column.categories) > 20 else [])
        raise DataError(f"column {column.name!r} has a category the model never saw "
                        f"({_first(unseen, values, first_row)}); known: {shown}")
    return codes
