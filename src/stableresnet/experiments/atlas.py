"""The claims atlas: every picture statement (Figures 2-7) over a grid of set-ups, many seeds each.

The paper does not give the data generator's noise, the optimiser, the learning rate, the
epochs or the input scaling behind its pictures, and it used Keras, not PyTorch. The atlas asks
which of these choices its statements depend on. A *set-up* is today's picture set-up (the
``reproduce`` settings of figures 2-7 at one scale) with some axes moved to another level:

- data: circles with noise σ = 0, 0.05, 0.1; moons; spirals (σ = 0.1);
- inputs: standardised or raw;
- optimiser: Adam at 1e-3 or 1e-2, SGD at 1e-2 or 1e-1;
- epochs: 0.1×, 1× and 3× today's (10, 100, 300 at the paper scale), read off snapshots of one
  3× run (``run_propagation_seeds(snapshot_epochs=...)``), not trained three times;
- framework: PyTorch's defaults or Keras' (Adam ε 1e-7, batch-norm momentum 0.01 in PyTorch's
  sense (0.99 in Keras') and ε 1e-3);
- init: the blocks' initial weights (``stableresnet.init``): Glorot-uniform (today), U(±0.05),
  N(0, 0.05²), Glorot × 0.5, × 0.25, × 0.1, depth-scaled; and per block family: Glorot for the
  plain and batch-norm blocks with U(±0.05) for the shrinkage block (what Keras gave a ``Dense``
  block and a custom tied-weight layer of its time: ``keras-family``), and the reverse;
- test points: 500 (today), 200, 100;
- bn-placement (Figures 6, 7): batch norm at the branch's end (today, ``blocks.BatchNorm``) or before
  each activation (``blocks.PreActivationBatchNorm``);
- batch: the mini-batch size, 10, 32 (today), 100 (batch norm's statistics depend on it);
- reader: how "accuracy at layer i" is read (``propagation.READERS``): the final head or a
  per-layer logistic probe, on the test or the training points, "1.0" as ≥ 1.0 or ≥ 0.995. Like
  the epochs, a reader costs no training: it is read off the run of the same set-up.

Each network's signal before training (``diagnostics.initial_signal``) is recorded, and a set-up
is marked *collapsed* (*exploded*) where the median network of some figure starts with its
features' largest entry shrunk below 1e-3 (grown above 1e3) by its blocks: such a network has
no usable gradient, so its statements say nothing about the block, only about its start.

Not the product of the axes: each axis is moved alone (``one_axis_setups``), then pairs of the
single changes that raised the most statements' hold-rates are added (`pairs_to_add`). In each
set-up every figure trains its seeds as one ensemble; each statement of ``claims.CLAIMS`` is
checked per seed by the claim's own check and rated as a hold-rate k/N with its Wilson interval
and verdict (``stableresnet.stats``). `choose_default` picks the picture figures' default from
the table by a stated rule.

Layout of the output folder (resumable: finished figures are reused, a folder holding another
config is refused)::

    DIR/config.json                      the atlas config
    DIR/setups/<set-up>/<figN>.json      each figure's per-seed numbers in that set-up
    DIR/atlas.csv                        set-up × statement: k, N, hold-rate, interval, verdict
    DIR/choice.json                      the chosen default, the reason, unmet statements, time
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import write_atomically
from ..errors import ConfigError
from ..diagnostics import COLLAPSED_BELOW, EXPLODED_ABOVE
from .claims import CLAIMS, evaluate_claims
from .propagation import (DEFAULT_READER, READERS, PropagationConfig, PropagationSeeds, figure_preset, reader,
                          run_propagation_seeds)
from .pictures import member_numbers, propagation_config
from .specs import read_specs
from .runner import RunOptions, Unit, UnitContext, execute, keep_config, run_options

FIGURES = ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7")
SCALES = ("quick", "paper")
# Each axis: level name -> the propagation settings it sets. The level equal to today's set-up
# is found by comparison, so these tables name every value in full.
AXES = {
    "data": {
        "circles-0": {"data": "circles", "noise": 0.0},
        "circles-0.05": {"data": "circles", "noise": 0.05},
        "circles-0.1": {"data": "circles", "noise": 0.1},
        "moons": {"data": "moons", "noise": 0.1},
        "spirals": {"data": "spirals", "noise": 0.1},
    },
    "inputs": {"standardised": {"standardize": True}, "raw": {"standardize": False}},
    "optimiser": {
        "adam-1e-3": {"optimizer": "adam", "learning_rate": 1e-3},
        "adam-1e-2": {"optimizer": "adam", "learning_rate": 1e-2},
        "sgd-1e-2": {"optimizer": "sgd", "learning_rate": 1e-2},
        "sgd-1e-1": {"optimizer": "sgd", "learning_rate": 1e-1},
    },
    "framework": {
        "pytorch": {"adam_epsilon": 1e-8, "batch_norm_momentum": 0.1, "batch_norm_eps": 1e-5},
        "keras": {"adam_epsilon": 1e-7, "batch_norm_momentum": 0.01, "batch_norm_eps": 1e-3},
    },
    # A level may give the init per block family (a table keyed by block), resolved per figure.
    "init": {
        "glorot": {"init": "glorot"},
        "uniform-0.05": {"init": "uniform:0.05"},
        "normal-0.05": {"init": "normal:0.05"},
        "glorot-x0.5": {"init": "glorot:0.5"},
        "glorot-x0.25": {"init": "glorot:0.25"},
        "glorot-x0.1": {"init": "glorot:0.1"},
        "depth-scaled": {"init": "depth-scaled"},
        "keras-family": {"init": {"plain": "glorot", "batchnorm": "glorot", "shrinkage": "uniform:0.05"}},
        "keras-family-reverse": {"init": {"plain": "uniform:0.05", "batchnorm": "uniform:0.05", "shrinkage": "glorot"}},
    },
    "test-points": {"500": {"n_test": 500}, "200": {"n_test": 200}, "100": {"n_test": 100}},
    # Where batch norm sits: at the branch's end (the paper's block) or before each activation; the
    # other pictures keep their block.
    "bn-placement": {placement: {"block": {"plain": "plain", "shrinkage": "shrinkage", "batchnorm": block}}
                     for placement, block in (("branch-end", "batchnorm"), ("pre-activation", "batchnorm-preact"))},
    "batch": {"10": {"batch_size": 10}, "32": {"batch_size": 32}, "100": {"batch_size": 100}},
    "reader": {key: {"reader": key} for key in READERS},
}
# The levels the paper states: its Figure 1 data are two circles (noise not given) and it used Keras.
# On the axes it is silent about, today's level stands in for the paper's (``paper_distance``).
PAPER_LEVELS = {"data": ("circles-0", "circles-0.05", "circles-0.1"), "framework": ("keras",)}
EPOCHS_AXIS = "epochs"
EPOCH_FACTORS = (0.1, 1.0, 3.0)
READER_AXIS = "reader"
AXIS_ORDER = ("data", "inputs", "optimiser", EPOCHS_AXIS, "framework", "init", "test-points", "batch", "bn-placement",
              READER_AXIS)
# Axes that change no training: their set-ups are read off the run of the set-up without them.
READ_ONLY_AXES = (EPOCHS_AXIS, READER_AXIS)
SHIPPED_ATLAS = Path(__file__).with_name("atlas-paper.csv")


def _statements() -> list[tuple[str, object]]:
    """(id, claim) of every picture statement, ids "fig2.1", "fig2.2", "fig3.1", ... in ``CLAIMS`` order."""
    counts, result = {}, []
    for claim in CLAIMS:
        if claim.figure in FIGURES:
            counts[claim.figure] = counts.get(claim.figure, 0) + 1
            result.append((f"{claim.figure}.{counts[claim.figure]}", claim))
    return result


STATEMENTS = _statements()


@dataclass(frozen=True)
class AtlasConfig:
    """What an atlas runs: each figure's settings of today's set-up (``reproduce``'s propagation
    settings: figure, seeds, epochs, compare_depth, ...), the axes and epoch factors, and how many
    single changes the pairs are drawn from (``pair_from``: 2 gives one pair, 3 three)."""

    figures: dict
    scale: str = "custom"
    axes: dict = field(default_factory=lambda: AXES)
    epoch_factors: tuple = EPOCH_FACTORS
    pair_from: int = 2

    def __post_init__(self):
        missing = [figure for figure in FIGURES if figure not in self.figures]
        if missing:
            raise ConfigError(f"an atlas needs the settings of every picture figure; {missing} missing")
        if 1.0 not in [float(f) for f in self.epoch_factors] or any(not f > 0 for f in self.epoch_factors):
            raise ConfigError(f"epoch factors must be > 0 and include 1 (today's epochs); got {self.epoch_factors}")
        if isinstance(self.pair_from, bool) or not isinstance(self.pair_from, int) or self.pair_from < 0:
            raise ConfigError(f"pair_from must be an integer ≥ 0; got {self.pair_from!r}")
        for figure in FIGURES:  # bad settings fail here, before anything runs
            propagation_config(self.figures[figure])

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def atlas_config(scale: str, seeds: int | None = None) -> AtlasConfig:
    """The atlas around today's picture set-up at ``scale``: the ``reproduce`` settings of figures
    2-7 (5 seeds at quick, 10 at paper), ``seeds`` overriding every figure's; pairs from the best
    2 single changes at quick (one pair), 3 at paper (three pairs)."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; expected one of {list(SCALES)}")
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
        raise ConfigError(f"--seeds must be an integer ≥ 1 (networks per figure and set-up); got {seeds!r}")
    specs = {experiment.figure: experiment for experiment in read_specs(scale)}
    figures = {}
    for figure in FIGURES:
        if figure not in specs or specs[figure].kind != "propagation":
            raise ConfigError(f"reproduce.toml has no propagation experiment {figure!r} to vary")
        # The atlas varies around the settings a picture has before any chosen set-up is applied.
        settings = {k: v for k, v in specs[figure].settings.items() if k not in ("frames", "setup")}
        figures[figure] = {**settings, **({"seeds": seeds} if seeds is not None else {})}
    return AtlasConfig(figures, scale=scale, pair_from=2 if scale == "quick" else 3)


