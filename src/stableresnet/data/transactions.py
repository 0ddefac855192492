"""Time-ordered classification data: Bitcoin-style transaction tables and the `synthetic-btc` generator.

The paper's Bitcoin experiment (Figures 14-15) predicts the entity behind a transaction (exchange,
services, gambling, mining pool) from the transaction's input and output counts, its BTC volume and
its time stamp, trains on early months and measures accuracy on later ones. The paper's 16.5 M rows
are not public; this module reads any table with that schema, and generates a **synthetic** stand-in.

Schema (CSV with a header row, or Parquet; extra columns are ignored):

==============  ==================================================================================
``timestamp``   UTC time. Parquet: a timestamp column (a time zone is converted to UTC, a naive one
                is read as UTC) or integer Unix seconds. CSV: ISO 8601 text (``2013-04-01T12:00:00Z``)
                or integer Unix seconds (BlockSci's block time).
``n_inputs``    number of input addresses, a whole number ≥ 0
``n_outputs``   number of output addresses, a whole number ≥ 0
``volume_btc``  transferred volume in BTC, a finite number ≥ 0
``entity``      the label: ``exchange``, ``services``, ``gambling`` or ``mining_pool``
==============  ==================================================================================

Any violation raises `DataError` naming the file, the column, the first bad row and value.

Feature engineering. The counts and the volume are heavy-tailed (one transaction can move 10⁴ BTC,
the next 10⁻⁴), so each enters as ``log1p``: ``log_inputs``, ``log_outputs``, ``log_volume``. The
model standardises them on the training rows. The time stamp is **left out by default**: in a temporal
evaluation every test row lies after every training row, so an absolute-time feature is one the network
has never seen in range, and a model that leans on it extrapolates rather than transfers, which is the
thing Figure 15 measures. The paper did use it as its fourth feature; ``time_feature=True`` adds it as
``months`` (fractional months since the start of the data: 30.44-day months, so a unit step is a month).

Rows are sorted by time (stably) and cut into calendar months (``period="month"``, labelled ``2012-01``)
or 7-day weeks from the first row's day (``period="week"``); period 0 holds the first row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

ENTITIES = ("exchange", "services", "gambling", "mining_pool")
COLUMNS = ("timestamp", "n_inputs", "n_outputs", "volume_btc", "entity")
FEATURES = ("log_inputs", "log_outputs", "log_volume")
NS_PER_MONTH = int(30.436875 * 86400e9)  # mean Gregorian month, for the optional `months` feature
NS_PER_WEEK = 7 * 86400 * 10**9
SYNTHETIC_NAME = "synthetic-btc"


@dataclass(frozen=True, eq=False)
class TemporalDataset:
    """A classification data set whose rows are in time order and grouped into periods.

    Attributes
    ----------
    name : str
    X : ndarray of float32, shape (n, n_features)
        Encoded but not standardised features, rows in time order.
    y : ndarray of int64, shape (n,)
        Class indices into `class_names`.
    period : ndarray of int64, shape (n,)
        Non-decreasing period index of each row, 0 for the first row.
    period_labels : tuple of str
        ``period_labels[k]`` names period k (``"2013-04"``, ``"block 7"``).
    time : ndarray of int64, shape (n,)
        Non-decreasing time key: nanoseconds since the Unix epoch (UTC) when the data has time
        stamps, else the row position.
    has_timestamps : bool
        Whether `time` holds real time stamps.
    feature_names, class_names : tuple of str
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    period: np.ndarray
    period_labels: tuple[str, ...]
    time: np.ndarray
    has_timestamps: bool
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

    def __post_init__(self):
        n = len(self.y)
        if self.X.shape != (n, len(self.feature_names)) or self.period.shape != (n,) or self.time.shape != (n,):
            raise DataError(f"{self.name}: X, y, period and time disagree in length or width")
        if n and (np.any(np.diff(self.period) < 0) or np.any(np.diff(self.time) < 0)):
            raise DataError(f"{self.name}: rows must be in time order")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_periods(self) -> int:
        return len(self.period_labels)

    def period_bounds(self) -> np.ndarray:
        """Row offsets: period k is rows ``bounds[k]:bounds[k + 1]`` (empty for a period without rows)."""
        return np.searchsorted(self.period, np.arange(self.n_periods + 1), side="left")


