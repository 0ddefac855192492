"""The `Dataset` record and `build_dataset`, the one path every loader ends in.

Because every loader (bundled UCI files, synthetic draws, user tables) finishes here, the split, the
missing-value rule and the encoding are the same everywhere:

- **Split.** A seeded, stratified ``sklearn.model_selection.train_test_split`` (``random_state=seed``)
  unless the loader hands over an official test set (adult).
- **Numeric gaps.** A numeric NaN that a loader deliberately leaves in place (only autism's ``age``)
  is filled with the median of the *training* rows, so no test row informs the fill value.
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


class DataError(ValueError):
    """A data problem the user can fix: the message names the file or value and what was expected."""


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
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

    def __post_init__(self):
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
                  test_features=None, test_labels=None):
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

    train_columns, test_columns, feature_names = [], [], []
    for column in train.columns:
        if pd.api.types.is_numeric_dtype(train[column]):
            fill = train[column].median()
            train_columns.append(train[column].fillna(fill).to_numpy(np.float64))
            test_columns.append(test[column].fillna(fill).to_numpy(np.float64))
            feature_names.append(column)
            continue
        if train[column].isna().any() or test[column].isna().any():
            raise DataError(f"{name}: categorical column {column!r} has missing values")
        categories = sorted(set(train[column].astype(str)) | set(test[column].astype(str)))
        if one_hot:
            for category in categories:
                train_columns.append((train[column].astype(str) == category).to_numpy(np.float64))
                test_columns.append((test[column].astype(str) == category).to_numpy(np.float64))
                feature_names.append(f"{column}={category}")
        else:
            code = {category: float(k) for k, category in enumerate(categories)}
            train_columns.append(train[column].astype(str).map(code).to_numpy(np.float64))
            test_columns.append(test[column].astype(str).map(code).to_numpy(np.float64))
            feature_names.append(column)

    return Dataset(
        name=name,
        X_train=np.column_stack(train_columns),
        y_train=y_train,
        X_test=np.column_stack(test_columns),
        y_test=y_test,
        feature_names=tuple(feature_names),
        class_names=tuple(class_names),
    )
