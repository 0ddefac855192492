"""The ``diagnose`` command: stability diagnostics of trained networks."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ..errors import ConfigError
from ..files import check_output_folder
from ..init import parse_init
from .common import (
    ACTIVATION_OPTION, BATCH_SIZE_OPTION, DATASET_OPTION, DATA_OPTION, DEPTH_OPTION, DEVICE_OPTION, EPOCHS_OPTION,
    INIT_OPTION, INTEGRATOR_OPTION, LEARNING_RATE_OPTION, ONE_HOT_OPTION, POLICY_OPTION, STEP_SIZES_HELP,
    TARGET_OPTION, TEST_SIZE_OPTION, WIDTH_OPTION, app, check_data_source, console, epoch_progress,
    initial_signal_line, parse_step_sizes, preset_or_estimator, preset_or_none, renamed_option, resolve_device,
    user_errors,
)


@app.command()
@user_errors
def diagnose(
    data: Optional[Path] = DATA_OPTION,
    target: Optional[str] = TARGET_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    test_size: float = TEST_SIZE_OPTION,
    one_hot: bool = ONE_HOT_OPTION,
    model_file: Optional[Path] = typer.Option(None, "--model", help="Diagnose this saved model instead of training."),
    blocks: Optional[str] = typer.Option(None, help="Comma-separated vector fields to train [plain]."),
    step_sizes: Optional[str] = typer.Option(None, help=f"{STEP_SIZES_HELP}; one ensemble member per h [0.1]."),
    block: list[str] = typer.Option([], "--block", hidden=True, help="Deprecated: --blocks."),
    step_size: list[float] = typer.Option([], "--step-size", "-h", hidden=True, help="Deprecated: --step-sizes."),
    depth: Optional[int] = DEPTH_OPTION,
    width: Optional[int] = WIDTH_OPTION,
    epochs: Optional[int] = EPOCHS_OPTION,
    batch_size: Optional[int] = BATCH_SIZE_OPTION,
    learning_rate: Optional[float] = LEARNING_RATE_OPTION,
    activation: str = ACTIVATION_OPTION,
    integrator: str = INTEGRATOR_OPTION,
    step_size_policy: str = POLICY_OPTION,
    seed: Optional[int] = typer.Option(None, help="Seed of split and initialisation [a --model's own, else 0]."),
    samples: int = typer.Option(256, help="Test rows (a seeded subset) for spectra and perturbation growth."),
    sigma: list[float] = typer.Option([0.0, 0.1, 0.2, 0.5, 1.0], help="Gaussian noise levels (standardised units)."),
    epsilon: list[float] = typer.Option([0.0, 0.05, 0.1, 0.2, 0.5], help="FGSM/PGD radii (standardised L∞)."),
    growth_epsilon: float = typer.Option(1e-3, help="Layer-0 perturbation size for eq. 4."),
    pgd_steps: int = typer.Option(10, help="PGD iterations."),
    out: Path = typer.Option(Path("diagnostics"), help="Folder for the CSV/JSON records and PNG figures."),
    device: str = DEVICE_OPTION,
    init: str = INIT_OPTION,
):
    """Jacobian spectra (Prop. 1-2), perturbation growth (eq. 4) and robust accuracy of trained networks."""
    from ..experiments.diagnose import DiagnosisConfig, run_diagnosis, save_diagnosis

    blocks = renamed_option(blocks, ",".join(block) or None, "--blocks", "--block (repeated)")
    step_sizes = renamed_option(step_sizes, ",".join(map(repr, step_size)) or None, "--step-sizes",
                                "-h/--step-size (repeated)")
    block_names = [name.strip() for name in ("plain" if blocks is None else blocks).split(",") if name.strip()]
    h_grid = parse_step_sizes("0.1" if step_sizes is None else step_sizes)
    if isinstance(samples, bool) or samples < 1:
        raise ConfigError(f"--samples must be an integer ≥ 1; got {samples!r}")
    check_data_source(data, target, dataset)
    check_output_folder(out, "--out")
    if not block_names or not h_grid:
        raise ConfigError("--blocks and --step-sizes need at least one value each")
    if len(set(h_grid)) != len(h_grid) or len(set(block_names)) != len(block_names):
        raise ConfigError(f"--blocks and --step-sizes values must be distinct; got {block_names} and {list(h_grid)}")
    device = resolve_device(device)
    parse_init(init)
    if model_file is None:
        settings = preset_or_estimator(preset_or_none(dataset), depth=depth, width=width, epochs=epochs,
                                       batch_size=batch_size, learning_rate=learning_rate)
    else:
        settings = {"batch_size": batch_size}  # for the signal at initialisation, where the model recorded none
    config = DiagnosisConfig(
        dataset=dataset, data_file=data, target=target, test_size=test_size, one_hot=one_hot, model_file=model_file,
        blocks=tuple(block_names), step_sizes=h_grid, activation=activation, integrator=integrator,
        step_size_policy=step_size_policy, init=init, seed=seed, samples=samples, sigma=tuple(sigma),
        epsilon=tuple(epsilon), growth_epsilon=growth_epsilon, pgd_steps=pgd_steps, **settings,
    )

    @contextlib.contextmanager
    def training_progress(name, epochs):
        with epoch_progress(epochs, "train") as progress:
            task = progress.add_task(f"{name} h={list(h_grid)}", total=epochs, loss="-")
            yield lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{np.nanmax(loss):.4f}")

    diagnosis = run_diagnosis(config, device, training_progress)
    save_diagnosis(out, diagnosis)

    record = diagnosis.record
    integrators = ", ".join(sorted({model["integrator"] for model in record["models"]}))
    table = Table(title=f"{record['dataset']}: stability diagnostics, {integrators} ({record['samples']} test rows)",
                  caption="Φ: a block's map y ↦ step(F, y, h_i); for euler |eig ∂Φ/∂y| = |1 + hλ| (Prop. 1)")
    for column in ("block", "h", "max |eig ∂Φ/∂y|", "max Re λ", "|eig| ≤ 1", "c (eq. 4)", "clean acc."):
        table.add_column(column, justify="left" if column == "block" else "right")
    for row in record["summary"]:
        clean = "-" if row["clean_accuracy"] is None else f"{row['clean_accuracy']:.3f}"
        table.add_row(row["block"], f"{row['step_size']:g}", f"{row['max_amplification']:.4g}",
                      f"{row['max_real']:.3g}", f"{row['stable_fraction']:.1%}", f"{row['stability_constant']:.4g}", clean)
    console.print(table)
    for row in record["summary"]:
        console.print(f"{row['block']} h={row['step_size']:g}, init {row['init']}: "
                      + initial_signal_line([row["init_scale_ratio"]], [row["init_gradient_norm"]]))
    console.print(f"wrote records and figures to {out}")
