"""The ``propagate`` command: layer-by-layer pictures of 2-D data (paper Figures 2-7)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ..files import check_output_folder
from ..errors import ConfigError
from .common import (
    ACTIVATION_OPTION, DEVICE_OPTION, INIT_OPTION, INTEGRATOR_OPTION, LEVELS_OPTION, POLICY_OPTION, app,
    beyond_label, console, epoch_progress, initial_signal_line, preset_or_none, renamed_option, resolve_device,
    setting_option, user_errors,
)


def parse_layers(text: str) -> list[int]:
    """``"0,5,10"`` -> [0, 5, 10]; a piece that is not an integer is a `ConfigError`."""
    try:
        return [int(piece) for piece in text.split(",") if piece.strip()]
    except ValueError:
        raise ConfigError(f"--layers must be comma-separated integers like 0,5,10; got {text!r}") from None


@app.command()
@user_errors
def propagate(
    dataset: Optional[str] = typer.Option(None, help="A bundled 2-D dataset: circles, moons, spirals, xor [circles]."),
    data: Optional[str] = typer.Option(None, "--data", hidden=True, help="Deprecated: --dataset."),
    figure: Optional[int] = typer.Option(None, help="Paper figure 2-7; sets block, step size and depth (options given override it)."),
    block: Optional[str] = setting_option("block", default=None, note="figure preset, else plain"),
    step_size: Optional[float] = setting_option("step_size", "--step-size", "-h", default=None, note="figure preset, else 1"),
    depth: Optional[int] = setting_option("depth", default=None, note="figure preset, else the paper's 100"),
    layers: Optional[str] = typer.Option(None, help="Grid layers, e.g. 0,5,10 [0, 5, then every ceil(depth/10)-th]."),
    axes: str = typer.Option("both", help="Axes of grids and animations: scaled, fixed or both."),
    epochs: Optional[int] = setting_option("epochs", default=None, note="paper preset: 100"),
    batch_size: Optional[int] = setting_option("batch_size", default=None, note="paper preset: 32"),
    learning_rate: float = setting_option("learning_rate", "--lr", default=1e-3, note="the paper's Keras default"),
    activation: str = ACTIVATION_OPTION,
    n_samples: int = typer.Option(500, help="Training points (and as many test points)."),
    noise: float = typer.Option(0.1, help="Noise of the synthetic data."),
    seed: int = typer.Option(0, help="Seed of data, initialisation and mini-batch order."),
    seeds: int = typer.Option(1, help="Networks trained as one ensemble, seeds SEED ... SEED+N-1; pictures show the median."),
    animate: bool = typer.Option(True, help="Write the per-layer GIF and MP4."),
    frames: Optional[int] = typer.Option(None, help="Animation frames: this many layers evenly spread [every layer]."),
    out: Path = typer.Option(Path("propagation"), help="Folder for figures, animations and layers.csv."),
    device: str = DEVICE_OPTION,
    integrator: str = INTEGRATOR_OPTION,
    step_size_policy: str = POLICY_OPTION,
    levels: int = LEVELS_OPTION,
    init: str = INIT_OPTION,
    n_test: Optional[int] = typer.Option(None, help="Test points [as many as --n-samples]."),
):
    """Train a width-2 network on 2-D data and draw its features layer by layer (paper Figs. 2-7)."""
    from ..experiments.propagation import (
        FigurePreset, PropagationConfig, figure_preset, run_propagation_seeds, write_records,
    )
    from ..viz.propagation import AXES_MODES, check_layers, default_layers, frame_layers, write_propagation_figures

    # Everything is checked before training, and nothing is written before it succeeds.
    base = figure_preset(figure) if figure is not None else FigurePreset("plain", 1.0, 100)
    axes_modes = AXES_MODES if axes == "both" else (axes,)
    if axes not in (*AXES_MODES, "both"):
        raise ConfigError(f"unknown axes mode {axes!r}; expected scaled, fixed or both")
    data = renamed_option(dataset, data, "--dataset", "--data") or "circles"
    preset = preset_or_none(data)
    config = PropagationConfig(
        block=block if block is not None else base.block,
        step_size=step_size if step_size is not None else base.step_size,
        depth=depth if depth is not None else base.depth,
        data=data, n_samples=n_samples, noise=noise,
        epochs=epochs if epochs is not None else (preset.epochs if preset else 100),
        batch_size=batch_size if batch_size is not None else (preset.batch_size if preset else 32),
        learning_rate=learning_rate, activation=activation, seed=seed, seeds=seeds,
        integrator=integrator, step_size_policy=step_size_policy, levels=levels, init=init, n_test=n_test,
    )
    grid_layers = check_layers(parse_layers(layers), config.depth) if layers is not None else default_layers(config.depth)
    frame_layers(config.depth, frames)  # validates
    check_output_folder(out, "--out")
    device = resolve_device(device)

    label = f"{config.block} h={config.step_size:g} depth {config.depth}" + (f", {seeds} seeds" if seeds > 1 else "")
    label += beyond_label(integrator, step_size_policy, levels)
    total_epochs = config.epochs * levels
    with epoch_progress(total_epochs, "propagate") as progress:
        task = progress.add_task(label, total=total_epochs, loss="-")
        records = run_propagation_seeds(
            config, device=device,
            on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{np.nanmean(loss):.4f}"),
        )
    out.mkdir(parents=True, exist_ok=True)
    written = write_records(records, out)
    with console.status("drawing figures and animations"):
        written += write_propagation_figures(records, out, grid_layers, axes_modes, animate=animate, max_frames=frames)

    record = records.median
    drawn = f"seed {record.seed}" + (f", median of {seeds}" if seeds > 1 else "")
    table = Table(title=f"{data}: {label}" + (f" (paper figure {figure})" if figure is not None else "") + f"; {drawn}")
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
    if seeds > 1:
        accuracies = ", ".join(f"{m.test_accuracy:.3f}" for m in records.members)
        console.print(f"test accuracy of seeds {records.seeds[0]}-{records.seeds[-1]}: {accuracies}; "
                      f"k-NN ceiling median {np.nanmedian([m.knn_accuracy for m in records.members]):.3f}")
    console.print(initial_signal_line([m.init_scale_ratio for m in records.members],
                                      [m.init_gradient_norm for m in records.members]))
    console.print(f"test accuracy {record.test_accuracy:.4f} ({drawn}); wrote {len(written)} files to {out}")
