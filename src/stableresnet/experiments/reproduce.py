"""Reproduce the paper: every figure is one declarative experiment (``reproduce.toml``) run by the engines.

Each experiment has a *kind* — ``data`` (Figure 1), ``propagation`` (Figures 2-7), ``sweep``
(Figures 8-13), ``drift`` (Figures 14-15) or ``comparison`` (sweep variants side by side on
several data sets, for the "beyond the paper" section) — and settings resolved for a *scale*:
``paper`` (the paper's settings) or ``quick`` (fewer trials, h values and epochs; stated on
the report). Experiments whose name starts with ``beyond`` go beyond the paper.

Layout of the output folder::

    DIR/runs/<kind>-<hash>/   the engines' own records (a sweep store resumes mid-way)
    DIR/figN/                 the figure's pictures, tables, and done.json once finished

An interrupted reproduce continues where it stopped: finished figures (done.json) are
reused, a half-run sweep resumes its missing groups, and runs shared by two figures
(Figures 14 and 15) are computed once.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..data import load_dataset
from ..environment import environment
from ..errors import ConfigError
from ..files import write_atomically
from .runner import RunOptions, run_options
from .pictures import member_numbers, propagation_config
from .specs import SCALES, SPEC_PATH, SWEEP_KEYS, FigureSpec, read_specs
from .sweep import SweepConfig, run_sweep



def load_specs(scale: str = "quick", path: str | Path = SPEC_PATH) -> list[FigureSpec]:
    """Read and validate the experiment specs (``specs.read_specs``, then each kind's config is built
    once so that bad values fail before anything runs); ConfigError names the figure and the problem."""
    experiments = read_specs(scale, path)
    for experiment in experiments:
        _validate(experiment, Path(path).name)
    return experiments


def _validate(experiment: FigureSpec, source: str) -> None:
    """Build the engine's config once so that bad values fail before anything runs."""
    try:
        KINDS[experiment.kind].config(experiment.settings)
    except ConfigError as error:
        raise ConfigError(f"{source} [{experiment.figure}]: {error}") from None
    except Exception as error:  # a data set the registry does not know, a wrong type
        raise ConfigError(f"{source} [{experiment.figure}]: {error}") from None


def _engine(compiled) -> str:
    """"compiled", "eager" or "mixed" from each member's (or atlas unit's) flag of how it was trained;
    a missing flag (results older than the flag) counts as eager."""
    flags = pd.Series(compiled, dtype=object).fillna(False).astype(bool)
    return "compiled" if flags.all() else "mixed" if flags.any() else "eager"


def _save_figure(figure, directory: Path, stem: str) -> list[str]:
    names = []
    for suffix in ("png", "svg"):
        write_atomically(directory / f"{stem}.{suffix}", lambda p, s=suffix: figure.savefig(p, format=s, dpi=130))
        names.append(f"{stem}.{suffix}")
    return names


# --------------------------------------------------------------------------------------
# Kinds: how to build the engine's config from settings, and how to run one figure.

class DataKind:
    @staticmethod
    def config(settings):
        options = {k: v for k, v in settings.items() if k in ("n_samples", "noise")}
        return settings["dataset"], settings.get("seed", 0), options

    @staticmethod
    def run(experiment, run_dir, figure_dir, options, progress):
        from ..viz.data import plot_synthetic

        name, seed, shape = DataKind.config(experiment.settings)
        dataset = load_dataset(name, seed=seed, **shape)
        files = _save_figure(plot_synthetic(dataset), figure_dir, "data")
        return {"files": files, "numbers": {"n_train": len(dataset.y_train), "n_test": len(dataset.y_test)}}


