"""The ``stableresnet`` command line (typer + rich).

User mistakes (a bad value, a broken file) are printed as one clear line on stderr
with exit status 2, never as a traceback.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .data import DataError, describe_datasets, load_dataset, load_table, paper_preset
from .files import write_atomically
from .model import ConfigError, StableResNet
from .multilevel import coarsest_model, fit_multilevel
from .serialization import ModelFileError, save_model
from .train import TrainConfig, evaluate, fit

app = typer.Typer(
    help="Residual networks as ODE solvers: explicit step size, shrinkage and batch-norm blocks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)
USER_ERRORS = (ConfigError, DataError, ModelFileError)
# Help of the options that several commands share.
INTEGRATOR_HELP = "Step rule: euler, heun, midpoint, rk4 or leapfrog (hamiltonian block)."
POLICY_HELP = "Block step sizes: fixed (the paper), learnable or adaptive."
LEVELS_HELP = ("Multi-level depth: start at depth/2^(L−1) blocks and step 2^(L−1)·h, double the blocks and halve h "
               "L−1 times; --epochs per level.")


def user_errors(command):
    """Turn the package's user-facing errors into one red line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            errors.print(f"[bold red]error:[/] {error}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when available; 'cuda' without a GPU is a user error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; expected cpu, cuda or auto")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no CUDA GPU here")
    return device


def _preset_or_none(dataset: str):
    """The paper's preset of a bundled dataset, or None for one the paper did not use (elec2)."""
    try:
        return paper_preset(dataset)
    except DataError:
        return None


def _beyond_label(integrator: str, step_size_policy: str, levels: int) -> str:
    """", rk4, adaptive h, 2 levels": the settings that differ from the paper's, for titles."""
    extras = [integrator] if integrator != "euler" else []
    extras += [f"{step_size_policy} h"] if step_size_policy != "fixed" else []
    extras += [f"{levels} levels"] if levels > 1 else []
    return "".join(f", {item}" for item in extras)


