"""h-sweeps (the paper's Figures 8-13): every (block, h, trial) trained as members of batched ensembles.

A sweep is a grid of blocks × step sizes × trials. All members that share a block
type are trained together as one :class:`~stableresnet.model.StableResNet` with a
member axis, in groups of at most ``members_per_group`` members. Trial t uses the
same seed for every block and h (a paired design: same split, same mini-batch
order, same initial K1 and head), derived from the one sweep seed.

The data is a bundled dataset or a user CSV/Parquet file (``SweepConfig.from_table``);
trial t splits it with its own seed, the same split for every block and h. A file's
SHA-256 is part of the config, so a sweep never resumes on a file that has changed.

Results are tidy records, one row per member. The sweep is an experiment of the runner
(``stableresnet.experiments.runner``): its units are the groups, each finished group is written
atomically to ``DIR/groups/<group>.csv`` and ``DIR/results.csv`` is assembled from the group
files in canonical order. A killed sweep, started again with the same config, skips the finished
groups and ends with the same table (the ``seconds`` column aside, which is wall time).
``DIR/config.json`` holds the resolved config; a different config in an existing DIR is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
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
from ..data import DATASETS, Dataset, load_dataset, load_table, paper_preset
from ..files import write_atomically
from ..init import DEFAULT_INIT
from ..model import StableResNet
from ..multilevel import fit_multilevel
from ..spec import NetworkSpec, TrainingSpec, build_network, check_step_size_grid, defaults
from ..train import Checkpoint, evaluate
from .runner import ResultStore, RunOptions, Unit, UnitContext, execute, run_options

# block_h_mean / block_h_min: the blocks' h_i after training (``TrainResult.step_sizes``): h for
# the fixed policy, the trained h_i for learnable, the running average for adaptive.
COLUMNS = [
    "dataset", "block", "h", "integrator", "step_size_policy", "depth", "width", "epochs", "batch_size", "lr",
    "trial", "seed", "train_accuracy", "train_loss", "test_accuracy", "test_loss", "diverged", "diverged_epoch",
    "block_h_mean", "block_h_min", "seconds", "version", "compiled", "compile_reason",
]
# Added per member by ``robustness=True`` (see stableresnet.diagnostics.member_robustness). The four
# accuracies are measured on one seeded subset of at most ROBUSTNESS_ROWS test rows (all rows of the
# small sets; PGD on all of Adult's 16 281 would dominate the sweep), so clean − attacked is a drop
# on the same rows; c and the amplification on at most SPECTRA_ROWS of them (one eigen-decomposition
# per member, layer and row is most of the cost).
ROBUSTNESS_COLUMNS = ["stability_constant", "max_amplification", "clean_accuracy", "noise_accuracy", "fgsm_accuracy",
                      "pgd_accuracy"]
ROBUSTNESS_ROWS, SPECTRA_ROWS = 2000, 256

BLOCKS = ("plain", "shrinkage", "batchnorm")  # the paper's three blocks
# Without a paper preset: the paper's own grid and trial count (every preset has these: "from
# h = 0.1 to h = 1 ... 10 trials"), and the network and training settings of StableResNetClassifier.
PAPER_STEP_SIZES = tuple(round(0.1 * k, 10) for k in range(1, 11))
PAPER_TRIALS = 10
ESTIMATOR_SETTINGS = ("depth", "width", "epochs", "batch_size", "learning_rate", "optimizer", "activation")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class SweepConfig:
    """Everything that determines a sweep's numbers; saved beside its results.

    ``dataset`` names a bundled set, or, with ``data_file`` (an absolute path), is that file's stem;
    ``target``, ``data_sha256`` come with ``data_file``. ``width`` None keeps the number of features.
    """

    dataset: str
    blocks: tuple[str, ...]
    step_sizes: tuple[float, ...]
    trials: int
    depth: int
    width: int | None
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    activation: str = "relu"
    seed: int = 0
    members_per_group: int = 100
    integrator: str = "euler"
    step_size_policy: str = "fixed"
    robustness: bool = False
    levels: int = 1  # multi-level depth (``stableresnet.multilevel``); epochs are per level
    data_file: str | None = None
    target: str | None = None
    data_sha256: str | None = None
    test_size: float = 0.2
    one_hot: bool = False
    init: str = DEFAULT_INIT  # the blocks' initial weights (``stableresnet.init``)

    def __post_init__(self):
        if self.data_file is not None and not (self.target and self.data_sha256):
            raise ConfigError("a sweep on a data file needs its target column and SHA-256 (see SweepConfig.from_table)")
        if self.data_file is None and (self.target is not None or self.data_sha256 is not None):
            raise ConfigError(f"target {self.target!r} and data_sha256 belong to a data_file, and none is given")
        if not self.blocks:
            raise ConfigError("the sweep needs at least one block")
        check_step_size_grid(self.step_sizes)
        for name in ("trials", "members_per_group"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer ≥ 1; got {value!r}")
        for block in self.blocks:
            self.network(block)
        self.training()

    def network(self, block: str) -> NetworkSpec:
        """The network spec of this sweep's ``block`` members (at the grid's first h; each member has its own)."""
        return NetworkSpec(self.depth, self.width, block, self.step_sizes[0], self.activation, self.integrator,
                           self.step_size_policy, levels=self.levels, init=self.init)

    def training(self) -> TrainingSpec:
        return TrainingSpec(self.optimizer, self.learning_rate, self.epochs, self.batch_size)

    @classmethod
    def from_preset(cls, dataset: str, **overrides) -> SweepConfig:
        """The paper's settings for ``dataset`` (see ``stableresnet.data.PAPER_PRESETS``), then overrides."""
        preset = paper_preset(dataset)
        return cls._with_overrides({
            "dataset": dataset, "blocks": BLOCKS, "step_sizes": preset.step_sizes,
            "trials": preset.trials, "depth": preset.depth, "width": preset.width, "epochs": preset.epochs,
            "batch_size": preset.batch_size,
        }, overrides)

    @classmethod
    def from_estimator_defaults(cls, dataset: str, **overrides) -> SweepConfig:
        """For data without a paper preset: the estimator's defaults (``spec.defaults``) of
        ``ESTIMATOR_SETTINGS``, the paper's h grid 0.1:1.0:0.1 and 10 trials, then overrides."""
        return cls._with_overrides({
            "dataset": dataset, "blocks": BLOCKS, "step_sizes": PAPER_STEP_SIZES, "trials": PAPER_TRIALS,
            **defaults(ESTIMATOR_SETTINGS),
        }, overrides)

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> SweepConfig:
        """A bundled dataset: its paper preset where it has one (``from_preset``), else the estimator's defaults."""
        if dataset not in DATASETS:
            raise DataError(f"no paper preset for {dataset!r} and no bundled dataset of that name; bundled: "
                            f"{list(DATASETS)}; for a file of your own use --data FILE --target COLUMN")
        try:
            paper_preset(dataset)
        except DataError:
            return cls.from_estimator_defaults(dataset, **overrides)
        return cls.from_preset(dataset, **overrides)

    @classmethod
    def from_table(cls, path: str | Path, target: str, **overrides) -> SweepConfig:
        """A user CSV or Parquet file (read by ``stableresnet.data.load_table``), with the estimator's defaults.

        The sweep is named after the file's stem and records its absolute path and SHA-256.
        """
        path = Path(path).resolve()
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        return cls.from_estimator_defaults(path.stem, data_file=str(path), target=target,
                                           data_sha256=file_sha256(path), **overrides)

    @classmethod
    def _with_overrides(cls, settings: dict, overrides: dict) -> SweepConfig:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown sweep setting(s) {sorted(unknown)}")
        settings.update({k: v for k, v in overrides.items() if v is not None})
        settings["blocks"] = tuple(settings["blocks"])
        settings["step_sizes"] = tuple(float(h) for h in settings["step_sizes"])
        return cls(**settings)

    def to_json(self) -> dict:
        record = {**dataclasses.asdict(self), "blocks": list(self.blocks), "step_sizes": list(self.step_sizes)}
        # Settings at the values they had before they existed are left out, so older folders still resume.
        defaults = (("integrator", "euler"), ("step_size_policy", "fixed"), ("robustness", False), ("levels", 1),
                    ("data_file", None), ("target", None), ("data_sha256", None), ("test_size", 0.2),
                    ("one_hot", False), ("init", DEFAULT_INIT))
        return {k: v for k, v in record.items() if (k, v) not in defaults}


