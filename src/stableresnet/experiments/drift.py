"""Temporal evaluation (the paper's Figures 14-15): train on a time window, test on every later period.

The data is a `~stableresnet.data.transactions.TemporalDataset` (rows in time order, cut into
periods): a transactions file, the synthetic stand-in ``synthetic-btc`` or the real stream ``elec2``.
The split is one cut in time, the same for every member: rows before ``train_until`` train, and every
later period is a test set of its own. Trials differ only in their seed (initial weights and
mini-batch order), with trial t's seed shared by every block and h (the sweep's paired design).

All (trial, h) members of one block type are trained together as one batched
:class:`~stableresnet.model.StableResNet`, gathering training rows by index, never by copy.

Two tidy tables come out, one row per member (× period):

- ``periods``: accuracy and loss of each member on each test period, with ``periods_after`` = the
  period's index minus the last training period's (1 = the first period after training; 0 = the rest
  of a period the cut falls inside). Figure 15 is drawn from it alone.
- ``sweep``: train accuracy and pooled test accuracy (all rows after the cut) per member, in the
  columns of an h-sweep's table, so ``stableresnet.viz.sweep.plot_sweep`` draws Figure 14 from it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..blocks import VECTOR_FIELDS
from ..errors import ConfigError, DataError
from ..data.elec2 import load_elec2
from ..data.transactions import SYNTHETIC_NAME, TemporalDataset, load_transactions, synthetic_btc_dataset
from ..files import write_atomically
from ..init import DEFAULT_INIT
from ..model import StableResNet
from ..spec import NetworkSpec, TrainingSpec, build_network, check_step_size_grid
from ..train import Checkpoint, evaluate, fit
from .runner import ResultStore, RunOptions, Unit, UnitContext, execute, run_options
from .sweep import ROBUSTNESS_COLUMNS, ROBUSTNESS_ROWS, SPECTRA_ROWS, trial_seed

# The paper's Bitcoin network (section "Bitcoin cryptocurrency transaction network"): "128 hidden
# blocks, width 32, 100 epochs and a 100 K batch size", 5 trials (Figures 14-15).
PAPER_BTC = {"depth": 128, "width": 32, "epochs": 100, "batch_size": 100_000, "trials": 5}
BUILTIN = (SYNTHETIC_NAME, "elec2")
ELEC2_PERIOD_DAYS = {"month": 28, "week": 7}

PERIOD_COLUMNS = [
    "dataset", "block", "h", "trial", "seed", "period", "period_label", "periods_after", "n_rows",
    "accuracy", "loss", "diverged", "diverged_epoch",
]
SWEEP_COLUMNS = [
    "dataset", "block", "h", "depth", "width", "epochs", "batch_size", "lr", "trial", "seed",
    "n_train", "n_test", "train_accuracy", "train_loss", "test_accuracy", "test_loss",
    "diverged", "diverged_epoch", "seconds", "version", "compiled", "compile_reason",
]


@dataclass(frozen=True)
class DriftConfig:
    """Everything that determines a drift experiment's numbers; saved beside its results.

    ``data`` is a CSV/Parquet transactions file, ``"synthetic-btc"`` or ``"elec2"``. ``train_until``
    is a date (``2014-01`` or ``2014-01-15``, UTC; rows strictly before it train) for data with time
    stamps, or a period index K (periods 0..K-1 train) for any data. ``rows`` is the size of
    ``synthetic-btc`` (drawn with ``seed``). ``period`` is ``month`` or ``week`` (for elec2, blocks of
    28 or 7 days). ``time_feature`` adds the time stamp as a feature (transactions only).
    ``robustness`` adds each member's stability and robustness numbers (as ``sweep --robustness``)
    on the rows after the cut to the ``sweep`` table.
    """

    data: str
    train_until: str
    blocks: tuple[str, ...] = ("plain", "shrinkage", "batchnorm")
    step_sizes: tuple[float, ...] = (0.1, 1.0)
    trials: int = PAPER_BTC["trials"]
    depth: int = PAPER_BTC["depth"]
    width: int = PAPER_BTC["width"]
    epochs: int = PAPER_BTC["epochs"]
    batch_size: int = PAPER_BTC["batch_size"]
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    activation: str = "relu"
    seed: int = 0
    rows: int = 1_000_000
    period: str = "month"
    time_feature: bool = False
    robustness: bool = False
    init: str = DEFAULT_INIT  # the blocks' initial weights (``stableresnet.init``)

    def __post_init__(self):
        if not self.blocks:
            raise ConfigError("the drift experiment needs at least one block")
        if not self.step_sizes or len(set(self.step_sizes)) != len(self.step_sizes):
            raise ConfigError(f"step sizes must be a non-empty list of distinct values; got {self.step_sizes}")
        check_step_size_grid(self.step_sizes)
        for name in ("trials", "width", "rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer ≥ 1; got {value!r}")
        if self.period not in ("month", "week"):
            raise ConfigError(f"unknown period {self.period!r}; expected month or week")
        if self.time_feature and self.data == "elec2":
            raise ConfigError("elec2 has no clean time stamp to use as a feature (see data.elec2)")
        _parse_train_until(self.train_until)
        for block in self.blocks:
            self.network(block)
        self.training()

    def network(self, block: str) -> NetworkSpec:
        """The network spec of this experiment's ``block`` members (at the grid's first h)."""
        return NetworkSpec(self.depth, self.width, block, self.step_sizes[0], self.activation, init=self.init)

    def training(self) -> TrainingSpec:
        return TrainingSpec(self.optimizer, self.learning_rate, self.epochs, self.batch_size)

    def to_json(self) -> dict:
        record = {**dataclasses.asdict(self), "blocks": list(self.blocks), "step_sizes": list(self.step_sizes)}
        for name, default in (("robustness", False), ("init", DEFAULT_INIT)):
            if record[name] == default:  # left out, so folders from before the option still resume
                del record[name]
        return record


def load_drift_data(config: DriftConfig) -> TemporalDataset:
    """The config's data set: ``synthetic-btc``, ``elec2`` or a transactions file."""
    if config.data == SYNTHETIC_NAME:
        return synthetic_btc_dataset(config.rows, seed=config.seed, period=config.period,
                                     time_feature=config.time_feature)
    if config.data == "elec2":
        return load_elec2(period_days=ELEC2_PERIOD_DAYS[config.period])
    if not Path(config.data).is_file():
        raise DataError(f"{config.data}: no such file, and not one of the built-in data sets {list(BUILTIN)}")
    return load_transactions(config.data, period=config.period, time_feature=config.time_feature)


