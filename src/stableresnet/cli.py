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
from .model import ConfigError, StableResNet
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
    block: str = typer.Option("plain", help="Vector field: plain, shrinkage or batchnorm."),
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
        preset = paper_preset(dataset)
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
    )
    model = StableResNet(
        loaded.n_features, loaded.n_classes, depth, width, block, step_size, activation, seed=seed
    ).to(resolve_device(device))
    X_train = torch.tensor(loaded.X_train, dtype=torch.float32)
    y_train = torch.tensor(loaded.y_train)
    with epoch_progress(config.epochs, "train") as progress:
        task = progress.add_task(f"{block} h={step_size:g} depth {depth}", total=config.epochs, loss="-")
        result = fit(
            model, X_train, y_train, config,
            on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{loss[0]:.4f}"),
        )
    train_metrics = evaluate(model, X_train, y_train)
    test_metrics = evaluate(model, torch.tensor(loaded.X_test, dtype=torch.float32), torch.tensor(loaded.y_test))

    table = Table(title=f"{loaded.name}: {block} block, h = {step_size:g}, depth {depth}, width {model.width}")
    for column in ("split", "rows", "accuracy", "loss"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split, metrics, n_rows in (("train", train_metrics, len(loaded.y_train)), ("test", test_metrics, len(loaded.y_test))):
        table.add_row(split, str(n_rows), f"{metrics['accuracy'][0]:.4f}", f"{metrics['loss'][0]:.4f}")
    console.print(table)
    if result.diverged[0]:
        console.print(f"[yellow]diverged[/] at epoch {result.diverged_epoch[0]}: evaluated with its last finite weights")
    if save is not None:
        params = {
            "depth": depth, "width": width, "block": block, "step_size": step_size, "activation": activation,
            "optimizer": optimizer, "learning_rate": learning_rate, "epochs": config.epochs,
            "batch_size": config.batch_size, "random_state": seed,
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
def propagate(
    data: str = typer.Option("circles", help="A 2-D data set: circles, moons, spirals or xor."),
    figure: Optional[int] = typer.Option(None, help="Paper figure 2-7; sets block, step size and depth (options given override it)."),
    block: Optional[str] = typer.Option(None, help="plain, shrinkage or batchnorm [figure preset, else plain]."),
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
    out: Path = typer.Option(Path("propagation"), help="Folder for figures, animations and layers.csv."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
):
    """Train a width-2 network on 2-D data and draw its features layer by layer (paper Figs. 2-7)."""
    from .experiments.propagation import (
        FigurePreset, PropagationConfig, check_layers, default_layers, figure_preset, parse_layers,
        run_propagation, write_records,
    )
    from .viz.propagation import AXES_MODES, write_propagation_figures

    # Everything is checked before training, and nothing is written before it succeeds.
    base = figure_preset(figure) if figure is not None else FigurePreset("plain", 1.0, 100)
    axes_modes = AXES_MODES if axes == "both" else (axes,)
    if axes not in (*AXES_MODES, "both"):
        raise ConfigError(f"unknown axes mode {axes!r}; expected scaled, fixed or both")
    try:
        preset = paper_preset(data)
    except DataError:
        preset = None
    config = PropagationConfig(
        block=block if block is not None else base.block,
        step_size=step_size if step_size is not None else base.step_size,
        depth=depth if depth is not None else base.depth,
        data=data, n_samples=n_samples, noise=noise,
        epochs=epochs if epochs is not None else (preset.epochs if preset else 100),
        batch_size=batch_size if batch_size is not None else (preset.batch_size if preset else 32),
        learning_rate=learning_rate, activation=activation, seed=seed,
    )
    StableResNet(2, 2, config.depth, None, config.block, config.step_size, config.activation)  # validates
    TrainConfig(config.epochs, config.batch_size, config.learning_rate)  # validates
    grid_layers = check_layers(parse_layers(layers), config.depth) if layers is not None else default_layers(config.depth)
    device = resolve_device(device)

    label = f"{config.block} h={config.step_size:g} depth {config.depth}"
    with epoch_progress(config.epochs, "propagate") as progress:
        task = progress.add_task(label, total=config.epochs, loss="-")
        record = run_propagation(
            config, device=device,
            on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{loss[0]:.4f}"),
        )
    out.mkdir(parents=True, exist_ok=True)
    written = write_records(record, out)
    with console.status("drawing figures and animations"):
        written += write_propagation_figures(record, out, grid_layers, axes_modes, animate=animate)

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


def main() -> None:
    app()
