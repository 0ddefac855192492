"""The ``train`` and ``datasets`` commands: train one network, list the bundled datasets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.table import Table

from ..data import describe_datasets
from ..files import check_output_file
from ..multilevel import fit_multilevel
from ..serialization import save_model
from ..spec import NetworkSpec, TrainingSpec, build_network
from ..train import evaluate
from .common import (
    ACTIVATION_OPTION, BATCH_SIZE_OPTION, DATASET_OPTION, DATA_OPTION, DEPTH_OPTION, DEVICE_OPTION, EPOCHS_OPTION,
    INIT_OPTION, INTEGRATOR_OPTION, LEARNING_RATE_OPTION, LEVELS_OPTION, ONE_HOT_OPTION, OPTIMIZER_OPTION,
    POLICY_OPTION, SMOOTHNESS_OPTION, TARGET_OPTION, TEST_SIZE_OPTION, WIDTH_OPTION, app, beyond_label, console,
    epoch_progress, load_data_source, preset_or_estimator, preset_or_none, resolve_device, setting_option,
    user_errors,
)


@app.command()
@user_errors
def train(
    data: Optional[Path] = DATA_OPTION,
    target: Optional[str] = TARGET_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    block: str = setting_option("block"),
    step_size: float = setting_option("step_size", "--step-size", "-h"),
    depth: Optional[int] = DEPTH_OPTION,
    width: Optional[int] = WIDTH_OPTION,
    epochs: Optional[int] = EPOCHS_OPTION,
    batch_size: Optional[int] = BATCH_SIZE_OPTION,
    learning_rate: Optional[float] = LEARNING_RATE_OPTION,
    optimizer: str = OPTIMIZER_OPTION,
    activation: str = ACTIVATION_OPTION,
    seed: int = typer.Option(0, help="Seed of split, initialisation and mini-batch order."),
    test_size: float = TEST_SIZE_OPTION,
    one_hot: bool = ONE_HOT_OPTION,
    save: Optional[Path] = typer.Option(None, help="Write the trained model here (safetensors)."),
    device: str = DEVICE_OPTION,
    integrator: str = INTEGRATOR_OPTION,
    step_size_policy: str = POLICY_OPTION,
    smoothness: float = SMOOTHNESS_OPTION,
    levels: int = LEVELS_OPTION,
    init: str = INIT_OPTION,
):
    """Train one network and print its train and test accuracy."""
    if save is not None:
        check_output_file(save, "--save")
    loaded = load_data_source(data, target, dataset, seed=seed, test_size=test_size, one_hot=one_hot)
    preset = preset_or_none(dataset)
    settings = preset_or_estimator(preset, depth=depth, width=width, epochs=epochs, batch_size=batch_size,
                                   learning_rate=learning_rate)
    # StableResNetClassifier.fit's specs and steps (build_network, fit_multilevel), on the data's own split.
    training = TrainingSpec(optimizer=optimizer, learning_rate=settings["learning_rate"], epochs=settings["epochs"],
                            batch_size=settings["batch_size"], smoothness=smoothness)
    network = NetworkSpec(depth=settings["depth"], width=settings["width"], block=block, step_size=step_size,
                          activation=activation, integrator=integrator, step_size_policy=step_size_policy,
                          levels=levels, init=init)
    model = build_network(network, loaded.n_features, loaded.n_classes, seed, device=resolve_device(device))
    X_train = torch.tensor(loaded.X_train, dtype=torch.float32)
    y_train = torch.tensor(loaded.y_train)
    total_epochs = training.epochs * levels
    with epoch_progress(total_epochs, "train") as progress:
        task = progress.add_task(f"{block} h={step_size:g} depth {network.depth}", total=total_epochs, loss="-")
        model, result = fit_multilevel(
            model, X_train, y_train, training.train_config(), levels,
            on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{loss[0]:.4f}"),
        )
    train_metrics = evaluate(model, X_train, y_train)
    test_metrics = evaluate(model, torch.tensor(loaded.X_test, dtype=torch.float32), torch.tensor(loaded.y_test))

    table = Table(title=f"{loaded.name}: {block} block, h = {step_size:g}, depth {network.depth}, width {model.width}"
                        + beyond_label(integrator, step_size_policy, levels))
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
        params = {**dataclasses.asdict(network), **dataclasses.asdict(training), "random_state": seed}
        save_model(save, model, classes=list(loaded.class_names),
                   extra={"params": params, "feature_names": list(loaded.feature_names)}, schema=loaded.schema)
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