def trial_seed(sweep_seed: int, trial: int) -> int:
    """The seed of trial t: shared by every block and h of that trial (paired design)."""
    return int(np.random.SeedSequence(sweep_seed, spawn_key=(trial,)).generate_state(1)[0])


def load_trial(config: SweepConfig, trial: int) -> Dataset:
    """Trial t's split of the sweep's data: the bundled set, or the user file, split with the trial's seed."""
    seed = trial_seed(config.seed, trial)
    if config.data_file is None:
        return load_dataset(config.dataset, seed=seed, test_size=config.test_size, one_hot=config.one_hot)
    return load_table(config.data_file, config.target, seed=seed, test_size=config.test_size, one_hot=config.one_hot)


@dataclass(frozen=True)
class Group:
    """A chunk of members of one block type, trained together."""

    block: str
    members: tuple[tuple[int, float], ...]  # (trial, h)

    @property
    def name(self) -> str:
        first, last = self.members[0], self.members[-1]
        return f"{self.block}-t{first[0]}h{first[1]:g}-t{last[0]}h{last[1]:g}"


def groups(config: SweepConfig) -> list[Group]:
    """Members in canonical order (block, trial, h), cut into groups."""
    result = []
    for block in config.blocks:
        members = [(trial, h) for trial in range(config.trials) for h in config.step_sizes]
        for start in range(0, len(members), config.members_per_group):
            result.append(Group(block, tuple(members[start : start + config.members_per_group])))
    return result