def _parse_train_until(text: str) -> int | np.datetime64:
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        if not re.fullmatch(r"\d{4}-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?)?", text):
            raise ValueError
        return np.datetime64(text, "ns")
    except ValueError:
        raise ConfigError(f"cannot read --train-until {text!r}; expected a date (2014-01, 2014-01-15) "
                          "or a period index (e.g. 12)") from None


@dataclass(frozen=True)
class TemporalSplit:
    """Rows ``0:n_train`` train; test period ``k`` is rows ``test_bounds[i]`` (start, stop)."""

    n_train: int
    last_train_period: int
    test_periods: tuple[int, ...]
    test_bounds: tuple[tuple[int, int], ...]

    @property
    def n_test(self) -> int:
        return sum(stop - start for start, stop in self.test_bounds)


def temporal_split(data: TemporalDataset, train_until) -> TemporalSplit:
    """Cut ``data`` in time: everything before ``train_until`` trains, each later period tests.

    Parameters
    ----------
    data : TemporalDataset
    train_until : str or int
        A date (UTC; rows strictly earlier train), for data with time stamps, or a period index K
        (periods 0..K-1 train).

    Returns
    -------
    TemporalSplit
        No test row is earlier than a training row: the rows are in time order and the cut is one
        row offset.
    """
    cut = _parse_train_until(train_until)
    bounds = data.period_bounds()
    if isinstance(cut, int):
        if not 1 <= cut < data.n_periods:
            raise ConfigError(f"--train-until period index must be in 1..{data.n_periods - 1} for {data.name} "
                              f"({data.n_periods} periods: {data.period_labels[0]} .. {data.period_labels[-1]})")
        n_train = int(bounds[cut])
    else:
        if not data.has_timestamps:
            raise ConfigError(f"{data.name} has no time stamps; give --train-until as a period index "
                              f"(1..{data.n_periods - 1}; periods are {data.period_labels[0]}, "
                              f"{data.period_labels[1]}, ...)")
        n_train = int(np.searchsorted(data.time, cut.astype(np.int64), side="left"))
    if n_train < 1 or n_train >= len(data.y):
        first, last = (data.time[[0, -1]].astype("datetime64[ns]") if data.has_timestamps else (0, len(data.y) - 1))
        raise ConfigError(f"--train-until {train_until} leaves {'no training' if n_train < 1 else 'no test'} rows "
                          f"in {data.name} (data from {first} to {last})")
    last_train = int(data.period[n_train - 1])
    periods, spans = [], []
    for k in range(int(data.period[n_train]), data.n_periods):
        start, stop = max(int(bounds[k]), n_train), int(bounds[k + 1])
        if stop > start:
            periods.append(k)
            spans.append((start, stop))
    return TemporalSplit(n_train, last_train, tuple(periods), tuple(spans))


