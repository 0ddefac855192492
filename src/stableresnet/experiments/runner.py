"""How every experiment runs: the experiment lists its units and runs one; the runner does the rest.

An experiment (see `Experiment`) says *what*: its units in canonical order and how one unit trains
into tables. `execute` says *how*, the same for all of them: a results folder that refuses another
config (`ResultStore`), each finished unit's tables written atomically, a training checkpoint per
unit, resume (a finished unit never trains again), three back-ends chosen by `RunOptions` — in this
process one unit after another, ``workers`` threads of one torch thread each (costliest unit first;
by default one per core, with wide units alone on all of them), or Ray tasks — and one progress
protocol. The runner, not library code, sets torch's thread count.

Every unit is seeded by its experiment, so the tables are the same whichever back-end trained them
(the ``seconds`` column aside, which is wall time).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from ..compilation import check_setting
from ..errors import ConfigError
from ..files import write_atomically
from ..train import Checkpoint

BACKENDS = ("local", "ray")

OnEpoch = Callable[[int, np.ndarray], None]

# A unit whose training step holds at least this many activations (members × batch × width) gains
# from torch's threads: Adult's 100 × 100 × 14 trained an epoch 1.4-2× faster on 2 threads than on
# 1, Wine's 100 × 10 × 13 no faster. By default such a unit trains alone on all threads, the narrower
# ones side by side on one thread each.
WIDE_UNIT = 50_000


@dataclass(frozen=True)
class Unit:
    """One piece of an experiment that trains on its own and is saved on its own."""

    name: str  # file stem of its records; unique within the experiment
    label: str  # what progress lines call it
    epochs: int  # epochs its training reports to ``on_epoch``
    cost: float = 1.0  # relative training time: workers start the costliest first
    payload: Any = None  # the experiment's own description of the unit (a sweep group, a drift block)
    step_activations: int = 0  # values in one training step's activations (members × batch × width): WIDE_UNIT


# The unit a worker thread is training (None elsewhere), for whoever hears from inside its training
# (the CLI's log lines take each unit's engine choice from `compilation.logger` by it).
RUNNING_UNIT: ContextVar[Unit | None] = ContextVar("running_unit", default=None)

# progress(unit, index, total) may return the unit's ``on_epoch(epoch, loss_per_member)``. It is called
# as each unit starts when units train one after another in this process, else as each finishes
# (``RunOptions.reports_when_done``).
Progress = Callable[[Unit, int, int], "OnEpoch | None"]


@dataclass(frozen=True)
class RunOptions:
    """How an experiment runs, never what it computes: a folder resumes under other options.

    ``compile``: True trains through ``torch.compile`` (equal to the eager engine to round-off), False
    eagerly, "auto" each unit's training where it pays (``TrainConfig.compile``, `compilation.choose`;
    the records say which engine trained each number, and why). ``workers`` > 1 trains that many
    units at once in threads of one torch thread each (local back-end); None (the default), one per
    core this process may use (`usable_cores`), a unit of ``WIDE_UNIT`` activations or more alone
    on all threads. ``backend="ray"`` runs each unit as a Ray task on the cluster at ``address`` or on
    a local Ray. ``threads`` sets torch's thread count while units train in this process one after
    another (None: leave it).
    """

    device: str = "cpu"
    compile: bool | str = "auto"
    workers: int | None = None
    backend: str = "local"
    address: str | None = None
    threads: int | None = None
    progress: Progress | None = field(default=None, compare=False)

    def __post_init__(self):
        check_setting(self.compile)
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; expected one of {list(BACKENDS)}")
        for name in ("workers", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"--{name} must be an integer ≥ 1; got {value!r}")
        if self.workers is not None and self.workers > 1 and self.backend != "local":
            raise ConfigError(f"--workers is for the local backend; Ray places its own tasks (got --workers {self.workers})")
        if self.backend == "ray":
            require_ray()  # before anything is written

    @property
    def worker_count(self) -> int:
        """Units trained at once on this machine: ``workers``, else one per usable core (local back-end)."""
        if self.workers is not None:
            return self.workers
        return usable_cores() if self.backend == "local" else 1

    @property
    def reports_when_done(self) -> bool:
        """Whether ``progress`` hears of units as they finish (workers, Ray) rather than as they start."""
        return self.worker_count > 1 or self.backend == "ray"


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (as a container or ``taskset`` limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def run_options(options: RunOptions | None, values: dict) -> RunOptions:
    """``options``, or a `RunOptions` of ``values`` (its fields as keywords), for the ``run_*`` functions."""
    if options is not None and values:
        raise ConfigError(f"give run options as one RunOptions or as keywords, not both (got {sorted(values)} too)")
    return options if options is not None else RunOptions(**values)


@dataclass(frozen=True)
class UnitContext:
    """What one unit's training is handed by the runner."""

    device: str = "cpu"
    compile: bool | str = "auto"
    on_epoch: OnEpoch | None = None
    checkpoint: Checkpoint | None = None  # where training saves its state between epochs and resumes from