# --------------------------------------------------------------------------------------
# Set-ups.

@dataclass(frozen=True)
class Setup:
    """Today's set-up with ``choices`` ((axis, level) pairs, in ``AXIS_ORDER``) moved."""

    choices: tuple = ()

    @property
    def key(self) -> str:
        """"base", "data=moons" or "data=moons+framework=keras" (also its folder name)."""
        return "+".join(f"{axis}={level}" for axis, level in self.choices) or "base"

    @property
    def epoch_factor(self) -> float:
        return next((float(level[1:]) for axis, level in self.choices if axis == EPOCHS_AXIS), 1.0)


def _epoch_level(factor: float) -> str:
    return f"x{factor:g}"


def _levels(axes: dict = AXES, epoch_factors: tuple = EPOCH_FACTORS) -> dict[str, list[str]]:
    return {axis: list(axes[axis]) if axis != EPOCHS_AXIS else [_epoch_level(f) for f in epoch_factors]
            for axis in AXIS_ORDER if axis in axes or axis == EPOCHS_AXIS}


def _config_levels(config: AtlasConfig) -> dict[str, list[str]]:
    return _levels(config.axes, config.epoch_factors)


def _apply(settings: dict, choices, axes: dict) -> dict:
    """``settings`` with each (axis, level) of ``choices`` applied: a level sets its values, the
    epochs level scales today's epochs (at least 1)."""
    result = dict(settings)
    factor = 1.0
    for axis, level in choices:
        if axis == EPOCHS_AXIS:
            factor = float(level[1:])
        else:
            result.update(axes[axis][level])
    result["epochs"] = max(1, round(factor * propagation_config(settings).epochs))
    # A value given per block family (a table keyed by block) takes the entry of this figure's block.
    if any(isinstance(value, dict) for value in result.values()):
        family = _family_of(settings)
        for key, value in result.items():
            if isinstance(value, dict):
                if family not in value:
                    raise ConfigError(f"{key} is given per block family {sorted(value)}; this picture's block "
                                      f"{family!r} has no entry")
                result[key] = value[family]
    return result