def epoch_progress(total: int, description: str) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@app.command()
@user_errors
def train(
    data: Optional[Path] = typer.Option(None, help="CSV or Parquet file with your data."),
    target: Optional[str] = typer.Option(None, help="Target column of --data."),
    dataset: Optional[str] = typer.Option(None, help="A bundled dataset (see `stableresnet datasets`)."),
    block: str = typer.Option("plain", help="Vector field: plain, shrinkage, batchnorm, antisymmetric or hamiltonian."),
    step_size: float = typer.Option(0.1, "--step-size", "-h", help="Step size h > 0 (h = 1: vanilla ResNet)."),
    depth: Optional[int] = typer.Option(None, help="Residual blocks [paper preset, else 20]."),
    width: Optional[int] = typer.Option(None, help="Block width [paper preset, else number of features]."),
    epochs: Optional[int] = typer.Option(None, help="Epochs [paper preset, else 50]."),
    batch_size: Optional[int] = typer.Option(None, help="Mini-batch size [paper preset, else 32]."),
    learning_rate: float = typer.Option(1e-3, "--lr", help="Learning rate."),
    optimizer: str = typer.Option("adam", help="adam or sgd."),
    activation: str = typer.Option("relu", help="relu or tanh."),
    seed: int = typer.Option(0, help="Seed of split, initialisation and mini-batch order."),
    test_size: float = typer.Option(0.2, help="Test fraction where the data has no official split."),
    one_hot: bool = typer.Option(False, help="One-hot encode categorical columns."),
    save: Optional[Path] = typer.Option(None, help="Write the trained model here (safetensors)."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    integrator: str = typer.Option("euler", help=INTEGRATOR_HELP),
    step_size_policy: str = typer.Option("fixed", help=POLICY_HELP),
    smoothness: float = typer.Option(0.0, help="λ of the inter-layer penalty λ Σ‖K_{i+1} − K_i‖² [0: off]."),
    levels: int = typer.Option(1, help=LEVELS_HELP),
):
    """Train one network and print its train and test accuracy."""
    if (data is None) == (dataset is None):
        raise ConfigError("give exactly one of --data FILE (with --target COLUMN) or --dataset NAME")
    if data is not None:
        if target is None:
            raise ConfigError("--data needs --target COLUMN naming the column to predict")
        loaded = load_table(data, target, seed=seed, test_size=test_size, one_hot=one_hot)
        preset = None
    else:
        loaded = load_dataset(dataset, seed=seed, test_size=test_size, one_hot=one_hot)
        preset = _preset_or_none(dataset)
    def default(value, preset_value, fallback):
        if value is not None:
            return value
        return preset_value if preset is not None else fallback

    depth = default(depth, preset and preset.depth, 20)
    width = default(width, preset and preset.width, None)
    config = TrainConfig(
        epochs=default(epochs, preset and preset.epochs, 50),
        batch_size=default(batch_size, preset and preset.batch_size, 32),
        learning_rate=learning_rate,
        optimizer=optimizer,
        smoothness=smoothness,
    )
    model = coarsest_model(StableResNet(
        loaded.n_features, loaded.n_classes, depth, width, block, step_size, activation, seed=seed,
        integrator=integrator, step_size_policy=step_size_policy
    ), levels).to(resolve_device(device))
    X_train = torch.tensor(loaded.X_train, dtype=torch.float32)
    y_train = torch.tensor(loaded.y_train)
    total_epochs = config.epochs * levels
    with epoch_progress(total_epochs, "train") as progress:
        task = progress.add_task(f"{block} h={step_size:g} depth {depth}", total=total_epochs, loss="-")
        model, result = fit_multilevel(
            model, X_train, y_train, config, levels,
            on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{loss[0]:.4f}"),
        )
    train_metrics = evaluate(model, X_train, y_train)
    test_metrics = evaluate(model, torch.tensor(loaded.X_test, dtype=torch.float32), torch.tensor(loaded.y_test))

    table = Table(title=f"{loaded.name}: {block} block, h = {step_size:g}, depth {depth}, width {model.width}"
                        + _beyond_label(integrator, step_size_policy, levels))
    for column in ("split", "rows", "accuracy", "loss"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split, metrics, n_rows in (("train", train_metrics, len(loaded.y_train)), ("test", test_metrics, len(loaded.y_test))):
        table.add_row(split, str(n_rows), f"{metrics['accuracy'][0]:.4f}", f"{metrics['loss'][0]:.4f}")
    console.print(table)
    if result.diverged[0]:
        console.print(f"[yellow]diverged[/] at epoch {result.diverged_epoch[0]}: evaluated with its last finite weights")
    if step_size_policy != "fixed":
        block_h = result.step_sizes[0]
        console.print(f"block step sizes h_i after training: mean {block_h.mean():.4g}, "
                      f"min {block_h.min():.4g}, max {block_h.max():.4g}")
    if save is not None:
        params = {
            "depth": depth, "width": width, "block": block, "step_size": step_size, "activation": activation,
            "optimizer": optimizer, "learning_rate": learning_rate, "epochs": config.epochs,
            "batch_size": config.batch_size, "random_state": seed,
            "integrator": integrator, "step_size_policy": step_size_policy, "smoothness": smoothness,
            "levels": levels,
        }
        save_model(save, model, classes=list(loaded.class_names),
                   extra={"params": params, "feature_names": list(loaded.feature_names)})
        console.print(f"saved model to {save}")


@app.command()
@user_errors
def datasets():
    """List the bundled datasets with their rows, features and classes."""
    table = Table(title="bundled datasets")
    for column in ("name", "rows", "features", "classes", "class counts"):
        table.add_column(column, justify="left" if column in ("name", "class counts") else "right")
    for row in describe_datasets():
        counts = ", ".join(f"{label}: {count}" for label, count in row["class_counts"].items())
        table.add_row(row["name"], str(row["rows"]), str(row["features"]), str(row["classes"]), counts)
    console.print(table)


@app.command()
@user_errors
def sweep(
    dataset: str = typer.Option(..., help="Bundled dataset (see `stableresnet datasets`)."),
    blocks: str = typer.Option("plain,shrinkage,batchnorm", help="Comma-separated blocks."),
    step_sizes: Optional[str] = typer.Option(None, help="h grid: start:stop:step or a list [preset: 0.1:1.0:0.1]."),
    trials: Optional[int] = typer.Option(None, help="Trials per (block, h) [preset: 10]."),
    preset: str = typer.Option("paper", help="Hyper-parameter preset; only 'paper' exists."),
    depth: Optional[int] = typer.Option(None, help="Override the preset's depth."),
    width: Optional[int] = typer.Option(None, help="Override the preset's width."),
    epochs: Optional[int] = typer.Option(None, help="Override the preset's epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Override the preset's batch size."),
    learning_rate: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    seed: int = typer.Option(0, help="Sweep seed; trial t's seed derives from it."),
    members_per_group: int = typer.Option(100, help="Members trained together in one batched model."),
    out: Optional[Path] = typer.Option(None, help="Results folder [results/sweep-DATASET]."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    integrator: str = typer.Option("euler", help=INTEGRATOR_HELP),
    step_size_policy: str = typer.Option("fixed", help=POLICY_HELP),
    robustness: bool = typer.Option(False, help="Add per member: stability constant c, largest block amplification (|1+hλ| for Euler), accuracy "
                                          "under noise σ=0.1 and FGSM/PGD ε=0.1 (slower)."),
    backend: str = typer.Option("local", help="local (this process) or ray (one Ray task per group)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address [start a local Ray]."),
    levels: int = typer.Option(1, help=LEVELS_HELP),
):
    """Train every (block, h, trial) of an h-sweep as batched ensembles; resumable."""
    from .experiments.sweep import SweepConfig, SweepIncomplete, groups, parse_step_sizes, run_sweep
    from .viz.sweep import summarize

    if preset != "paper":
        raise ConfigError(f"unknown preset {preset!r}; expected 'paper'")
    config = SweepConfig.from_preset(
        dataset,
        blocks=tuple(b.strip() for b in blocks.split(",") if b.strip()),
        step_sizes=parse_step_sizes(step_sizes) if step_sizes is not None else None,
        trials=trials, depth=depth, width=width, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, seed=seed, members_per_group=members_per_group,
        integrator=integrator, step_size_policy=step_size_policy, robustness=robustness, levels=levels,
    )
    out = out or Path("results") / f"sweep-{dataset}"
    device = resolve_device(device)
    n_members = len(config.blocks) * len(config.step_sizes) * config.trials
    console.print(
        f"{dataset}: {n_members} members ({len(config.blocks)} blocks × {len(config.step_sizes)} h × "
        f"{config.trials} trials), depth {config.depth}, width {config.width}, {config.epochs} epochs, "
        f"batch {config.batch_size} → {out}"
    )
    total_epochs = config.epochs * config.levels
    with epoch_progress(total_epochs, "sweep") as progress:
        task = progress.add_task("sweep", total=total_epochs, loss="-")

        def on_group(group, index, n_pending):
            progress.update(task, completed=0, description=f"group {index + 1}/{n_pending} {group.block}")

            def on_epoch(epoch, loss):
                progress.update(task, completed=epoch + 1, loss=f"{np.nanmean(loss):.4f}" if np.isfinite(loss).any() else "nan")

            return on_epoch

        try:
            table = run_sweep(config, out, device=device, progress=on_group, backend=backend, address=address)
        except SweepIncomplete as error:
            errors.print(f"[bold red]incomplete:[/] {error}", highlight=False)
            raise typer.Exit(1) from None
    summary = summarize(table)
    _print_summary(summary)
    console.print(f"{len(table)} rows in {out / 'results.csv'} ({len(groups(config))} groups)")


def _print_summary(summary) -> None:
    table = Table(title="test accuracy: mean ± std over trials")
    blocks = list(dict.fromkeys(summary["block"]))
    table.add_column("h", justify="right")
    for block in blocks:
        table.add_column(block, justify="right")
    for h, rows in summary.groupby("h"):
        by_block = rows.set_index("block")
        cells = []
        for block in blocks:
            row = by_block.loc[block] if block in by_block.index else None
            cells.append("" if row is None else f"{row['mean']:.3f} ± {0 if np.isnan(row['std']) else row['std']:.3f}"
                         + (f" ({int(row['diverged'])} div.)" if row["diverged"] else ""))
        table.add_row(f"{h:g}", *cells)
    console.print(table)


@app.command()
@user_errors
def reproduce(
    scale: str = typer.Option("quick", help="quick (minutes on a laptop) or paper (the paper's settings)."),
    only: Optional[str] = typer.Option(None, help="Comma-separated figures, e.g. fig2,fig9 [all]."),
    out: Path = typer.Option(Path("results/reproduce"), help="Output folder; an existing one is resumed."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """Reproduce the paper's figures 1-15 and the beyond-the-paper experiments; HTML report DIR/index.html; resumable."""
    from .experiments.claims import evaluate_claims
    from .experiments.reproduce import load_specs, run_reproduce, select
    from .viz.report import build_report

    experiments = select(load_specs(scale), only)
    out = out / scale if out == Path("results/reproduce") else out
    device = resolve_device(device)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as progress:
        overall = progress.add_task("figures", total=len(experiments))
        inner = progress.add_task("", total=1)

        def on_start(experiment, index, total):
            progress.update(overall, completed=index, description=f"{experiment.figure}: {experiment.title[:60]}")

            def on_run(epochs, label=None):
                progress.reset(inner, total=epochs, description=f"  {label or experiment.kind} epochs")
                return lambda epoch, loss: progress.update(inner, completed=epoch + 1)

            return on_run

        records = run_reproduce(experiments, out, scale, device, on_start)
        progress.update(overall, completed=len(experiments))
    claims = evaluate_claims(records, out)
    report = build_report(out, records, claims, scale, device)
    table = Table(title="paper vs. here")
    for column in ("figure", "measured", "verdict"):
        table.add_column(column)
    for claim in claims.itertuples():
        verdict = "not run" if claim.holds is None else ("[green]holds[/]" if claim.holds else "[red]does not hold[/]")
        table.add_row(claim.figure, claim.measured, verdict)
    console.print(table)
    console.print(f"{len(records)} figures in {sum(r['seconds'] for r in records):.0f} s of compute; report: {report}")


@app.command("plot-sweep")
@user_errors
def plot_sweep_command(
    directory: Path = typer.Argument(..., help="A sweep's results folder (holding results.csv)."),
):
    """Draw mean ± std test accuracy against h (Figures 8-13) and a summary table, from results.csv alone."""
    import pandas as pd

    from .viz.sweep import plot_sweep, summarize

    results = directory / "results.csv"
    if not results.is_file():
        raise ConfigError(f"{str(results)!r} does not exist; run `stableresnet sweep --out {directory}` first")
    table = pd.read_csv(results)
    missing = {"dataset", "block", "h", "test_accuracy", "diverged"} - set(table.columns)
    if table.empty or missing:
        raise ConfigError(f"{str(results)!r} is not a sweep results table (missing {sorted(missing) or 'rows'})")
    from .experiments.sweep import ROBUSTNESS_COLUMNS

    summary = summarize(table)
    for metric in ["test_accuracy"] + [c for c in ROBUSTNESS_COLUMNS if c in table.columns]:
        stem = "sweep" if metric == "test_accuracy" else f"sweep-{metric.replace('_', '-')}"
        figure = plot_sweep(table, metric)
        for suffix in ("png", "svg"):
            write_atomically(directory / f"{stem}.{suffix}", lambda p: figure.savefig(p, format=suffix, dpi=150))
    write_atomically(directory / "summary.csv", lambda p: summary.to_csv(p, index=False))
    _print_summary(summary)
    console.print(f"wrote {directory / 'sweep.png'}, sweep.svg and summary.csv")


def _diagnose_figures(spectra, eigenvalues, growth, robustness) -> dict:
    """Every diagnose figure, rebuilt from the tidy tables alone (the CSV files it writes)."""
    from matplotlib.figure import Figure

    from .viz.diagnostics import plot_amplification, plot_eigenvalues, plot_growth, plot_robust_accuracy

    def label(key):
        return f"{key[0]} h={key[1]:g}"

    figures = {
        "amplification": plot_amplification(
            {label(k): g.sort_values("layer")["max_amplification"].to_numpy()
             for k, g in spectra.groupby(["block", "step_size"])}),
        "growth": plot_growth(
            {label(k) + " (max)": g.sort_values("layer")["max_ratio"].to_numpy()
             for k, g in growth.groupby(["block", "step_size"])}),
    }
    for (block, h), group in eigenvalues.groupby(["block", "step_size"]):
        values = {f"layer {layer}": (g["real"] + 1j * g["imag"]).to_numpy() for layer, g in group.groupby("layer")}
        figures[f"eigenvalues_{block}_h{h:g}"] = plot_eigenvalues(values, h, title=f"{block}, h = {h:g}")
    kinds = list(dict.fromkeys(robustness["perturbation"]))
    panel = Figure(figsize=(4.5 * len(kinds), 4.0), layout="constrained")
    for ax, kind in zip(panel.subplots(1, len(kinds), squeeze=False)[0], kinds):
        rows = robustness[robustness["perturbation"] == kind]
        curves = {label(k): g.sort_values("level")["accuracy"].to_numpy() for k, g in rows.groupby(["block", "step_size"])}
        levels = np.sort(rows["level"].unique())
        plot_robust_accuracy(levels, curves, "σ (standardised units)" if kind == "noise" else "ε (standardised L∞)",
                             ax=ax, title=kind)
    figures["robustness"] = panel
    return figures


@app.command()
@user_errors
def diagnose(
    dataset: str = typer.Option(..., help="A bundled dataset (see `stableresnet datasets`)."),
    model_file: Optional[Path] = typer.Option(None, "--model", help="Diagnose this saved model instead of training."),
    block: list[str] = typer.Option(["plain"], help="Vector field to train; repeat for several."),
    step_size: list[float] = typer.Option([0.1], "--step-size", "-h", help="Step size h; repeat for several."),
    depth: Optional[int] = typer.Option(None, help="Residual blocks [paper preset, else 20]."),
    width: Optional[int] = typer.Option(None, help="Block width [paper preset, else number of features]."),
    epochs: Optional[int] = typer.Option(None, help="Epochs [paper preset, else 50]."),
    batch_size: Optional[int] = typer.Option(None, help="Mini-batch size [paper preset, else 32]."),
    learning_rate: float = typer.Option(1e-3, "--lr", help="Learning rate."),
    activation: str = typer.Option("relu", help="relu or tanh."),
    integrator: str = typer.Option("euler", help=INTEGRATOR_HELP),
    step_size_policy: str = typer.Option("fixed", help=POLICY_HELP),
    seed: Optional[int] = typer.Option(None, help="Seed of split and initialisation [a --model's own, else 0]."),
    samples: int = typer.Option(256, help="Test rows (a seeded subset) for spectra and perturbation growth."),
    sigma: list[float] = typer.Option([0.0, 0.1, 0.2, 0.5, 1.0], help="Gaussian noise levels (standardised units)."),
    epsilon: list[float] = typer.Option([0.0, 0.05, 0.1, 0.2, 0.5], help="FGSM/PGD radii (standardised L∞)."),
    growth_epsilon: float = typer.Option(1e-3, help="Layer-0 perturbation size for eq. 4."),
    pgd_steps: int = typer.Option(10, help="PGD iterations."),
    out: Path = typer.Option(Path("diagnostics"), help="Folder for the CSV/JSON records and PNG figures."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """Jacobian spectra (Prop. 1-2), perturbation growth (eq. 4) and robust accuracy of trained networks."""
    import json

    import pandas as pd

    from .diagnostics import layer_spectra, perturbation_growth, robust_accuracy
    from .serialization import load_model

    if isinstance(samples, bool) or samples < 1:
        raise ConfigError(f"--samples must be an integer ≥ 1; got {samples!r}")
    if len(set(step_size)) != len(step_size) or len(set(block)) != len(block):
        raise ConfigError(f"--block and --step-size values must be distinct; got {block} and {step_size}")
    device = resolve_device(device)
    models = []  # (block name, model)
    if model_file is not None:
        model, _, extra = load_model(model_file)
        seed = extra.get("params", {}).get("random_state", 0) if seed is None else seed
        loaded = load_dataset(dataset, seed=seed)
        if model.in_features != loaded.n_features or model.n_classes != loaded.n_classes:
            raise ConfigError(
                f"{str(model_file)!r} expects {model.in_features} features and {model.n_classes} classes; "
                f"dataset {dataset!r} has {loaded.n_features} and {loaded.n_classes}")
        models.append((model.block, model.to(device)))
    else:
        seed = 0 if seed is None else seed
        loaded = load_dataset(dataset, seed=seed)
        preset = _preset_or_none(dataset)
        depth = depth or (preset.depth if preset else 20)
        width = width or (preset.width if preset else None)
        config = TrainConfig(epochs=epochs or (preset.epochs if preset else 50),
                             batch_size=batch_size or (preset.batch_size if preset else 32), learning_rate=learning_rate)
        X_train = torch.tensor(loaded.X_train, dtype=torch.float32)
        y_train = torch.tensor(loaded.y_train)
        for name in block:
            model = StableResNet(loaded.n_features, loaded.n_classes, depth, width,
                                 name, step_size, activation, seed=seed, integrator=integrator,
                                 step_size_policy=step_size_policy).to(device)
            with epoch_progress(config.epochs, "train") as progress:
                task = progress.add_task(f"{name} h={step_size}", total=config.epochs, loss="-")
                fit(model, X_train, y_train, config,
                    on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{np.nanmax(loss):.4f}"))
            models.append((name, model))

    rows = np.random.default_rng(seed).permutation(len(loaded.X_test))[:samples]
    X_sub = loaded.X_test[np.sort(rows)]
    spectra_rows, eigen_rows, growth_rows, robust_rows, summary = [], [], [], [], []
    for name, model in models:
        spectra = layer_spectra(model, X_sub)
        growth = perturbation_growth(model, X_sub, growth_epsilon, seed=seed)
        robust = robust_accuracy(model, loaded.X_test, loaded.y_test, sigma, epsilon, pgd_steps, seed=seed)
        shown = sorted({0, model.depth // 2, model.depth - 1})  # first, middle and last block
        for m, h in enumerate(spectra.step_size.tolist()):
            key = {"block": name, "integrator": model.integrator, "step_size": h}
            for i, layer in enumerate(spectra.layers.tolist()):
                spectra_rows.append({**key, "layer": layer, "block_step_size": spectra.block_step_sizes[m, i],
                                     "max_real": spectra.max_real[m, i],
                                     "max_imag": spectra.max_imag[m, i],
                                     "max_amplification": spectra.max_amplification[m, i],
                                     "stable_fraction": spectra.stable_fraction[m, i]})
            for layer in shown:
                values = spectra.eigenvalues[m, layer]  # (n_samples, width)
                sample, _ = np.indices(values.shape)
                eigen_rows.append(pd.DataFrame({**key, "layer": layer, "sample": sample.ravel(),
                                                "real": values.real.ravel(), "imag": values.imag.ravel()}))
            ratio = growth.ratio[m]  # (depth + 1, n_samples)
            growth_rows += [{**key, "layer": t, "median_ratio": np.median(ratio[t]), "max_ratio": ratio[t].max()}
                            for t in range(ratio.shape[0])]
            for kind, levels in (("noise", robust["sigma"]), ("fgsm", robust["epsilon"]), ("pgd", robust["epsilon"])):
                robust_rows += [{**key, "perturbation": kind, "level": level, "accuracy": robust[kind][m, j]}
                                for j, level in enumerate(levels.tolist())]
            summary.append({**key, "max_amplification": float(spectra.max_amplification[m].max()),
                            "max_real": float(spectra.max_real[m].max()),
                            "stable_fraction": float(spectra.stable_fraction[m].mean()),
                            "stability_constant": float(growth.stability_constant[m]),
                            "clean_accuracy": float(robust["noise"][m, 0]) if robust["sigma"][0] == 0 else None})
    tables = {
        "spectra": pd.DataFrame(spectra_rows),
        "eigenvalues": pd.concat(eigen_rows, ignore_index=True),
        "growth": pd.DataFrame(growth_rows),
        "robustness": pd.DataFrame(robust_rows),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_atomically(out / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
    record = {
        "dataset": dataset, "model_file": str(model_file) if model_file else None, "seed": seed,
        "models": [model.config() for _, model in models], "samples": len(X_sub), "sigma": sigma,
        "epsilon": epsilon, "growth_epsilon": growth_epsilon, "pgd_steps": pgd_steps, "summary": summary,
    }
    write_atomically(out / "summary.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2, allow_nan=True)))
    for name, figure in _diagnose_figures(**tables).items():
        write_atomically(out / f"{name}.png", lambda tmp: figure.savefig(tmp, format="png", dpi=120))

    integrators = ", ".join(sorted({model.integrator for _, model in models}))
    table = Table(title=f"{dataset}: stability diagnostics, {integrators} ({len(X_sub)} test rows)",
                  caption="Φ: a block's map y ↦ step(F, y, h_i); for euler |eig ∂Φ/∂y| = |1 + hλ| (Prop. 1)")
    for column in ("block", "h", "max |eig ∂Φ/∂y|", "max Re λ", "|eig| ≤ 1", "c (eq. 4)", "clean acc."):
        table.add_column(column, justify="left" if column == "block" else "right")
    for row in summary:
        clean = "-" if row["clean_accuracy"] is None else f"{row['clean_accuracy']:.3f}"
        table.add_row(row["block"], f"{row['step_size']:g}", f"{row['max_amplification']:.4g}",
                      f"{row['max_real']:.3g}", f"{row['stable_fraction']:.1%}", f"{row['stability_constant']:.4g}", clean)
    console.print(table)
    console.print(f"wrote records and figures to {out}")


@app.command()
@user_errors
def propagate(
    data: str = typer.Option("circles", help="A 2-D data set: circles, moons, spirals or xor."),
    figure: Optional[int] = typer.Option(None, help="Paper figure 2-7; sets block, step size and depth (options given override it)."),
    block: Optional[str] = typer.Option(None, help="plain, shrinkage, batchnorm, antisymmetric or hamiltonian [figure preset, else plain]."),
    step_size: Optional[float] = typer.Option(None, "--step-size", "-h", help="Step size h > 0 [figure preset, else 1]."),
    depth: Optional[int] = typer.Option(None, help="Residual blocks [figure preset, else the paper's 100]."),
    layers: Optional[str] = typer.Option(None, help="Grid layers, e.g. 0,5,10 [0, 5, then every ceil(depth/10)-th]."),
    axes: str = typer.Option("both", help="Axes of grids and animations: scaled, fixed or both."),
    epochs: Optional[int] = typer.Option(None, help="Epochs [paper preset: 100]."),
    batch_size: Optional[int] = typer.Option(None, help="Mini-batch size [paper preset: 32]."),
    learning_rate: float = typer.Option(1e-3, "--lr", help="Learning rate (Adam)."),
    activation: str = typer.Option("relu", help="relu or tanh."),
    n_samples: int = typer.Option(500, help="Training points (and as many test points)."),
    noise: float = typer.Option(0.1, help="Noise of the synthetic data."),
    seed: int = typer.Option(0, help="Seed of data, initialisation and mini-batch order."),
    animate: bool = typer.Option(True, help="Write the per-layer GIF (and MP4 when ffmpeg is installed)."),
    frames: Optional[int] = typer.Option(None, help="Animation frames: this many layers evenly spread [every layer]."),
    out: Path = typer.Option(Path("propagation"), help="Folder for figures, animations and layers.csv."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    integrator: str = typer.Option("euler", help=INTEGRATOR_HELP),
    step_size_policy: str = typer.Option("fixed", help=POLICY_HELP),
    levels: int = typer.Option(1, help=LEVELS_HELP),
):
    """Train a width-2 network on 2-D data and draw its features layer by layer (paper Figs. 2-7)."""
    from .experiments.propagation import (
        FigurePreset, PropagationConfig, check_layers, default_layers, figure_preset, parse_layers,
        run_propagation, write_records,
    )
    from .viz.propagation import AXES_MODES, frame_layers, write_propagation_figures

    # Everything is checked before training, and nothing is written before it succeeds.
    base = figure_preset(figure) if figure is not None else FigurePreset("plain", 1.0, 100)
    axes_modes = AXES_MODES if axes == "both" else (axes,)
    if axes not in (*AXES_MODES, "both"):
        raise ConfigError(f"unknown axes mode {axes!r}; expected scaled, fixed or both")
    preset = _preset_or_none(data)
    config = PropagationConfig(
        block=block if block is not None else base.block,
        step_size=step_size if step_size is not None else base.step_size,
        depth=depth if depth is not None else base.depth,
        data=data, n_samples=n_samples, noise=noise,
        epochs=epochs if epochs is not None else (preset.epochs if preset else 100),
        batch_size=batch_size if batch_size is not None else (preset.batch_size if preset else 32),
        learning_rate=learning_rate, activation=activation, seed=seed,
        integrator=integrator, step_size_policy=step_size_policy, levels=levels,
    )
    grid_layers = check_layers(parse_layers(layers), config.depth) if layers is not None else default_layers(config.depth)
    frame_layers(config.depth, frames)  # validates
    device = resolve_device(device)

    label = f"{config.block} h={config.step_size:g} depth {config.depth}"
    label += _beyond_label(integrator, step_size_policy, levels)
    total_epochs = config.epochs * levels
    with epoch_progress(total_epochs, "propagate") as progress:
        task = progress.add_task(label, total=total_epochs, loss="-")
        record = run_propagation(
            config, device=device,
            on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{loss[0]:.4f}"),
        )
    out.mkdir(parents=True, exist_ok=True)
    written = write_records(record, out)
    with console.status("drawing figures and animations"):
        written += write_propagation_figures(record, out, grid_layers, axes_modes, animate=animate, max_frames=frames)

    table = Table(title=f"{data}: {label}" + (f" (paper figure {figure})" if figure is not None else ""))
    for column in ("layer", "head accuracy", "probe accuracy", "max |y|"):
        table.add_column(column, justify="right")
    for layer in grid_layers:
        table.add_row(str(layer), f"{record.head_accuracy[layer]:.3f}", f"{record.probe_accuracy[layer]:.3f}",
                      f"{record.max_abs_feature[layer]:.3g}")
    console.print(table)
    if record.diverged:
        console.print("[yellow]training diverged[/]: drawn with the last finite weights")
    if record.first_nonfinite_layer >= 0:
        console.print(f"[yellow]features are non-finite from layer {record.first_nonfinite_layer}[/]")
    console.print(f"test accuracy {record.test_accuracy:.4f}; wrote {len(written)} files to {out}")


@app.command()
@user_errors
def drift(
    data: str = typer.Option(..., help="Transactions CSV/Parquet file, synthetic-btc or elec2."),
    train_until: str = typer.Option(..., help="Train on rows before this date (2014-01, UTC) or period index (12)."),
    blocks: str = typer.Option("plain,shrinkage,batchnorm", help="Comma-separated blocks."),
    step_sizes: str = typer.Option("0.1,1", help="h grid: start:stop:step or a list."),
    trials: int = typer.Option(5, help="Trials (seeds) per (block, h) [paper: 5]."),
    depth: int = typer.Option(128, help="Residual blocks [paper: 128]."),
    width: int = typer.Option(32, help="Block width [paper: 32]."),
    epochs: int = typer.Option(100, help="Epochs [paper: 100]."),
    batch_size: int = typer.Option(100_000, help="Mini-batch size [paper: 100000]."),
    learning_rate: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    rows: int = typer.Option(1_000_000, help="Rows of synthetic-btc (drawn with --seed)."),
    period: str = typer.Option("month", help="month or week (elec2: 28 or 7 days)."),
    time_feature: bool = typer.Option(False, help="Use the time stamp as a feature (months since start)."),
    plot_h: str = typer.Option("0.1,1", help="h values drawn in the over-time figure (all if none match)."),
    seed: int = typer.Option(0, help="Seed of the trials (and of synthetic-btc)."),
    out: Optional[Path] = typer.Option(None, help="Results folder [results/drift-NAME]."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """Train on a time window, then test on every later period (paper Figs. 14-15); resumable."""
    from .experiments.drift import DriftConfig, run_drift, save_drift
    from .experiments.sweep import parse_step_sizes
    from .viz.drift import plot_drift, summarize_drift
    from .viz.sweep import plot_sweep, summarize

    config = DriftConfig(
        data=data, train_until=train_until, blocks=tuple(b.strip() for b in blocks.split(",") if b.strip()),
        step_sizes=parse_step_sizes(step_sizes), trials=trials, depth=depth, width=width, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, seed=seed, rows=rows, period=period,
        time_feature=time_feature,
    )
    shown_h = [h for h in parse_step_sizes(plot_h) if h in config.step_sizes] or None
    device = resolve_device(device)
    out = out or Path("results") / f"drift-{Path(data).stem}"
    with epoch_progress(epochs, "drift") as progress:
        task = progress.add_task("loading data", total=epochs, loss="-")

        def on_block(block, index, n_blocks):
            progress.update(task, completed=0, description=f"block {index + 1}/{n_blocks} {block}")

            def on_epoch(epoch, loss):
                progress.update(task, completed=epoch + 1,
                                loss=f"{np.nanmean(loss):.4f}" if np.isfinite(loss).any() else "nan")

            return on_epoch

        result = run_drift(config, device=device, progress=on_block, directory=out)
    written = save_drift(out, config, result)
    unit = {"month": "month", "week": "week"}[period] if result.data.has_timestamps else f"{period} (row block)"
    figures = {"drift": plot_drift(result.periods, shown_h, period_unit=unit), "sweep": plot_sweep(result.sweep)}
    for name, figure in figures.items():
        for suffix in ("png", "svg"):
            path = out / f"{name}.{suffix}"
            write_atomically(path, lambda p: figure.savefig(p, format=suffix, dpi=150))
            written.append(path)

    split = result.split
    console.print(f"{result.data.name}: trained on {split.n_train} rows (to {result.data.period_labels[split.last_train_period]}), "
                  f"tested on {split.n_test} rows in {len(split.test_periods)} later periods")
    _print_summary(summarize(result.sweep))
    over_time = summarize_drift(result.periods)
    table = Table(title="accuracy by periods after training: mean ± std over trials")
    table.add_column("block, h")
    after = sorted(over_time["periods_after"].unique())
    shown_after = after if len(after) <= 6 else [after[i] for i in np.linspace(0, len(after) - 1, 6).round().astype(int)]
    for k in shown_after:
        table.add_column(f"+{k}", justify="right")
    for (block, h), rows_ in over_time.groupby(["block", "h"], sort=False):
        cells = rows_.set_index("periods_after")
        table.add_row(f"{block} h={h:g}", *(f"{cells.loc[k, 'mean']:.3f}±{np.nan_to_num(cells.loc[k, 'std']):.2f}"
                                           for k in shown_after))
    console.print(table)
    console.print(f"wrote {', '.join(p.name for p in written)} to {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