def read_transactions(path) -> pd.DataFrame:
    """Read and validate a transactions table (CSV or Parquet) into the schema's columns.

    Parameters
    ----------
    path : str or Path
        ``.csv``, ``.parquet`` or ``.pq``.

    Returns
    -------
    pandas.DataFrame
        Columns `COLUMNS`: ``timestamp`` datetime64[ns, UTC], counts int64, ``volume_btc`` float64,
        ``entity`` categorical over `ENTITIES`; rows in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            # Only the schema's columns, each as text or numbers as written: converted and checked below.
            table = pd.read_csv(path, usecols=lambda c: c in COLUMNS, dtype={"timestamp": str, "entity": str})
        except pd.errors.EmptyDataError as err:
            raise DataError(f"{path}: the file is empty") from err
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise DataError(f"{path}: malformed CSV: {err}") from err
    elif suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            present = set(pq.read_schema(path).names)
            table = pq.read_table(path, columns=[c for c in COLUMNS if c in present]).to_pandas()
        except (OSError, ValueError) as err:  # pyarrow's errors derive from these
            raise DataError(f"{path}: cannot read as Parquet: {err}") from err
    else:
        raise DataError(f"{path}: unsupported extension {suffix!r}, expected .csv, .parquet or .pq")
    return validate_transactions(table, str(path))


def validate_transactions(table: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Check a frame against the schema and convert its columns; `source` names it in messages.

    Returns a new frame with exactly `COLUMNS` (see `read_transactions`).
    """
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; a transactions table needs {list(COLUMNS)}")
    if len(table) == 0:
        raise DataError(f"{source}: no data rows")

    def first_bad(mask, column, problem):
        bad = np.flatnonzero(np.asarray(mask))
        if bad.size:
            value = table[column].iloc[bad[0]]
            value = value.item() if isinstance(value, np.generic) else value  # -1, not np.int64(-1)
            raise DataError(f"{source}: column {column!r}, data row {bad[0] + 1}: {problem}, found {value!r} "
                            f"({bad.size} bad row{'s' * (bad.size != 1)})")

    out = {"timestamp": _timestamps(table["timestamp"], source, first_bad)}
    for column in ("n_inputs", "n_outputs", "volume_btc"):
        values = table[column]
        numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_numeric_dtype(values) else values
        numbers = numbers.to_numpy(np.float64) if column == "volume_btc" else numbers.to_numpy()
        as_float = numbers.astype(np.float64, copy=False)
        first_bad(~np.isfinite(as_float), column, "expected a finite number")
        first_bad(as_float < 0, column, "expected a value ≥ 0 (a negative count or volume)")
        if column != "volume_btc":
            first_bad(as_float != np.round(as_float), column, "expected a whole number")
            numbers = numbers.astype(np.int64, copy=False)
        out[column] = numbers
    entity = table["entity"]
    if not isinstance(entity.dtype, pd.CategoricalDtype):
        entity = entity.astype("category")  # one pass over the text, then work on the few categories
    names = [str(c).strip() for c in entity.cat.categories]
    to_schema = np.array([ENTITIES.index(n) if n in ENTITIES else -1 for n in names] + [-1], dtype=np.int8)
    codes = to_schema[entity.cat.codes.to_numpy()]  # a missing value has code -1, i.e. the trailing -1
    first_bad(codes < 0, "entity", f"expected one of {list(ENTITIES)}")
    out["entity"] = pd.Categorical.from_codes(codes, categories=list(ENTITIES))
    return pd.DataFrame(out)