def _family_of(settings: dict) -> str:
    """The block family of a picture's settings: its block (or its figure's), pre-activation batch norm as batch norm."""
    if isinstance(settings.get("block"), str):
        block = settings["block"]
    elif "figure" in settings:
        block = figure_preset(settings["figure"]).block
    else:
        block = PropagationConfig.block
    return "batchnorm" if block == "batchnorm-preact" else block


def figure_settings(config: AtlasConfig, setup: Setup, figure: str) -> dict:
    """The propagation settings of ``figure`` in ``setup`` (epochs scaled, at least 1)."""
    return _apply(config.figures[figure], setup.choices, config.axes)


def setup_settings(settings: dict, key: str) -> dict:
    """A picture's propagation settings moved to the atlas set-up ``key`` ("base", "framework=keras",
    "data=moons+epochs=x3"), with the atlas' axes (``AXES``, ``EPOCH_FACTORS``): how ``reproduce``
    trains a picture figure in the set-up the atlas chose (its ``setup`` setting)."""
    if not isinstance(key, str):
        raise ConfigError(f"setup must be a set-up key such as 'framework=keras'; got {key!r}")
    return _apply(settings, _parse_choices(key, _levels()), AXES)


def _is_today(config: AtlasConfig, axis: str, level: str) -> bool:
    """Does this level leave every figure's resolved settings as they are today?"""
    if axis == EPOCHS_AXIS:
        return float(level[1:]) == 1.0

    def resolved(settings):
        return propagation_config(settings).resolved(), settings.get("reader", DEFAULT_READER)

    return all(resolved(_apply(config.figures[f], [(axis, level)], config.axes)) == resolved(config.figures[f])
               for f in FIGURES)


def one_axis_setups(config: AtlasConfig) -> list[Setup]:
    """Today's set-up, then each axis moved alone to each of its other levels, in ``AXIS_ORDER``."""
    setups = [Setup()]
    for axis, levels in _config_levels(config).items():
        setups += [Setup(((axis, level),)) for level in levels if not _is_today(config, axis, level)]
    return setups


def parse_setup(config: AtlasConfig, key: str) -> Setup:
    """A set-up from its key ("base", "optimiser=sgd-1e-1", "data=moons+framework=keras"); a
    `ConfigError` names an unknown axis or level, or an axis given twice."""
    choices = _parse_choices(key, _config_levels(config))
    choices = [(axis, level) for axis, level in choices if not _is_today(config, axis, level)]
    return Setup(tuple(sorted(choices, key=lambda c: AXIS_ORDER.index(c[0]))))


