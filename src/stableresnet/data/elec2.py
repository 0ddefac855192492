"""Elec2, a real time-ordered classification stream, read from the bundled ``files/elec2/elecNormNew.arff``.

The file is a byte-for-byte copy of OpenML dataset 151 v1 (see ``files/elec2/PROVENANCE.md``; it is not
one of the paper's data sets). Every read checks its sha256 against ``files/elec2/SHA256SUMS``; a
mismatch raises `DataError` naming the file. It is parsed with ``scipy.io.arff``.

- **Rows and time.** 45312 rows in time order, one per half-hour of the New South Wales electricity
  market, May 1996 to December 1998. The normalised ``date`` column is not a clean time index (it
  decreases at five places, PROVENANCE.md), so **row order is the time**. The ``period`` column (time of
  day, k/47) equals ``(row mod 48)/47`` on every row and ``day`` changes only every 48 rows: the file is
  944 whole days without gaps (checked on load).
- **Periods.** Blocks of ``period_days`` whole days, 28 by default (1344 rows, a four-week "month", so
  every period holds each weekday equally often): 33 full blocks and a last one of 20 days.
- **Features.** The 7 attributes other than ``date``: ``day`` (1-7, as a number), ``period``,
  ``nswprice``, ``nswdemand``, ``vicprice``, ``vicdemand``, ``transfer``. ``date`` is left out for the
  reason the transactions' time stamp is: in a temporal evaluation it only ever takes unseen values.
- **Label.** ``class``: UP = 0, DOWN = 1 (the declared order): did the NSW price go up relative to the
  last 24 hours' moving average.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import arff

from ..errors import DataError
from .transactions import TemporalDataset

BUNDLED_ROOT = Path(__file__).parent / "files" / "elec2"
FILE = "elecNormNew.arff"
ATTRIBUTES = ("date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "class")
FEATURES = ATTRIBUTES[1:-1]
CLASSES = ("UP", "DOWN")
HALF_HOURS_PER_DAY = 48


def _read_verified(root: Path) -> tuple[bytes, Path]:
    path, sums = root / FILE, root / "SHA256SUMS"
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if not sums.is_file():
        raise DataError(f"{sums}: checksum list not found")
    expected = dict(reversed(line.split(maxsplit=1)) for line in sums.read_text().splitlines() if line.strip())
    if FILE not in expected:
        raise DataError(f"{sums}: no checksum listed for {FILE}")
    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected[FILE]:
        raise DataError(f"{path}: sha256 {actual} does not match {expected[FILE]} in SHA256SUMS; "
                        "the file is damaged or is not the OpenML/MOA original")
    return raw, path


def load_elec2(*, period_days: int = 28, root=None) -> TemporalDataset:
    """Elec2 (NSW electricity, 45312 half-hours): UP/DOWN price movement, rows in time order.

    Parameters
    ----------
    period_days : int
        Days per period (48 rows a day); 28 gives four-week "months", 7 gives weeks.
    root : path, optional
        Folder holding ``elecNormNew.arff`` and ``SHA256SUMS``; default the bundled copy.

    Returns
    -------
    TemporalDataset
        7 features, classes ``("UP", "DOWN")``, ``time`` = row position, periods labelled
        ``"days 0-27"`` and so on.

    Examples
    --------
    >>> data = load_elec2()
    >>> data.X.shape, data.n_periods, data.period_labels[1]
    ((45312, 7), 34, 'days 28-55')
    """
    if isinstance(period_days, bool) or not isinstance(period_days, (int, np.integer)) or period_days < 1:
        raise DataError(f"elec2: period_days must be an integer ≥ 1, got {period_days!r}")
    raw, path = _read_verified(BUNDLED_ROOT if root is None else Path(root))
    try:
        records, meta = arff.loadarff(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    except (arff.ArffError, ValueError, IndexError) as err:
        raise DataError(f"{path}: cannot parse as ARFF: {err}") from err
    if tuple(meta.names()) != ATTRIBUTES:
        raise DataError(f"{path}: attributes are {meta.names()}, expected {list(ATTRIBUTES)}")
    table = pd.DataFrame(records)
    n_rows = len(table)
    labels = table["class"].str.decode("ascii").map({name: k for k, name in enumerate(CLASSES)})
    if labels.isna().any() or n_rows % HALF_HOURS_PER_DAY:
        raise DataError(f"{path}: unexpected labels or a row count ({n_rows}) that is not whole days")
    table["day"] = table["day"].str.decode("ascii").astype(np.float64)
    # Row order is the time: verify the half-hour grid rather than assume it.
    slot = np.round(table["period"].to_numpy() * (HALF_HOURS_PER_DAY - 1)).astype(np.int64)
    if not np.array_equal(slot, np.arange(n_rows) % HALF_HOURS_PER_DAY):
        raise DataError(f"{path}: the 'period' column does not step through 48 half-hours a day in row order")

    rows_per_period = period_days * HALF_HOURS_PER_DAY
    period = np.arange(n_rows) // rows_per_period
    n_days = n_rows // HALF_HOURS_PER_DAY
    period_labels = tuple(f"days {start}-{min(start + period_days, n_days) - 1}"
                          for start in range(0, n_days, period_days))
    return TemporalDataset(
        name="elec2",
        X=table[list(FEATURES)].to_numpy(np.float32),
        y=labels.to_numpy(np.int64),
        period=period.astype(np.int64),
        period_labels=period_labels,
        time=np.arange(n_rows, dtype=np.int64),
        has_timestamps=False,
        feature_names=FEATURES,
        class_names=CLASSES,
    )


TRAIN_FRACTION = 0.8


def elec2(seed=0, root=None):
    """Elec2 (NSW electricity 1996-1998, OpenML 151): price UP/DOWN, the first 80% of days train.

    The `load_dataset` view of `load_elec2`: one cut in time at the first whole day after 80 %
    of the rows (756 of 944 days train, the last 188 test), never shuffled, so no test row is
    earlier than a training row; ``seed`` is unused (like adult's official split). For an
    evaluation period by period, use ``stableresnet drift --data elec2``.

    Returns
    -------
    Dataset
        7 features, classes ``("UP", "DOWN")``.
    """
    from .dataset import Dataset

    stream = load_elec2(root=root)
    n_days = len(stream.y) // HALF_HOURS_PER_DAY
    n_train = int(np.ceil(TRAIN_FRACTION * n_days)) * HALF_HOURS_PER_DAY
    X, y = stream.X.astype(np.float64), stream.y.copy()  # own, writable arrays
    return Dataset(name="elec2", X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:], y_test=y[n_train:],
                   feature_names=stream.feature_names, class_names=stream.class_names)