class TrialData:
    """The trials' splits laid side by side in one array, so members gather rows by index.

    Trials whose split is identical (an official split, as Adult's) share one copy. A data file
    whose SHA-256 is not the config's is refused: the results must be those of the recorded file.
    """

    def __init__(self, config: SweepConfig):
        if config.data_file is not None and Path(config.data_file).is_file():
            found = file_sha256(config.data_file)
            if found != config.data_sha256:
                raise DataError(f"{config.data_file} has changed since the sweep was set up (SHA-256 "
                                f"{config.data_sha256[:12]}… then, {found[:12]}… now); start the sweep again")
        blocks_X, blocks_y, self.train_rows, self.test_rows = [], [], {}, {}
        seen: list[tuple[Dataset, int]] = []
        offset = 0
        for trial in range(config.trials):
            data = load_trial(config, trial)
            match = next((start for other, start in seen if _same_split(other, data)), None)
            if match is None:
                match = offset
                seen.append((data, offset))
                blocks_X += [data.X_train, data.X_test]
                blocks_y += [data.y_train, data.y_test]
                offset += len(data.y_train) + len(data.y_test)
            n_train, n_test = len(data.y_train), len(data.y_test)
            self.train_rows[trial] = torch.arange(match, match + n_train)
            self.test_rows[trial] = torch.arange(match + n_train, match + n_train + n_test)
        self.X = torch.tensor(np.concatenate(blocks_X), dtype=torch.float32)
        self.y = torch.tensor(np.concatenate(blocks_y))
        self.n_features, self.n_classes = data.n_features, data.n_classes

    def rows(self, group: Group, split: str) -> torch.Tensor:
        table = self.train_rows if split == "train" else self.test_rows
        return torch.stack([table[trial] for trial, _ in group.members])


def _same_split(a: Dataset, b: Dataset) -> bool:
    return np.array_equal(a.X_train, b.X_train) and np.array_equal(a.y_train, b.y_train) and np.array_equal(
        a.X_test, b.X_test
    )


def run_group(
    config: SweepConfig, group: Group, data: TrialData, device: str = "cpu",
    on_epoch: Callable[[int, np.ndarray], None] | None = None, compile: bool | str = False,
    checkpoint: Checkpoint | None = None,
) -> pd.DataFrame:
    """Train one group's members together; one tidy row per member. ``compile``: through
    ``torch.compile`` (``TrainConfig.compile``: True, False or "auto"; equal to the eager engine to
    round-off); the rows say which engine trained them, and why.
    ``checkpoint``: where training saves its state between epochs and resumes from (one level only)."""
    started = time.perf_counter()
    seeds = [trial_seed(config.seed, trial) for trial, _ in group.members]
    model = build_network(config.network(group.block), data.n_features, data.n_classes, seeds,
                          [h for _, h in group.members], device)
    train_config = config.training().train_config(compile=compile)
    train_rows, test_rows = data.rows(group, "train"), data.rows(group, "test")
    model, result = fit_multilevel(model, data.X, data.y, train_config, config.levels, train_index=train_rows,
                                   on_epoch=on_epoch, checkpoint=checkpoint)
    train_metrics = evaluate(model, data.X, data.y, train_rows)
    test_metrics = evaluate(model, data.X, data.y, test_rows)
    robustness = _robustness(model, data, group, config.seed) if config.robustness else {}
    seconds = (time.perf_counter() - started + result.resumed_seconds) / len(group.members)
    return pd.DataFrame({
        "dataset": config.dataset, "block": group.block,
        "h": [h for _, h in group.members], "integrator": config.integrator,
        "step_size_policy": config.step_size_policy, "depth": config.depth, "width": model.width,
        "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.learning_rate,
        "trial": [trial for trial, _ in group.members], "seed": seeds,
        "train_accuracy": train_metrics["accuracy"], "train_loss": train_metrics["loss"],
        "test_accuracy": test_metrics["accuracy"], "test_loss": test_metrics["loss"],
        "diverged": result.diverged, "diverged_epoch": result.diverged_epoch,
        "block_h_mean": result.step_sizes.mean(axis=1), "block_h_min": result.step_sizes.min(axis=1),
        "seconds": seconds, "version": __version__, "compiled": result.compiled,
        "compile_reason": result.compile_reason, **robustness,
    })[COLUMNS + list(robustness)]