def _parse_choices(key: str, levels: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The (axis, level) pairs of a set-up key; a `ConfigError` names an unknown axis or level, or an axis twice."""
    key = key.strip()
    if key == "base":
        return []
    choices = []
    for part in key.split("+"):
        axis, _, level = part.partition("=")
        if axis not in levels or level not in levels[axis]:
            known = ", ".join(f"{a}={'|'.join(ls)}" for a, ls in levels.items())
            raise ConfigError(f"unknown set-up key {part!r} in {key!r}; expected base or AXIS=LEVEL joined by +, "
                              f"from: {known}")
        choices.append((axis, level))
    axes = [axis for axis, _ in choices]
    if len(set(axes)) != len(axes):
        raise ConfigError(f"set-up {key!r} moves an axis twice")
    return choices


def paper_distance(config: AtlasConfig, setup: Setup) -> int:
    """How many axes the paper states (``PAPER_LEVELS``) the set-up sits off the paper's level on.

    An axis the set-up does not move is at today's level: today's set-up is PyTorch, so it is one
    off the paper, and ``framework=keras`` is none off.
    """
    moved = dict(setup.choices)
    distance = 0
    for axis, stated in PAPER_LEVELS.items():
        level = moved.get(axis) or next(level for level in config.axes[axis] if _is_today(config, axis, level))
        distance += level not in stated
    return distance


def _order(config: AtlasConfig, setup: Setup) -> tuple:
    """Sort key: fewer changes first, then axis and level order."""
    levels = _config_levels(config)
    return len(setup.choices), [(AXIS_ORDER.index(axis), levels[axis].index(level)) for axis, level in setup.choices]


# --------------------------------------------------------------------------------------
# Running.

def _runs(config: AtlasConfig, setups: list[Setup]) -> list[tuple[Setup, list[Setup]]]:
    """Group set-ups into trainings: (set-up trained, set-ups read off its epoch snapshots).

    Set-ups that differ only in their epochs and reader levels share one run at the largest factor.
    """
    groups: dict[tuple, list[Setup]] = {}
    for setup in setups:
        rest = tuple(c for c in setup.choices if c[0] not in READ_ONLY_AXES)
        groups.setdefault(rest, []).append(setup)
    return [(max(members, key=lambda s: s.epoch_factor), sorted(members, key=lambda s: s.epoch_factor))
            for members in groups.values()]


def _record_path(out: Path, setup: Setup, figure: str) -> Path:
    return out / "setups" / setup.key / f"{figure}.json"


def _run_figure(config: AtlasConfig, trained: Setup, read: list[Setup], figure: str, device: str,
                on_epoch, compile: bool | str = False) -> tuple[dict[str, list[dict]], PropagationSeeds]:
    """Train ``figure`` in ``trained``'s set-up once; each set-up of ``read``'s per-seed numbers, and
    the trained set-up's records."""
    settings = figure_settings(config, trained, figure)
    propagation = propagation_config(settings)
    epochs = {setup.key: figure_settings(config, setup, figure)["epochs"] for setup in read}
    readers = {setup.key: figure_settings(config, setup, figure).get("reader", DEFAULT_READER) for setup in read}
    snapshots = {e for e in epochs.values() if e < propagation.epochs}
    # The per-layer probes are most of a recording's cost: fitted only where a reader reads them.
    probe = any(reader(key).needs_probe for key in readers.values())
    records = run_propagation_seeds(propagation, device=device, on_epoch=on_epoch, snapshot_epochs=snapshots,
                                    probe=probe, compile=compile)
    compare_depth = settings.get("compare_depth")
    twin = None
    if compare_depth is not None:
        twin = run_propagation_seeds(dataclasses.replace(propagation, depth=compare_depth), device=device,
                                     snapshot_epochs=snapshots, probe=False, compile=compile)
    result = {}
    for key, epoch in epochs.items():
        members = records.members if epoch == propagation.epochs else records.snapshots[epoch]
        numbers = [member_numbers(member, readers[key]) for member in members]
        if twin is not None:
            others = twin.members if epoch == propagation.epochs else twin.snapshots[epoch]
            for row, other in zip(numbers, others):
                row["compare_depth"], row["compare_depth_test_accuracy"] = compare_depth, other.test_accuracy
        result[key] = numbers
    return result, records


class Atlas:
    """Some set-ups of the atlas as the runner's experiment (``runner.execute``): one unit per (set-up
    trained, figure), which also yields the set-ups read off its snapshots (``_runs``)."""

    def __init__(self, config: AtlasConfig, setups: list[Setup]):
        self.config, self.setups = config, setups

    def units(self) -> list[Unit]:
        units = []
        for trained, read in _runs(self.config, self.setups):
            for figure in FIGURES:
                settings = figure_settings(self.config, trained, figure)
                propagation = propagation_config(settings)
                snapshots = [s.key for s in read if s != trained]
                label = f"{trained.key}: {figure}" + (f" (snapshots {', '.join(snapshots)})" if snapshots else "")
                # epochs × depth, the twin depth included: a rough training time, to start the longest first
                cost = propagation.epochs * (propagation.depth + (settings.get("compare_depth") or 0))
                units.append(Unit(f"{trained.key}-{figure}", label, propagation.epochs * propagation.levels, cost,
                                  (trained, tuple(read), figure)))
        return units

    def run_unit(self, unit: Unit, context: UnitContext) -> dict[str, dict]:
        """Each set-up's record of the unit's figure, by set-up key; a snapshot costs nothing beyond its run."""
        trained, read, figure = unit.payload
        started = time.perf_counter()
        numbers, records = _run_figure(self.config, trained, list(read), figure, context.device, context.on_epoch,
                                       context.compile)
        seconds = time.perf_counter() - started
        return {setup.key: {"setup": setup.key, "figure": figure,
                            "settings": figure_settings(self.config, setup, figure), "members": numbers[setup.key],
                            "seconds": round(seconds, 2) if setup == trained else 0.0, "trained_in": trained.key,
                            "compiled": records.compiled, "compile_reason": records.compile_reason}
                for setup in read}


class AtlasStore:
    """The atlas folder as the runner's store: ``setups/<set-up>/<figN>.json``, one file per set-up
    and figure, written atomically; a unit is done when every set-up it yields has its file."""

    def __init__(self, out: Path):
        self.folder = out

    def is_done(self, unit: Unit) -> bool:
        _, read, figure = unit.payload
        return all(_record_path(self.folder, setup, figure).exists() for setup in read)

    def checkpoint(self, unit: Unit) -> None:
        return None  # a figure's run is short: it is trained again whole

    def save(self, unit: Unit, records: dict[str, dict]) -> None:
        _, read, figure = unit.payload
        for setup in read:
            path = _record_path(self.folder, setup, figure)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, lambda p, r=records[setup.key]: p.write_text(json.dumps(r, indent=1) + "\n"))

    def load(self, units: list[Unit]) -> dict:
        return {}  # the table is read from the record files (``atlas_table``)