def run_block(
    config: DriftConfig, block: str, data: TemporalDataset, split: TemporalSplit, device: str = "cpu",
    on_epoch: Callable[[int, np.ndarray], None] | None = None, compile: bool | str = False,
    checkpoint: Checkpoint | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, StableResNet]:
    """Train every (trial, h) of one block as one batched model; returns (periods, sweep, model).
    ``compile``: through ``torch.compile`` (``TrainConfig.compile``: True, False or "auto"); ``checkpoint``: where training
    saves its state between epochs and resumes from."""
    started = time.perf_counter()
    members = [(trial, h) for trial in range(config.trials) for h in config.step_sizes]
    seeds = [trial_seed(config.seed, trial) for trial, _ in members]
    model = build_network(config.network(block), data.n_features, data.n_classes, seeds, [h for _, h in members],
                          device)
    # Shared with numpy, no copy (np.require copies only an array that is read-only, as pandas may hand out).
    X, y = (torch.from_numpy(np.require(a, requirements="W")) for a in (data.X, data.y))
    train_rows = torch.arange(split.n_train).expand(len(members), -1)  # the same window for every member
    train_config = config.training().train_config(compile=compile)
    result = fit(model, X, y, train_config, train_index=train_rows, on_epoch=on_epoch, checkpoint=checkpoint)
    train = evaluate(model, X[: split.n_train], y[: split.n_train])

    member_columns = {
        "dataset": data.name, "block": block, "h": [h for _, h in members],
        "trial": [trial for trial, _ in members], "seed": seeds,
        "diverged": result.diverged, "diverged_epoch": result.diverged_epoch,
    }
    period_tables, correct, loss_sum = [], 0.0, 0.0
    for period, (start, stop) in zip(split.test_periods, split.test_bounds):
        metrics = evaluate(model, X[start:stop], y[start:stop])
        n_rows = stop - start
        correct = correct + metrics["accuracy"] * n_rows
        loss_sum = loss_sum + metrics["loss"] * n_rows
        period_tables.append(pd.DataFrame({
            **member_columns, "period": period, "period_label": data.period_labels[period],
            "periods_after": period - split.last_train_period, "n_rows": n_rows,
            "accuracy": metrics["accuracy"], "loss": metrics["loss"],
        })[PERIOD_COLUMNS])
    seconds = (time.perf_counter() - started + result.resumed_seconds) / len(members)
    sweep = pd.DataFrame({
        **member_columns, "depth": config.depth, "width": config.width, "epochs": config.epochs,
        "batch_size": config.batch_size, "lr": config.learning_rate,
        "n_train": split.n_train, "n_test": split.n_test,
        "train_accuracy": train["accuracy"], "train_loss": train["loss"],
        "test_accuracy": correct / split.n_test, "test_loss": loss_sum / split.n_test,
        "seconds": seconds, "version": __version__, "compiled": result.compiled,
        "compile_reason": result.compile_reason,
    })[SWEEP_COLUMNS]
    if config.robustness:
        from ..diagnostics import member_robustness

        numbers = member_robustness(model, X[split.n_train:], y[split.n_train:], max_samples=SPECTRA_ROWS,
                                    accuracy_samples=ROBUSTNESS_ROWS, seed=config.seed)
        sweep = sweep.assign(**{name: numbers[name] for name in ROBUSTNESS_COLUMNS})
    return pd.concat(period_tables, ignore_index=True), sweep, model