class PropagationKind:
    """Figures 2-7: ``seeds`` networks trained as one ensemble, pictures of the median one.

    The done record holds ``members``: each seed's numbers (what the picture claims are
    checked on, seed by seed), also written to ``summary.csv``. ``compare_depth`` trains the
    same seeds at that depth too and records each one's test accuracy there (Figure 5's
    "100 and 500 layers are largely the same"). ``setup`` moves the settings to a set-up of the
    claims atlas (``atlas.setup_settings``), e.g. the one the atlas chose for the pictures.
    ``reader`` (``propagation.READERS``, "head-test-1" by default) is how the layer accuracies the
    claims use are read; it changes no training.
    """

    @staticmethod
    def resolved(settings) -> dict:
        """The settings with their ``setup`` (an atlas set-up key) applied."""
        if "setup" not in settings:
            return dict(settings)
        from .atlas import setup_settings

        return setup_settings({k: v for k, v in settings.items() if k != "setup"}, settings["setup"])

    @staticmethod
    def config(settings):
        return propagation_config(PropagationKind.resolved(settings))

    @staticmethod
    def run(experiment, run_dir, figure_dir, options, progress):
        from ..viz.propagation import write_propagation_figures
        from .propagation import run_propagation_seeds, write_records

        config = PropagationKind.config(experiment.settings)
        records = run_propagation_seeds(config, device=options.device, on_epoch=progress(config.epochs * config.levels),
                                        compile=options.compile)
        write_records(records, figure_dir)
        written = write_propagation_figures(records, figure_dir, max_frames=experiment.settings.get("frames"))
        reader_key = PropagationKind.resolved(experiment.settings).get("reader")
        members = [member_numbers(record, reader_key) for record in records.members]
        compare_depth = experiment.settings.get("compare_depth")
        if compare_depth is not None:
            twin = run_propagation_seeds(dataclasses.replace(config, depth=compare_depth), device=options.device,
                                         on_epoch=progress(config.epochs * config.levels, f"depth {compare_depth}"),
                                         compile=options.compile)
            for numbers, record in zip(members, twin.members):
                numbers["compare_depth"], numbers["compare_depth_test_accuracy"] = compare_depth, record.test_accuracy
        table = pd.DataFrame(members)
        write_atomically(figure_dir / "summary.csv", lambda p: table.to_csv(p, index=False))
        numbers = {
            "seeds": len(members), "median_seed": records.median.seed, "depth": records.median.depth,
            **{f"median_{name}": float(table[name].median())
               for name in ("test_accuracy", "knn_accuracy", "max_layer_accuracy", "inactive_share_mean")},
        }
        return {"files": sorted({p.name for p in written}) + ["summary.csv"], "numbers": numbers, "members": members,
                "engine": _engine([records.compiled]), "compile_reason": records.compile_reason}


class SweepKind:
    @staticmethod
    def config(settings):
        settings = dict(settings)
        dataset = settings.pop("dataset")
        for key in ("blocks", "step_sizes"):
            if key in settings:
                settings[key] = tuple(settings[key])
        return SweepConfig.from_preset(dataset, **settings)

    @staticmethod
    def run(experiment, run_dir, figure_dir, options, progress):
        from ..stats import summarize
        from ..viz.sweep import plot_sweep

        config = SweepKind.config(experiment.settings)
        table = run_sweep(config, run_dir, dataclasses.replace(
            options, progress=lambda unit, index, n: progress(config.epochs, f"{unit.label} {index + 1}/{n}")))
        summary = summarize(table)
        write_atomically(figure_dir / "summary.csv", lambda p: summary.to_csv(p, index=False))
        files = _save_figure(plot_sweep(table), figure_dir, "sweep")
        return {"files": files + ["summary.csv"], "numbers": {"members": len(table)}, "engine": _engine(table.get("compiled")),
                "table": f"runs/{run_dir.name}/results.csv"}


def _for_dataset(values: dict, dataset: str) -> dict:
    """Settings for one data set: a value given as a table keyed by data set is looked up there."""
    resolved = {}
    for key, value in values.items():
        if isinstance(value, dict):
            if dataset not in value:
                raise ConfigError(f"setting {key!r} has no value for dataset {dataset!r}")
            value = value[dataset]
        resolved[key] = value
    return resolved