# --------------------------------------------------------------------------------------
# The table, the pairs and the choice: from the record files alone.

def atlas_table(config: AtlasConfig, out: Path) -> pd.DataFrame:
    """One row per finished set-up and picture statement, set-ups in atlas order.

    Columns: setup, axis ("today", the axis moved, or "pair"), changes (number of axes moved),
    statement, figure, paper, measured, k, n, hold_rate, ci_low, ci_high, verdict, seconds
    (the set-up's training time, over its figures), nonfinite and networks (how many of the
    set-up's trained networks, over all figures, have non-finite features at some layer),
    paper_distance (`paper_distance`), collapsed and exploded (how many of its figures' median
    networks start collapsed or exploded, `initial_state`) and start (those figures with their
    median scale ratio at initialisation, "" when none); figure_nonfinite and figure_start are the
    same for the statement's own figure alone (its overflowed networks; "ok", "collapsed", "exploded"
    or "" where not recorded), what `choose_by_family` judges a block family by.
    """
    folder = Path(out) / "setups"
    setups = []
    for directory in sorted(folder.iterdir()) if folder.is_dir() else []:
        if all((directory / f"{figure}.json").exists() for figure in FIGURES):
            setups.append(parse_setup(config, directory.name))
    rows = []
    ids = {(claim.figure, claim.paper): sid for sid, claim in STATEMENTS}
    for setup in sorted(setups, key=lambda s: _order(config, s)):
        records = [json.loads(_record_path(out, setup, figure).read_text()) for figure in FIGURES]
        seconds = sum(record["seconds"] for record in records)
        networks = [member for record in records for member in record["members"]]
        nonfinite = sum(member["first_nonfinite_layer"] >= 0 for member in networks)
        start = initial_state(records)
        figure_states = start.pop("figures")
        figure_nonfinite = {record["figure"]: sum(m["first_nonfinite_layer"] >= 0 for m in record["members"])
                            for record in records}
        claims = evaluate_claims(records, out)
        axis = "today" if not setup.choices else setup.choices[0][0] if len(setup.choices) == 1 else "pair"
        for claim in claims.itertuples():
            if (claim.figure, claim.paper) not in ids or claim.seeds is None or pd.isna(claim.seeds):
                continue
            k, n = int(claim.seeds_held), int(claim.seeds)
            rows.append({"setup": setup.key, "axis": axis, "changes": len(setup.choices),
                         "paper_distance": paper_distance(config, setup),
                         "statement": ids[(claim.figure, claim.paper)], "figure": claim.figure, "paper": claim.paper,
                         "measured": claim.measured, "k": k, "n": n, "hold_rate": k / n, "ci_low": claim.ci_low,
                         "ci_high": claim.ci_high, "verdict": claim.verdict, "seconds": seconds,
                         "nonfinite": nonfinite, "networks": len(networks), **start,
                         "figure_nonfinite": figure_nonfinite[claim.figure],
                         "figure_start": figure_states.get(claim.figure, "")})
    columns = ["setup", "axis", "changes", "paper_distance", "statement", "figure", "paper", "measured", "k", "n", "hold_rate",
               "ci_low", "ci_high", "verdict", "seconds", "nonfinite", "networks", "collapsed", "exploded", "start",
               "figure_nonfinite", "figure_start"]
    return pd.DataFrame(rows, columns=columns)