@dataclass
class DriftResult:
    periods: pd.DataFrame  # one row per member × test period (Figure 15)
    sweep: pd.DataFrame  # one row per member, pooled test accuracy (Figure 14)
    split: TemporalSplit
    data: TemporalDataset = dataclasses.field(repr=False)


class Drift:
    """The drift experiment as the runner's experiment (``runner.execute``): one unit per block,
    two tables (``periods`` and ``sweep``)."""

    tables = ("periods", "sweep")

    def __init__(self, config: DriftConfig, data: TemporalDataset, split: TemporalSplit):
        self.config, self.data, self.split = config, data, split

    def units(self) -> list[Unit]:
        members = self.config.trials * len(self.config.step_sizes)
        batch = min(self.config.batch_size, self.split.n_train)
        return [Unit(block, block, self.config.epochs, 2 if VECTOR_FIELDS[block].batch_normalized else 1, block,
                     members * batch * self.config.width) for block in self.config.blocks]

    def run_unit(self, unit: Unit, context: UnitContext) -> dict[str, pd.DataFrame]:
        periods, sweep, _ = run_block(self.config, unit.payload, self.data, self.split, context.device,
                                      context.on_epoch, context.compile, context.checkpoint)
        return {"periods": periods, "sweep": sweep}


def run_drift(
    config: DriftConfig, options: RunOptions | None = None, data: TemporalDataset | None = None,
    directory: str | Path | None = None, **option_values,
) -> DriftResult:
    """Load the data, cut it at ``train_until``, train each block's members together, evaluate per period.

    ``options`` (or its fields as keywords) say how the blocks train (`runner.RunOptions`; its
    ``progress`` hears of each block). ``data`` skips loading (it must be what
    ``load_drift_data(config)`` gives). With ``directory`` each finished block is saved in
    ``directory/blocks/`` and a rerun trains only the missing blocks, a block cut off mid-way
    from the state its training saved (every 5 minutes, between epochs); a folder holding
    another config is refused.
    """
    options = run_options(options, option_values)
    data = load_drift_data(config) if data is None else data
    split = temporal_split(data, config.train_until)
    with tempfile.TemporaryDirectory() as scratch:
        store = ResultStore(scratch if directory is None else directory, config.to_json(), "a drift run",
                            Drift.tables, units="blocks", config_file="blocks/config.json")
        tables = execute(Drift(config, data, split), store, options)
    return DriftResult(tables["periods"], tables["sweep"], split, data)


def save_drift(directory: str | Path, config: DriftConfig, result: DriftResult) -> list[Path]:
    """Write config.json (with the split), periods.csv and sweep.csv, each atomically; returns the paths."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write results to {str(directory)!r}: {error.strerror}") from None
    data, split = result.data, result.split
    first_test = data.time[split.n_train]
    record = {
        **config.to_json(), "version": __version__, "dataset": data.name,
        "features": list(data.feature_names), "classes": list(data.class_names),
        "n_rows": int(len(data.y)), "n_train": split.n_train, "n_test": split.n_test,
        "last_train_period": data.period_labels[split.last_train_period],
        "first_test_time": str(first_test.astype("datetime64[ns]")) if data.has_timestamps else f"row {first_test}",
    }
    paths = {name: directory / name for name in ("config.json", "periods.csv", "sweep.csv")}
    write_atomically(paths["config.json"], lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))
    write_atomically(paths["periods.csv"], lambda p: result.periods.to_csv(p, index=False))
    write_atomically(paths["sweep.csv"], lambda p: result.sweep.to_csv(p, index=False))
    return list(paths.values())