class Experiment(Protocol):
    """What an experiment declares; `execute` does the rest. It must pickle (Ray sends it to workers)."""

    def units(self) -> list[Unit]:
        """Every unit, in the canonical order of the assembled tables."""

    def run_unit(self, unit: Unit, context: UnitContext) -> dict[str, pd.DataFrame]:
        """Train one unit; its records by name (a `ResultStore`'s tables), one row per member."""


class Store(Protocol):
    """Where an experiment's records live (`ResultStore`, or an experiment's own layout)."""

    folder: Path

    def is_done(self, unit: Unit) -> bool: ...

    def checkpoint(self, unit: Unit) -> Checkpoint | None: ...

    def save(self, unit: Unit, records: dict) -> None: ...

    def load(self, units: list[Unit]) -> dict: ...


class RunIncomplete(RuntimeError):
    """Some units failed (a Ray worker died); the finished ones are saved and a rerun resumes."""


def keep_config(path: Path, wanted: dict, folder: Path, what: str) -> None:
    """Write a resumable run's config to ``path``, or check that the one there is the same.

    A different stored config is a `ConfigError` naming each differing key, so a rerun never
    mixes results of two settings in one folder.
    """
    if not path.exists():
        write_atomically(path, lambda p: p.write_text(json.dumps(wanted, indent=2) + "\n"))
        return
    stored = json.loads(path.read_text())
    differences = [f"{k}: {stored.get(k)!r} there, {v!r} here" for k, v in wanted.items() if stored.get(k) != v]
    if differences:
        raise ConfigError(f"{str(folder)!r} holds {what} with another config ({'; '.join(differences)}); "
                          "use another --out folder or the same settings")


class ResultStore:
    """A results folder: the config it holds (``config.json``) and each finished unit's tables.

    A unit's tables go to ``units/<unit>.csv`` when the experiment writes one table, else to
    ``units/<unit>-<table>.csv``, each atomically and in the order of ``tables``: the last one's file
    marks the unit done. Tables are always read back from their files, so a resumed run returns
    exactly what an uninterrupted one does.
    """

    checkpoint_seconds = 300.0  # how often a running unit saves its training state

    def __init__(self, folder: str | Path, config: dict, what: str, tables: tuple[str, ...],
                 units: str = "units", config_file: str | Path = "config.json"):
        self.folder = Path(folder)
        self.units = self.folder / units
        self.tables = tables
        try:
            self.units.mkdir(parents=True, exist_ok=True)
            probe = self.units / f".write-probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as error:
            raise ConfigError(f"cannot write results to {str(self.folder)!r}: {error.strerror}") from None
        keep_config(self.folder / config_file, config, self.folder, what)

    def paths(self, unit: Unit) -> dict[str, Path]:
        if len(self.tables) == 1:
            return {self.tables[0]: self.units / f"{unit.name}.csv"}
        return {table: self.units / f"{unit.name}-{table}.csv" for table in self.tables}

    def is_done(self, unit: Unit) -> bool:
        return all(path.exists() for path in self.paths(unit).values())

    def checkpoint(self, unit: Unit) -> Checkpoint:
        """Where a unit's training keeps its state until its tables are saved (``train.Checkpoint``)."""
        return Checkpoint(self.units / f"{unit.name}.checkpoint", self.checkpoint_seconds)

    def save(self, unit: Unit, tables: dict[str, pd.DataFrame]) -> None:
        """Keep the unit's tables; its training state is then no longer needed."""
        for name, path in self.paths(unit).items():
            write_atomically(path, lambda p, table=tables[name]: table.to_csv(p, index=False))
        self.checkpoint(unit).path.unlink(missing_ok=True)

    def load(self, units: list[Unit]) -> dict[str, pd.DataFrame]:
        """Each table of ``units``, concatenated in their order."""
        return {name: pd.concat([pd.read_csv(self.paths(unit)[name]) for unit in units], ignore_index=True)
                for name in self.tables}


def execute(experiment: Experiment, store: Store, options: RunOptions = RunOptions()) -> dict:
    """Train every unit of ``experiment`` not yet in ``store``; returns all its records from the store."""
    units = experiment.units()
    pending = [unit for unit in units if not store.is_done(unit)]
    if options.backend == "ray" and pending:
        failed = _on_ray(experiment, pending, store, options)
        if failed:
            raise RunIncomplete(
                f"{len(failed)} of {len(pending)} units failed on Ray workers ({', '.join(u.name for u in failed)}); "
                f"the other results are saved in {str(store.folder)!r}: run the same command again to resume")
    elif options.worker_count > 1 and len(pending) > 1:
        wide = [unit for unit in pending if options.workers is None and unit.step_activations >= WIDE_UNIT]
        narrow = [unit for unit in pending if unit not in wide]
        _one_after_another(experiment, wide, store, options, total=len(pending))
        if len(narrow) > 1:
            _in_threads(experiment, narrow, store, options, first=len(wide), total=len(pending))
        else:
            _one_after_another(experiment, narrow, store, options, first=len(wide), total=len(pending))
    else:
        _one_after_another(experiment, pending, store, options)
    return store.load(units)