def _timestamps(values: pd.Series, source, first_bad) -> pd.Series:
    """UTC datetime64[ns] from a timestamp column, ISO text or integer Unix seconds."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_numeric_dtype(values):
        seconds = values.to_numpy(np.float64)
        first_bad(~np.isfinite(seconds) | (seconds != np.round(seconds)), "timestamp",
                  "expected whole Unix seconds")
        return pd.Series(pd.to_datetime(values.to_numpy(np.int64), unit="s", utc=True)).astype("datetime64[ns, UTC]")
    text = values.astype(str).str.strip()
    if text.str.fullmatch(r"-?\d+").all():  # integers written as text in a CSV
        return _timestamps(text.astype(np.int64), source, first_bad)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    first_bad(parsed.isna().to_numpy(), "timestamp", "expected an ISO 8601 time (e.g. 2013-04-01T12:00:00Z)")
    return parsed.astype("datetime64[ns, UTC]")


def transactions_dataset(table: pd.DataFrame, name: str, *, period: str = "month",
                         time_feature: bool = False) -> TemporalDataset:
    """Sort a validated transactions frame by time, engineer features and cut it into periods.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by `read_transactions` or `synthetic_btc`.
    name : str
    period : {"month", "week"}
        Calendar months (UTC) or 7-day weeks counted from the first row's day.
    time_feature : bool
        Add ``months`` (fractional months since the first row) as a fourth feature, as the paper did.

    Returns
    -------
    TemporalDataset
        Features ``log1p`` of inputs, outputs and volume (and ``months``); classes `ENTITIES`.
    """
    if period not in ("month", "week"):
        raise DataError(f"unknown period {period!r}; expected 'month' or 'week'")
    time = table["timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    order = None if np.all(time[1:] >= time[:-1]) else np.argsort(time, kind="stable")

    def column(name, dtype):
        values = table[name].to_numpy() if name != "entity" else table[name].cat.codes.to_numpy()
        return (values if order is None else values[order]).astype(dtype, copy=False)

    time = time if order is None else time[order]
    features = [np.log1p(column(c, np.float32)) for c in ("n_inputs", "n_outputs", "volume_btc")]
    names = list(FEATURES)
    if time_feature:
        features.append(((time - time[0]) / NS_PER_MONTH).astype(np.float32))
        names.append("months")
    X = np.empty((len(time), len(features)), dtype=np.float32)
    for k, values in enumerate(features):
        X[:, k] = values
    y = column("entity", np.int64)

    stamps = time.view("datetime64[ns]")
    if period == "month":
        months = stamps.astype("datetime64[M]").astype(np.int64)
        index = months - months[0]
        labels = tuple(str(np.datetime64(int(months[0]) + k, "M")) for k in range(int(index[-1]) + 1))
    else:
        first_day = stamps[0].astype("datetime64[D]").astype("datetime64[ns]").view(np.int64)
        index = (time - first_day) // NS_PER_WEEK
        labels = tuple(f"week of {np.datetime64(int(first_day) + k * NS_PER_WEEK, 'ns').astype('datetime64[D]')}"
                       for k in range(int(index[-1]) + 1))
    return TemporalDataset(name, X, y, index.astype(np.int64), labels, time, True, tuple(names), ENTITIES)


def load_transactions(path, *, period: str = "month", time_feature: bool = False) -> TemporalDataset:
    """Read, validate and encode a transactions file; see the module docstring for the schema.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tx.parquet")
    >>> synthetic_btc(1000, seed=0).to_parquet(path)
    >>> data = load_transactions(path)
    >>> data.X.shape, data.class_names[0], data.period_labels[0]
    ((1000, 3), 'exchange', '2012-01')
    """
    return transactions_dataset(read_transactions(path), Path(path).stem, period=period, time_feature=time_feature)


# --- synthetic-btc -------------------------------------------------------------------------------
# Per-class starting points, loosely shaped on public descriptions of Bitcoin entity behaviour:
# mining pools pay many outputs from few inputs, exchanges consolidate many inputs and move large
# volumes, gambling sites move small amounts between few addresses. Made up, not fitted to data.
_START_LOG_VOLUME = np.array([1.0, -0.5, -2.5, 0.5])       # mean ln(volume in BTC)
_LOG_VOLUME_SD = np.array([1.6, 1.4, 1.2, 1.0])
_START_INPUTS = np.array([3.0, 1.5, 0.6, 0.3])             # Poisson mean of n_inputs - 1
_START_OUTPUTS = np.array([1.2, 1.0, 1.1, 12.0])           # Poisson mean of n_outputs - 1
_START_SHARE = np.array([0.40, 0.30, 0.20, 0.10])          # class shares in the first month
# Month-to-month drift: a trend (BTC's price rose, so volumes in BTC fell; exchanges took a larger
# share) plus a seeded random walk, so each seed drifts differently but always by more than noise.
_LOG_VOLUME_TREND = np.array([-0.04, -0.03, -0.02, -0.05])  # per month
_SHARE_TREND = np.array([0.02, 0.0, -0.01, -0.02])          # per month, on the log-share scale
_WALK_SD = {"log_volume": 0.08, "log_rate": 0.05, "log_share": 0.05}


def synthetic_btc(n_rows: int = 1_000_000, seed: int = 0, *, start: str = "2012-01",
                  months: int = 77, growth: float = 0.03) -> pd.DataFrame:
    """Draw a **synthetic** transactions table (`synthetic-btc`) whose class distributions drift monthly.

    Each row's month is drawn with weights growing by ``exp(growth)`` a month (more traffic later);
    its entity from that month's class shares; ``n_inputs = 1 + Poisson``, ``n_outputs = 1 + Poisson``
    and ``ln volume_btc ~ Normal`` with class- and month-dependent parameters. Every parameter follows
    a per-class trend plus a seeded Gaussian random walk over the months, so the data drifts: e.g. the
    mean log-volume of exchanges falls by about 0.04 a month. Time stamps are uniform within each
    month and sorted. Fully vectorised: about a second per few million rows.

    Parameters
    ----------
    n_rows : int
    seed : int
        Seed of a ``numpy.random.Generator``; the same seed gives the same table.
    start : str
        First month, ``"YYYY-MM"`` (the paper's data starts 1/2012 and ends 5/2018: 77 months).
    months : int
    growth : float
        Log-growth of the monthly row count.

    Returns
    -------
    pandas.DataFrame
        The transactions schema (`COLUMNS`), time-sorted, ``timestamp`` in UTC.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise DataError(f"{SYNTHETIC_NAME}: n_rows must be an integer ≥ 1, got {n_rows!r}")
    if isinstance(months, bool) or not isinstance(months, (int, np.integer)) or months < 1:
        raise DataError(f"{SYNTHETIC_NAME}: months must be an integer ≥ 1, got {months!r}")
    try:
        first = np.datetime64(start, "M")
    except ValueError:
        raise DataError(f"{SYNTHETIC_NAME}: start must be a month 'YYYY-MM', got {start!r}") from None
    rng = np.random.default_rng(seed)
    n_classes = len(ENTITIES)
    t = np.arange(months)[:, None]

    def walk(sd):  # (months, classes) random walk starting at 0
        steps = rng.normal(0.0, sd, size=(months, n_classes))
        steps[0] = 0.0
        return np.cumsum(steps, axis=0)

    log_volume = _START_LOG_VOLUME + _LOG_VOLUME_TREND * t + walk(_WALK_SD["log_volume"])
    inputs = _START_INPUTS * np.exp(walk(_WALK_SD["log_rate"]))
    outputs = _START_OUTPUTS * np.exp(walk(_WALK_SD["log_rate"]))
    log_share = np.log(_START_SHARE) + _SHARE_TREND * t + walk(_WALK_SD["log_share"])
    share = np.exp(log_share)
    share /= share.sum(axis=1, keepdims=True)

    # Rows per month, then within each month sorted uniform offsets (a sorted uniform sample is a
    # normalised cumulative sum of exponential gaps, so no O(n log n) sort is needed).
    month_weight = np.exp(growth * np.arange(months))
    per_month = rng.multinomial(n_rows, month_weight / month_weight.sum())
    month = np.repeat(np.arange(months), per_month)
    gaps = rng.exponential(size=n_rows + months)
    segment = np.repeat(np.arange(months), per_month + 1)  # one extra gap closes each month
    cumulative = np.cumsum(gaps)
    ends = np.cumsum(per_month + 1) - 1
    starts_at = np.concatenate([[0.0], cumulative[ends[:-1]]])
    fraction = (cumulative - starts_at[segment]) / (cumulative[ends] - starts_at)[segment]
    fraction = np.delete(fraction, ends)  # drop each month's closing gap: n_rows values in (0, 1)

    month_start = (first + np.arange(months + 1)).astype("datetime64[ns]").view(np.int64)
    length = np.diff(month_start)
    time = month_start[month] + (fraction * length[month]).astype(np.int64)

    entity = (rng.random(n_rows)[:, None] > np.cumsum(share, axis=1)[month, :-1]).sum(axis=1)
    cell = month * n_classes + entity
    n_inputs = 1 + rng.poisson(inputs.ravel()[cell])
    n_outputs = 1 + rng.poisson(outputs.ravel()[cell])
    volume = np.exp(log_volume.ravel()[cell] + _LOG_VOLUME_SD[entity] * rng.standard_normal(n_rows))
    return pd.DataFrame({
        "timestamp": pd.to_datetime(time, utc=True),
        "n_inputs": n_inputs.astype(np.int32),
        "n_outputs": n_outputs.astype(np.int32),
        "volume_btc": np.round(volume, 8),  # whole satoshis
        "entity": pd.Categorical.from_codes(entity.astype(np.int8), categories=list(ENTITIES)),
    })


def synthetic_btc_dataset(n_rows: int = 1_000_000, seed: int = 0, *, period: str = "month",
                          time_feature: bool = False) -> TemporalDataset:
    """`synthetic_btc` encoded as a `TemporalDataset` named ``synthetic-btc``."""
    return transactions_dataset(synthetic_btc(n_rows, seed), SYNTHETIC_NAME, period=period,
                                time_feature=time_feature)