class ComparisonKind:
    """Sweep variants side by side: every variant (a name plus sweep settings) on every data set.

    Settings shared by all runs may be one value or a table keyed by data set (e.g. quick
    epochs per data set); a variant's own settings override them. Each (data set, variant)
    is one resumable sweep in ``run_dir/<data set>-<variant index>``.
    """

    @staticmethod
    def config(settings):
        settings = dict(settings)
        datasets, variants = list(settings.pop("datasets", [])), list(settings.pop("variants", []))
        if not datasets or not variants:
            raise ConfigError("a comparison needs a non-empty list of datasets and of variants")
        names = [variant.get("name") for variant in variants]
        if None in names or len(set(names)) != len(names):
            raise ConfigError(f"every variant needs its own name; got {names}")

        runs = []
        for dataset in datasets:
            for variant in variants:
                own = {k: v for k, v in variant.items() if k != "name"}
                unknown = set(own) - SWEEP_KEYS
                if unknown:
                    raise ConfigError(f"variant {variant['name']!r}: unknown setting(s) {sorted(unknown)}")
                merged = {**_for_dataset(settings, dataset), **_for_dataset(own, dataset), "dataset": dataset}
                runs.append((variant["name"], SweepKind.config(merged)))
        return runs

    @staticmethod
    def run(experiment, run_dir, figure_dir, options, progress):
        from ..stats import summarize_comparison
        from ..viz.sweep import plot_comparison

        tables = []
        runs = ComparisonKind.config(experiment.settings)
        names = list(dict.fromkeys(name for name, _ in runs))
        for name, config in runs:
            directory = run_dir / f"{config.dataset}-{names.index(name)}"
            table = run_sweep(config, directory, dataclasses.replace(
                options, progress=lambda unit, index, n, c=config, v=name:
                progress(c.epochs * c.levels, f"{c.dataset}: {v}, {unit.label} {index + 1}/{n}")))
            tables.append(table.assign(variant=name))
        table = pd.concat(tables, ignore_index=True)
        write_atomically(run_dir / "results.csv", lambda p: table.to_csv(p, index=False))
        summary = summarize_comparison(table, order=names)
        write_atomically(figure_dir / "summary.csv", lambda p: summary.to_csv(p, index=False))
        files = _save_figure(plot_comparison(summary), figure_dir, "comparison")
        return {"files": files + ["summary.csv"], "numbers": {"members": len(table)}, "engine": _engine(table.get("compiled")),
                "table": f"runs/{run_dir.name}/results.csv"}


class DriftKind:
    @staticmethod
    def config(settings):
        from .drift import DriftConfig

        settings = {k: v for k, v in settings.items() if k != "plot"}
        for key in ("blocks", "step_sizes"):
            if key in settings:
                settings[key] = tuple(settings[key])
        return DriftConfig(**settings)

    @staticmethod
    def run(experiment, run_dir, figure_dir, options, progress):
        from ..stats import summarize, summarize_drift
        from ..viz.drift import plot_drift
        from ..viz.sweep import plot_sweep
        from .drift import run_drift, save_drift

        config = DriftKind.config(experiment.settings)
        if not (run_dir / "periods.csv").exists():
            result = run_drift(config, dataclasses.replace(
                options, progress=lambda unit, i, n: progress(config.epochs, unit.label)), directory=run_dir)
            save_drift(run_dir, config, result)
        periods, sweep = pd.read_csv(run_dir / "periods.csv"), pd.read_csv(run_dir / "sweep.csv")
        if experiment.settings.get("plot", "periods") == "sweep":
            summary, figure, stem = summarize(sweep), plot_sweep(sweep), "sweep"
        else:
            summary, figure, stem = summarize_drift(periods), plot_drift(periods, period_unit="28-day period"), "periods"
        write_atomically(figure_dir / "summary.csv", lambda p: summary.to_csv(p, index=False))
        return {"files": _save_figure(figure, figure_dir, stem) + ["summary.csv"], "engine": _engine(sweep.get("compiled")),
                "table": f"runs/{run_dir.name}/{'sweep.csv' if stem == 'sweep' else 'periods.csv'}"}


