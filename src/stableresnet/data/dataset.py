"""The `Dataset` record and `build_dataset`, the one path every loader ends in.

Because every loader (bundled UCI files, synthetic draws, user tables) finishes here, the split, the
missing-value rule and the encoding are the same everywhere:

- **Split.** A seeded, stratified ``sklearn.model_selection.train_test_split`` (``random_state=seed``)
  unless the loader hands over an official test set (adult).
- **Numeric gaps.** A numeric NaN that a loader deliberately leaves in place (only autism's ``age``)
  is filled with the median of the *training* rows, so no test row informs the fill value.
- **Schema.** The columns, their kinds, vocabularies and gap fills are learnt into an `InputSchema`
  first, and both splits are encoded by it (`InputSchema.encode`), so a model saved with
  ``Dataset.schema`` encodes new rows exactly as its training rows were.
- **Categorical columns** (any non-numeric pandas dtype) become ordinal codes ``0..k-1`` in sorted
  order of the category names, so the width equals the number of attributes; ``one_hot=True`` gives
  one 0/1 column per category instead, named ``"column=value"``. The vocabulary is learnt from the
  feature values of all rows, train and test (never from labels), so a category seen only in the test
  rows still has a code. Loaders must turn missing categorical values into an explicit category first.
- Features stay unstandardised: scaling is the model's business.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import DataError
from .schema import InputColumn, InputSchema

__all__ = ["DataError", "Dataset", "build_dataset"]  # DataError lives in stableresnet.errors


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set, split into train and test, encoded but not standardised.

    Attributes
    ----------
    name : str
    X_train : ndarray of float64, shape (n_train, n_features)
    y_train : ndarray of int64, shape (n_train,)
        Class indices ``0..n_classes-1``.
    X_test : ndarray of float64, shape (n_test, n_features)
    y_test : ndarray of int64, shape (n_test,)
    feature_names : tuple of str, length n_features
    class_names : tuple of str
        ``class_names[k]`` is the label of class index ``k``.
    schema : InputSchema
        The raw columns and their encoding (`build_dataset` learns it); a loader that builds the
        features itself gets an all-numeric schema named by `feature_names`.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    schema: InputSchema | None = None

    def __post_init__(self):
        if self.schema is None:  # frozen: the default is filled in once, here
            object.__setattr__(self, "schema", InputSchema.numeric(self.feature_names))
        if self.schema.feature_names != tuple(self.feature_names):
            raise DataError(f"{self.name}: the schema's features {list(self.schema.feature_names)} differ from "
                            f"feature_names {list(self.feature_names)}")
        for X, y, part in ((self.X_train, self.y_train, "train"), (self.X_test, self.y_test, "test")):
            if X.dtype != np.float64 or X.ndim != 2 or X.shape[1] != len(self.feature_names):
                raise DataError(f"{self.name}: X_{part} must be float64 of shape (n, {len(self.feature_names)}), "
                                f"got {X.dtype} {X.shape}")
            if y.dtype != np.int64 or y.shape != (X.shape[0],):
                raise DataError(f"{self.name}: y_{part} must be int64 of shape ({X.shape[0]},), got {y.dtype} {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise DataError(f"{self.name}: y_{part} holds indices outside 0..{len(self.class_names) - 1}")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def build_dataset(name, features, labels, class_names, *, seed, test_size, one_hot,
                  test_features=None, test_labels=None, target=None):
    """Split (unless an official test set is given), fill numeric gaps and encode.

    Parameters
    ----------
    name : str
    features : pandas.DataFrame, shape (n_rows, n_attributes)
        Numeric columns, or text columns holding categories (no missing text values).
    labels : array of int, shape (n_rows,)
        Class indices into `class_names`.
    class_names : sequence of str
    seed : int
        ``random_state`` of the stratified split.
    test_size : float
        Fraction of rows held out, in (0, 1); unused when `test_features` is given.
    one_hot : bool
        One-hot instead of ordinal codes for categorical columns.
    test_features, test_labels : optional
        An official test set, used as is.
    target : str, optional
        Name of the label column in the source table, kept in the schema.

    Returns
    -------
    Dataset
    """
    labels = np.asarray(labels, dtype=np.int64)
    if test_features is None:
        if not 0 < test_size < 1:
            raise DataError(f"{name}: test_size must be a fraction in (0, 1), got {test_size!r}")
        try:
            train_rows, test_rows = train_test_split(np.arange(len(labels)), test_size=test_size,
                                                     stratify=labels, random_state=seed)
        except ValueError as err:  # e.g. a class too small to appear on both sides
            raise DataError(f"{name}: cannot make a stratified {test_size:g} split: {err}") from err
        train, test = features.iloc[train_rows], features.iloc[test_rows]
        y_train, y_test = labels[train_rows], labels[test_rows]
    else:
        train, test = features, test_features
        y_train, y_test = labels, np.asarray(test_labels, dtype=np.int64)

    try:
        schema = _learn_schema(train, test, one_hot=one_hot, target=target)
        X_train, X_test = schema.encode(train), schema.encode(test)
    except DataError as err:
        raise DataError(f"{name}: {err}") from err
    return Dataset(
        name=name,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        feature_names=schema.feature_names,
        class_names=tuple(class_names),
        schema=schema,
    )


def _learn_schema(train, test, *, one_hot, target=None):
    """The `InputSchema` of `build_dataset`: kinds from the training dtypes, vocabularies from all rows.

    A numeric column gets a gap fill (the median of the training rows) only if it has a gap.
    """
    columns = []
    for column in train.columns:
        if pd.api.types.is_numeric_dtype(train[column]):
            has_gaps = train[column].isna().any() or test[column].isna().any()
            fill = float(train[column].median()) if has_gaps else None
            if has_gaps and np.isnan(fill):
                raise DataError(f"numeric column {column!r} has no values in the training rows to fill its gaps")
            columns.append(InputColumn(str(column), "numeric", fill=fill))
            continue
        if train[column].isna().any() or test[column].isna().any():
            raise DataError(f"categorical column {column!r} has missing values")
        categories = sorted(set(train[column].astype(str)) | set(test[column].astype(str)))
        columns.append(InputColumn(str(column), "categorical", tuple(categories)))
    return InputSchema(tuple(columns), one_hot=one_hot, target=target)