def initial_state(records: list[dict]) -> dict:
    """How a set-up's networks start: {"collapsed": c, "exploded": e, "start": text}.

    A figure *starts collapsed* when the median over its seeds of the scale ratio at initialisation
    (max |y_depth| / max |y_0|, ``diagnostics.initial_signal``) is below ``COLLAPSED_BELOW`` (1e-3),
    *exploded* when it is above ``EXPLODED_ABOVE`` (1e3) or not finite; c and e count such figures
    and the text names them with their median ratio. Records from before the ratio was recorded
    count as neither (the text then says "not recorded"). "figures" maps each figure with recorded ratios to its state ("ok", "collapsed",
    "exploded").
    """
    collapsed, exploded, text, figures = 0, 0, [], {}
    for record in records:
        # A ratio that overflowed (inf or NaN) is as large as can be; a record without one predates it.
        ratios = [m["init_scale_ratio"] for m in record["members"] if m.get("init_scale_ratio") is not None]
        ratios = [r if math.isfinite(r) else math.inf for r in ratios]
        if not ratios:
            continue
        median = float(np.median(ratios))
        state = "collapsed" if median < COLLAPSED_BELOW else "ok" if median <= EXPLODED_ABOVE else "exploded"
        figures[record["figure"]] = state
        if state != "ok":
            collapsed, exploded = collapsed + (state == "collapsed"), exploded + (state == "exploded")
            text.append(f"{record['figure']} {state} ({median:.2g})")
    if not figures:
        text = ["not recorded"]
    return {"collapsed": collapsed, "exploded": exploded, "start": "; ".join(text), "figures": figures}


def _setup_order(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["setup"]))


def pairs_to_add(table: pd.DataFrame, pair_from: int) -> tuple[list[str], str]:
    """The pairs the one-axis results point to, and the reason in words.

    Rule: a single change (one axis moved) *raises* a statement when its hold-rate k/N is
    above today's. Single changes some of whose networks overflow to non-finite features are
    left out (as in `choose_default`); those that start collapsed or exploded are not: when
    today's set-up starts collapsed, so does almost every single change, and a pair with the
    change that cures it (an initialiser) is what the atlas needs to try. Rank the others by the number of statements they raise (then by
    the summed rise, then atlas order), keep the best ``pair_from`` of distinct axes that raise
    at least one, and add every pair of them (2 → one pair, 3 → three).
    Returns set-up keys "a+b" (axes in atlas order as in the table) and the reason.
    """
    rates = table.pivot(index="setup", columns="statement", values="hold_rate")
    if "base" not in rates.index:
        return [], "no pairs: today's set-up has not run"
    single = table.drop_duplicates("setup").query("changes == 1 and nonfinite == 0")
    ranked = []
    for position, row in enumerate(single.itertuples()):
        rise = rates.loc[row.setup] - rates.loc["base"]
        ranked.append((-int((rise > 0).sum()), -float(rise.clip(lower=0).sum()), position, row.setup, row.axis))
    ranked.sort()
    chosen, axes = [], set()
    for raised, total, _, setup, axis in ranked:
        if raised < 0 and axis not in axes and len(chosen) < pair_from:
            chosen.append((setup, -raised, -total))
            axes.add(axis)
    described = "; ".join(f"{setup} raises {n} statement(s) (summed rise {t:.2f})" for setup, n, t in chosen)
    if len(chosen) < 2:
        return [], ("no pairs: fewer than two single changes of distinct axes raise a statement's hold-rate "
                    f"({described or 'none'})")
    order = _setup_order(table)
    pairs = ["+".join(sorted((a, b), key=order.index)) for (a, _, _), (b, _, _) in itertools.combinations(chosen, 2)]
    return pairs, f"pairs of the {len(chosen)} single changes that raise the most statements: {described}"


@dataclass(frozen=True)
class Choice:
    """The chosen default set-up, how many statements hold there, and why it was chosen."""

    setup: str
    holds: int
    statements: int
    reason: str