def _robustness(model: StableResNet, data: TrialData, group: Group, seed: int) -> dict[str, np.ndarray]:
    """Stability constant c, largest block amplification |eig ∂Φ_i/∂y| (|1 + hλ| for Euler), and
    accuracy clean, under noise σ = 0.1 and under FGSM/PGD ε = 0.1.

    Each member is measured on its own trial's test rows, by a model of only the members that
    share those rows (``select_members``): every member is analysed once.
    """
    from ..diagnostics import member_robustness

    trials = np.array([trial for trial, _ in group.members])
    columns = {name: np.full(len(trials), np.nan) for name in ROBUSTNESS_COLUMNS}
    by_rows: dict[tuple, list[int]] = {}  # trials sharing a split (Adult's official one) are measured together
    for index, trial in enumerate(trials):
        by_rows.setdefault(tuple(data.test_rows[int(trial)].tolist()), []).append(index)
    for rows, members in by_rows.items():
        rows = torch.tensor(rows)
        numbers = member_robustness(model.select_members(members), data.X[rows], data.y[rows],
                                    max_samples=SPECTRA_ROWS, accuracy_samples=ROBUSTNESS_ROWS, seed=seed)
        for name, values in columns.items():
            values[members] = numbers[name]
    return columns


class Sweep:
    """The sweep as the runner's experiment (``runner.execute``): one unit per group, one table.

    ``data`` is the trials' splits when already read (``TrialData``); a Ray worker, which is sent
    the sweep without them, reads them once per process.
    """

    tables = ("results",)

    def __init__(self, config: SweepConfig, data: TrialData | None = None):
        self.config, self.data = config, data

    def __reduce__(self):
        return Sweep, (self.config,)

    def units(self) -> list[Unit]:
        epochs = self.config.epochs * self.config.levels
        width = self.config.width or (self.data.n_features if self.data is not None else 0)  # None: the inputs'
        return [Unit(group.name, group.block, epochs, relative_cost(group), group,
                     len(group.members) * self.config.batch_size * width) for group in groups(self.config)]

    def run_unit(self, unit: Unit, context: UnitContext) -> dict[str, pd.DataFrame]:
        data = self.data if self.data is not None else _worker_data(self.config)
        return {"results": run_group(self.config, unit.payload, data, context.device, context.on_epoch,
                                     context.compile, context.checkpoint)}


@functools.lru_cache(maxsize=2)
def _worker_data(config: SweepConfig) -> TrialData:
    # A Ray worker keeps the (small) data of the sweep it serves across its tasks.
    return TrialData(config)


def sweep_store(directory: str | Path, config: SweepConfig) -> ResultStore:
    """A sweep's results folder: ``config.json``, one CSV per finished group in ``groups/``.

    A sweep on a file whose SHA-256 is not the one the folder began with is refused by name.
    """
    stored = Path(directory) / "config.json"
    if config.data_sha256 is not None and stored.is_file():
        then = json.loads(stored.read_text()).get("data_sha256")
        if then is not None and then != config.data_sha256:
            raise ConfigError(
                f"{config.data_file} has changed since the sweep in {str(directory)!r} began (SHA-256 "
                f"{then[:12]}… then, {config.data_sha256[:12]}… now); "
                "restore the file or use another --out folder")
    return ResultStore(directory, config.to_json(), "a sweep", Sweep.tables, units="groups")


def relative_cost(group: Group) -> int:
    """A group's training time in units of one plain member: a batch-norm step costs about twice a
    plain or shrinkage one (``benchmarks/profile_step.py``: Wine 11.2 against 6.2 ms)."""
    return len(group.members) * (2 if VECTOR_FIELDS[group.block].batch_normalized else 1)


def run_sweep(config: SweepConfig, directory: str | Path, options: RunOptions | None = None,
              **option_values) -> pd.DataFrame:
    """Run (or resume) the sweep into ``directory``; returns the full results table, also written to
    ``directory/results.csv`` in canonical order.

    ``options`` (or its fields as keywords: ``workers=2``, ``backend="ray"``, …) say how the
    groups train (`runner.RunOptions`); they are not part of the config, so a sweep may resume
    under others. A finished group is never trained again, and a group cut off mid-way resumes
    from the state its training saved (every 5 minutes, between epochs; local back-end).
    """
    options = run_options(options, option_values)
    experiment = Sweep(config, TrialData(config))  # reads, and so checks, every split before anything is written
    store = sweep_store(directory, config)
    table = execute(experiment, store, options)["results"]
    write_atomically(Path(directory) / "results.csv", lambda p: table.to_csv(p, index=False))
    return table