class RobustnessKind:
    """The robustness study (``stableresnet.experiments.robustness``): sweeps with ``robustness`` on each
    data set and, with a ``drift`` table, a drift run with ``robustness`` whose per-period accuracies
    give each member's decay.

    Sweep settings may be tables keyed by data set (as in a comparison). Each sweep is resumable in
    ``run_dir/<data set>``, the drift run in ``run_dir/<its data>``; ``run_dir/members.csv`` is the
    members table the verdicts and figures are drawn from.
    """

    @staticmethod
    def config(settings):
        settings = dict(settings)
        datasets, drift = list(settings.pop("datasets", [])), settings.pop("drift", None)
        if not datasets and drift is None:
            raise ConfigError("a robustness study needs a non-empty list of datasets or a drift table")
        sweeps = [SweepKind.config({**_for_dataset(settings, dataset), "dataset": dataset}) for dataset in datasets]
        sweeps = [dataclasses.replace(config, robustness=True) for config in sweeps]
        if drift is not None:
            shared = {k: v for k, v in settings.items() if k in ("blocks", "step_sizes", "trials", "seed")}
            drift = DriftKind.config({**shared, **drift, "robustness": True})
        return sweeps, drift

    @staticmethod
    def run(experiment, run_dir, figure_dir, options, progress):
        from ..viz.robustness import plot_drops, plot_stability_scatter
        from .drift import run_drift
        from ..stats import drop_summary
        from .robustness import decay_per_member, study_verdicts

        sweeps, drift = RobustnessKind.config(experiment.settings)
        tables = []
        for config in sweeps:
            tables.append(run_sweep(config, run_dir / config.dataset, dataclasses.replace(
                options, progress=lambda unit, index, n, c=config:
                progress(c.epochs * c.levels, f"{c.dataset}: {unit.label} {index + 1}/{n}"))))
        if drift is not None:
            result = run_drift(drift, dataclasses.replace(
                options, progress=lambda unit, index, n: progress(drift.epochs, f"{drift.data}: {unit.label}")),
                directory=run_dir / drift.data)
            tables.append(result.sweep.merge(decay_per_member(result.periods), on=["dataset", "block", "h", "trial"]))
        members = pd.concat(tables, ignore_index=True)
        write_atomically(run_dir / "members.csv", lambda p: members.to_csv(p, index=False))
        verdicts = study_verdicts(members)
        write_atomically(figure_dir / "verdicts.csv", lambda p: verdicts.to_csv(p, index=False))
        summary = drop_summary(members)
        write_atomically(figure_dir / "summary.csv", lambda p: summary.to_csv(p, index=False))
        files = (_save_figure(plot_drops(members), figure_dir, "drops")
                 + _save_figure(plot_stability_scatter(members, verdicts), figure_dir, "stability"))
        counts = verdicts["verdict"].value_counts()
        return {"files": files + ["summary.csv", "verdicts.csv"], "table": f"runs/{run_dir.name}/members.csv",
                "engine": _engine(members.get("compiled")),
                "numbers": {"members": len(members), "statements": len(verdicts),
                            **{verdict: int(counts.get(verdict, 0)) for verdict in ("holds", "does not hold", "unclear")}}}