def choose_default(table: pd.DataFrame) -> Choice:
    """The picture figures' default: the set-up where the most statements hold over seeds.

    Rule: (0) only *sound* set-ups are eligible: none of their networks overflow to non-finite
    features (an overflowed network is broken, not the paper's picture, and makes "features
    diverge" hold by overflow), and no figure's median network starts collapsed or exploded
    (`initial_state`: a network whose initial weights already map every point near one has no
    gradient to learn from, and its statements say nothing about its block); if no set-up is
    sound, those that do not overflow are, and failing that all, with a caution in the reason.
    Then (1) most statements with verdict "holds" (95 % Wilson interval above 1/2); ties by
    (2) closeness to what the paper states: fewest stated axes off the paper's level
    (``paper_distance``), then fewest axes moved from today's set-up; then (3) the largest
    summed hold-rate over statements (more seeds agree); then (4) atlas order.
    """
    if table.empty:
        raise ConfigError("the atlas table is empty: no set-up has finished")
    table = table.assign(**{column: table[column].fillna(0) if column in table else 0
                            for column in ("collapsed", "exploded")})
    order = _setup_order(table)
    per_setup = table.groupby("setup", sort=False).agg(
        holds=("verdict", lambda v: int((v == "holds").sum())), distance=("paper_distance", "first"),
        changes=("changes", "first"), rate_sum=("hold_rate", "sum"), statements=("statement", "count"),
        nonfinite=("nonfinite", "first"), networks=("networks", "first"), collapsed=("collapsed", "first"),
        exploded=("exploded", "first"))
    per_setup["position"] = [order.index(s) for s in per_setup.index]
    finite = per_setup[per_setup["nonfinite"] == 0]
    sound = finite[(finite["collapsed"] == 0) & (finite["exploded"] == 0)]
    eligible = sound if len(sound) else finite if len(finite) else per_setup
    ranked = eligible.sort_values(["holds", "distance", "changes", "rate_sum", "position"],
                                  ascending=[False, True, True, False, True])
    best = ranked.iloc[0]
    setup = ranked.index[0]
    top = ranked[ranked["holds"] == best["holds"]]
    reason = (f"{setup}: {int(best['holds'])} of {int(best['statements'])} statements hold over seeds, "
              f"the most of {len(eligible)} set-ups")
    if len(eligible) < len(per_setup) and not len(sound):
        reason += " whose networks stay finite (none is sound: every one starts collapsed or exploded somewhere)"
    elif len(eligible) < len(per_setup):
        overflowing = [s for s in per_setup.index if per_setup.loc[s, "nonfinite"]]
        starting = [s for s in finite.index if s not in sound.index]
        reasons = ([f"some networks overflow: {', '.join(overflowing)}"] if overflowing else []) + \
                  ([f"networks start collapsed or exploded: {', '.join(starting)}"] if starting and len(sound) else [])
        reason += f" that are sound (left out, {'; '.join(reasons)})"
    if len(top) > 1:
        others = [s for s in top.index if s != setup]
        reason += f"; tied with {', '.join(others)}"
        closest = top[(top["distance"] == best["distance"]) & (top["changes"] == best["changes"])]
        if len(closest) < len(top):
            reason += (f"; closest to what the paper states ({int(best['distance'])} stated axes off the paper, "
                       f"{int(best['changes'])} axes moved from today)")
        if len(closest) > 1:
            others = ", ".join(s for s in closest.index if s != setup)
            equal = [s for s in closest.index[closest["rate_sum"] == best["rate_sum"]] if s != setup]
            if len(equal) < len(closest) - 1:
                reason += f"; as close as {others}, chosen by the largest summed hold-rate ({best['rate_sum']:.2f})"
            if equal:
                reason += f"; equal to {', '.join(equal)} on every rule, chosen by atlas order"
    if best["nonfinite"]:
        reason += (f"; caution: {int(best['nonfinite'])} of {int(best['networks'])} of its networks overflow to "
                   "non-finite features")
    if best["collapsed"] or best["exploded"]:
        reason += (f"; caution: no set-up is sound, and in this one {int(best['collapsed'])} figure(s) start "
                   f"collapsed and {int(best['exploded'])} exploded")
    return Choice(setup, int(best["holds"]), int(best["statements"]), reason)


# The picture figures of each block family: a family may take its own default (`choose_by_family`).
FAMILIES = {"plain": ("fig2", "fig3"), "shrinkage": ("fig4", "fig5"), "batchnorm": ("fig6", "fig7")}


def _family_table(table: pd.DataFrame, figures: tuple[str, ...]) -> pd.DataFrame:
    """The rows of ``figures``' statements, with overflow and start judged on those figures alone."""
    rows = table[table["figure"].isin(figures)].copy()
    if "figure_start" not in rows:  # a table from before the per-figure columns: the set-up's own
        return rows
    per_figure = rows.drop_duplicates(["setup", "figure"])
    by_setup = per_figure.groupby("setup")
    counts = pd.DataFrame({
        "nonfinite": by_setup["figure_nonfinite"].sum(),
        "collapsed": by_setup["figure_start"].agg(lambda states: int((states == "collapsed").sum())),
        "exploded": by_setup["figure_start"].agg(lambda states: int((states == "exploded").sum())),
    })
    return rows.drop(columns=["nonfinite", "collapsed", "exploded"]).join(counts, on="setup")


def choose_by_family(table: pd.DataFrame) -> dict[str, Choice]:
    """Each picture figure's default set-up: one for all figures, or one per block family.

    Rule: `choose_default` over all statements gives the single choice; `choose_default` over each
    family's statements alone (``FAMILIES``; eligibility judged on that family's figures) gives the
    family choices. The families take their own set-ups when those make more statements hold in all
    than the single choice does; otherwise every figure takes the single choice. (A statement that
    compares two families, fig6.1 batch norm against plain, is counted with its own figure's family.)
    Returns {figure: Choice}.
    """
    single = choose_default(table)
    families = {family: choose_default(_family_table(table, figures)) for family, figures in FAMILIES.items()}
    single_holds = sum(int(table[(table["setup"] == single.setup) & table["figure"].isin(figures)]["verdict"]
                           .eq("holds").sum()) for figures in FAMILIES.values())
    if sum(choice.holds for choice in families.values()) > single_holds and \
            len({choice.setup for choice in families.values()}) > 1:
        return {figure: families[family] for family, figures in FAMILIES.items() for figure in figures}
    return {figure: single for figures in FAMILIES.values() for figure in figures}