def _one_after_another(experiment: Experiment, pending: list[Unit], store: Store, options: RunOptions,
                       first: int = 0, total: int | None = None) -> None:
    """Train ``pending`` in turn; progress counts them ``first`` + 1, … of ``total`` (default: of them)."""
    threads = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    try:
        for index, unit in enumerate(pending, first):
            on_epoch = options.progress(unit, index, total or len(pending)) if options.progress else None
            context = UnitContext(options.device, options.compile, on_epoch, store.checkpoint(unit))
            store.save(unit, experiment.run_unit(unit, context))
    finally:
        torch.set_num_threads(threads)


class _UnitStopped(Exception):
    """Raised in a worker thread at an epoch's end once the run has been stopped."""


def _in_threads(experiment: Experiment, pending: list[Unit], store: Store, options: RunOptions,
                first: int = 0, total: int | None = None) -> None:
    """Train ``pending`` ``options.worker_count`` units at a time, costliest first, in threads of one torch thread
    each; progress counts them ``first`` + 1, … of ``total`` (default: of them).

    One torch thread per unit puts the units, not one unit's small ops, on the cores: on a 2-core
    machine two Wine sweep groups at once ran 1.35-1.5x faster than one after another on 2 threads.
    The engine's numbers do not depend on torch's thread count, so every unit trains to the same
    bits. This thread alone writes the files. On a stop (Ctrl-C, SIGTERM, an error) each running
    unit stops at its next epoch's end (a second stop waits for that too), keeping the state its
    training last saved.
    """
    stop = threading.Event()

    def train(unit: Unit) -> dict[str, pd.DataFrame]:
        RUNNING_UNIT.set(unit)

        def on_epoch(epoch, loss):
            if stop.is_set():
                raise _UnitStopped(unit.name)

        return experiment.run_unit(unit, UnitContext(options.device, options.compile, on_epoch,
                                                     store.checkpoint(unit)))

    ordered = sorted(pending, key=lambda unit: unit.cost, reverse=True)  # stable: canonical order among equals
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(min(options.worker_count, len(ordered))) as pool:
            futures = {pool.submit(train, unit): unit for unit in ordered}
            try:
                for index, future in enumerate(as_completed(futures), first):
                    store.save(futures[future], future.result())
                    if options.progress:
                        options.progress(futures[future], index, total or len(ordered))
            except BaseException:
                stop.set()
                for future in futures:
                    future.cancel()  # those not yet started
                while not all(future.done() for future in futures):
                    try:  # a thread still in torch at exit aborts the interpreter, so a second stop waits too
                        wait(futures)
                    except KeyboardInterrupt:
                        pass
                raise
    finally:
        torch.set_num_threads(threads)


def require_ray():
    """Import Ray, or explain how to install it (``pip install 'stableresnet[ray]'``)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray, which is not installed: pip install 'stableresnet[ray]'") from None
    return ray


def run_unit(experiment: Experiment, unit: Unit, device: str, compile: bool | str) -> dict[str, pd.DataFrame]:
    """The body of one Ray task: train one unit, return its tables to the driver."""
    return experiment.run_unit(unit, UnitContext(device, compile))


def _on_ray(experiment: Experiment, pending: list[Unit], store: Store, options: RunOptions) -> list[Unit]:
    """Run ``pending`` as Ray tasks, saving each as it completes; returns the units that failed.

    Without an address a local Ray is started for the run and shut down after it. Each task asks
    for a GPU when the run is on ``cuda``. A task is not retried: a worker that dies loses only its
    own unit, the others are saved as they finish (the driver is the only writer), and running
    the same command again resumes the missing units. The experiment travels to the workers as is
    (a sweep on a user file: its absolute path and SHA-256, checked there before training).
    """
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        address = {"address": options.address} if options.address else {"_node_ip_address": "127.0.0.1"}
        ray.init(include_dashboard=False, log_to_driver=False, **address)
    try:
        task = ray.remote(num_gpus=1 if options.device == "cuda" else 0, max_retries=0)(run_unit)
        futures = {task.remote(experiment, unit, options.device, options.compile): unit for unit in pending}
        failed, finished = [], 0
        while futures:
            (done,), _ = ray.wait(list(futures), num_returns=1)
            unit = futures.pop(done)
            try:
                tables = ray.get(done)
            except ray.exceptions.RayError:
                failed.append(unit)
                continue
            store.save(unit, tables)
            if options.progress:
                options.progress(unit, finished, len(pending))
            finished += 1
        return failed
    finally:
        if started_here:
            ray.shutdown()