class AtlasKind:
    """The claims atlas (``stableresnet.experiments.atlas``) around the picture figures' settings of
    its ``scale``; resumable in ``run_dir``, its table, heat-maps and choice copied to the figure's folder."""

    @staticmethod
    def config(settings):
        scale, seeds = settings.get("scale"), settings.get("seeds")
        if scale not in SCALES:
            raise ConfigError(f"unknown atlas scale {scale!r}; expected one of {list(SCALES)}")
        if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1):
            raise ConfigError(f"seeds must be an integer ≥ 1; got {seeds!r}")
        return scale, seeds

    @staticmethod
    def run(experiment, run_dir, figure_dir, options, progress):
        import shutil

        from .atlas import atlas_config, run_atlas

        result = run_atlas(atlas_config(*AtlasKind.config(experiment.settings)), run_dir, dataclasses.replace(
            options, progress=lambda unit, index, n: progress(unit.epochs, unit.label)))
        for path in result.files:
            write_atomically(figure_dir / path.name, lambda p, source=path: shutil.copyfile(source, p))
        units = [json.loads(path.read_text()) for path in sorted((run_dir / "setups").glob("*/*.json"))]
        return {"files": [path.name for path in result.files], "table": f"runs/{run_dir.name}/atlas.csv",
                "engine": _engine([unit.get("compiled") for unit in units if unit.get("seconds")]),
                "numbers": {"setups": int(result.table["setup"].nunique()), "chosen": result.choice.setup,
                            "statements that hold there": result.choice.holds,
                            "training seconds": round(result.seconds, 1)},
                "atlas": json.loads((run_dir / "choice.json").read_text())}


KINDS = {"data": DataKind, "propagation": PropagationKind, "sweep": SweepKind, "drift": DriftKind,
         "comparison": ComparisonKind, "robustness": RobustnessKind, "atlas": AtlasKind}


def run_reproduce(
    experiments: list[FigureSpec],
    out: str | Path,
    scale: str,
    options: RunOptions | None = None,
    on_start: Callable[[FigureSpec, int, int], Callable] | None = None,
    **option_values,
) -> list[dict]:
    """Run each experiment not already done into ``out``; returns every figure's done record.

    A figure's ``seconds`` count every run of it: a stopped run (an exception, Ctrl-C, or SIGTERM
    through the command line) leaves its time in ``runs/<run>/spent-<figure>.json`` for the next.

    ``options`` (or its fields as keywords) say how every experiment's units train
    (`runner.RunOptions`; the numbers are the same under any). With ``compile`` a figure already
    done is reused whichever engine trained it, and a half-run sweep resumes with the engine asked
    now; each record's ``engine`` says which trained its numbers ("eager", "compiled", or "mixed"
    for a run resumed under the other engine).

    ``on_start(experiment, index, total)`` returns ``progress(total_epochs, label=None)``, which in
    turn returns an ``on_epoch(epoch, loss)`` callback.
    """
    options = run_options(options, option_values)
    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write results to {str(out)!r}: {error.strerror}") from None
    records = []
    for index, experiment in enumerate(experiments):
        figure_dir = out / experiment.figure
        done_path = figure_dir / "done.json"
        if done_path.exists():
            record = json.loads(done_path.read_text())
            if record.get("settings") == experiment.settings and record.get("scale") == scale:
                records.append({**record, "note": experiment.note})  # a note is not a setting: today's wins
                continue
        figure_dir.mkdir(parents=True, exist_ok=True)
        progress = on_start(experiment, index, len(experiments)) if on_start else (lambda *args: None)
        run_dir = out / "runs" / experiment.run_key
        # Seconds that stopped runs of this figure spent, so a resumed figure's time is its whole time.
        spent_path = run_dir / f"spent-{experiment.figure}.json"
        earlier = json.loads(spent_path.read_text())["seconds"] if spent_path.exists() else 0.0
        started = time.perf_counter()
        try:
            outcome = KINDS[experiment.kind].run(experiment, run_dir, figure_dir, options, progress)
        except BaseException:
            run_dir.mkdir(parents=True, exist_ok=True)
            spent = {"seconds": earlier + time.perf_counter() - started}
            write_atomically(spent_path, lambda p: p.write_text(json.dumps(spent) + "\n"))
            raise
        record = {
            "figure": experiment.figure, "title": experiment.title, "kind": experiment.kind, "scale": scale,
            "settings": experiment.settings, "run": experiment.run_key, "note": experiment.note,
            "seconds": round(earlier + time.perf_counter() - started, 2), "machine": environment(), **outcome,
        }
        write_atomically(done_path, lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))
        spent_path.unlink(missing_ok=True)
        records.append(record)
    return records