def unmet_statements(table: pd.DataFrame) -> pd.DataFrame:
    """Statements that no set-up makes hold in most seeds (k ≤ N/2 everywhere), with the best set-up's k/N."""
    rows = []
    for statement, rows_of in table.groupby("statement", sort=False):
        best = rows_of.sort_values("hold_rate", ascending=False, kind="stable").iloc[0]
        if not (rows_of["k"] > rows_of["n"] / 2).any():
            rows.append({"statement": statement, "paper": best["paper"], "best_setup": best["setup"],
                         "k": int(best["k"]), "n": int(best["n"]), "setups": len(rows_of)})
    return pd.DataFrame(rows, columns=["statement", "paper", "best_setup", "k", "n", "setups"])


@dataclass
class AtlasResult:
    table: pd.DataFrame
    choice: Choice
    by_figure: dict[str, str]  # each picture figure's set-up by `choose_by_family`
    pairs: list[str]
    pairs_reason: str
    unmet: pd.DataFrame
    seconds: float  # training time of every set-up in the table (from the records)
    files: list[Path] = field(default_factory=list)


def run_atlas(config: AtlasConfig, out: str | Path, setups: list[str] | None = None,
              options: RunOptions | None = None, **option_values) -> AtlasResult:
    """Run the atlas into ``out`` (resumable); write the table, the heat-maps and the choice.

    ``setups``: keys of the set-ups to run (today's set-up is always run); ``None`` runs every
    one-axis set-up, then the pairs of `pairs_to_add`. ``options`` (or its fields as keywords) say
    how the (set-up, figure) units train (`runner.RunOptions`); every unit is seeded, so the
    records are the same under any.
    """
    from ..viz.atlas import plot_overview, plot_statement

    options = run_options(options, option_values)  # checked before anything is written
    out = Path(out)
    planned = None if setups is None else [Setup()] + [parse_setup(config, key) for key in setups]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write results to {str(out)!r}: {error.strerror}") from None
    _extend_axes(out / "config.json", config.to_json())
    keep_config(out / "config.json", config.to_json(), out, "an atlas")
    store = AtlasStore(out)
    if planned is None:
        execute(Atlas(config, one_axis_setups(config)), store, options)
        pairs, pairs_reason = pairs_to_add(atlas_table(config, out).query("changes <= 1"), config.pair_from)
        execute(Atlas(config, [parse_setup(config, key) for key in pairs]), store, options)
    else:
        execute(Atlas(config, list(dict.fromkeys(planned))), store, options)
        pairs, pairs_reason = [], "no pairs: the set-ups were named"
    table = atlas_table(config, out)
    choice = choose_default(table)
    by_figure = {figure: chosen.setup for figure, chosen in choose_by_family(table).items()}
    unmet = unmet_statements(table)
    seconds = float(table.drop_duplicates("setup")["seconds"].sum())
    files = [write_atomically(out / "atlas.csv", lambda p: table.to_csv(p, index=False))]
    summary = {"chosen": dataclasses.asdict(choice), "by_figure": by_figure, "pairs": pairs, "pairs_reason": pairs_reason,
               "unmet": unmet.to_dict(orient="records"), "setups": _setup_order(table), "seconds": round(seconds, 1)}
    files.append(write_atomically(out / "choice.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n")))
    figures = [("atlas-overview", plot_overview(table, choice.setup))]
    figures += [(f"heatmap-{sid.replace('.', '-')}", plot_statement(table, sid, choice.setup)) for sid, _ in STATEMENTS]
    for stem, figure in figures:
        files.append(write_atomically(out / f"{stem}.png", lambda p, f=figure: f.savefig(p, dpi=110)))
    return AtlasResult(table, choice, by_figure, pairs, pairs_reason, unmet, seconds, files)


def _extend_axes(path: Path, wanted: dict) -> None:
    """Let a folder whose atlas had fewer axes or levels grow into ``wanted``: where the stored config
    differs only in ``axes``, and each stored level is one of ``wanted``'s with the same settings, the
    config is rewritten (every finished set-up keeps its meaning, so its records are reused)."""
    if not path.exists():
        return
    stored = json.loads(path.read_text())
    if {k: v for k, v in stored.items() if k != "axes"} != {k: v for k, v in wanted.items() if k != "axes"}:
        return
    axes = wanted["axes"]
    if all(axis in axes and all(axes[axis].get(level) == value for level, value in levels.items())
           for axis, levels in stored.get("axes", {}).items()):
        write_atomically(path, lambda p: p.write_text(json.dumps(wanted, indent=2) + "\n"))


def shipped_atlas() -> tuple[pd.DataFrame, dict[str, Choice]]:
    """The paper-scale atlas table this release ships (``stableresnet atlas --scale paper``'s
    atlas.csv, copied to ``SHIPPED_ATLAS``) and the set-up `choose_by_family` picks from it for each
    picture figure: their paper-scale ``setup`` in reproduce.toml (a test holds the two together)."""
    table = pd.read_csv(SHIPPED_ATLAS)
    text = [column for column in ("start", "figure_start") if column in table]
    table[text] = table[text].fillna("")
    return table, choose_by_family(table)


def hold_counts(table: pd.DataFrame) -> pd.Series:
    """Statements whose verdict is "holds", per set-up (atlas order)."""
    counts = table.assign(held=table["verdict"].eq("holds")).groupby("setup", sort=False)["held"].sum()
    return counts.astype(int).reindex(_setup_order(table))
