"""The ``tune`` command: choose block and step size h by cross-validation, refit, report and save.

A thin layer over :class:`stableresnet.tuning.StableResNetClassifierCV`, fitted on the train split.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from ..files import check_output_file, check_output_folder, write_atomically
from ..init import parse_init
from ..tuning import StableResNetClassifierCV, cv_results_frame
from .common import (
    BATCH_SIZE_OPTION, DATASET_OPTION, DATA_OPTION, DEPTH_OPTION, DEVICE_OPTION, EPOCHS_OPTION, INIT_OPTION,
    LEARNING_RATE_OPTION, ONE_HOT_OPTION, STEP_SIZES_HELP, TARGET_OPTION, WIDTH_OPTION, StepLog, app, check_data_source,
    console, load_data_source, parse_step_sizes, preset_or_estimator, preset_or_none, resolve_device, user_errors,
)

_DEFAULTS = {name: p.default for name, p in inspect.signature(StableResNetClassifierCV).parameters.items()}


@app.command()
@user_errors
def tune(
    data: Optional[Path] = DATA_OPTION,
    target: Optional[str] = TARGET_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    blocks: str = typer.Option(",".join(_DEFAULTS["blocks"]), help="Comma-separated blocks to compare."),
    step_sizes: Optional[str] = typer.Option(
        None, help=f"{STEP_SIZES_HELP} [paper preset, else 0.1:1.0:0.1]."),
    cv: int = typer.Option(_DEFAULTS["cv"], help="Cross-validation folds (stratified, shuffled with --seed)."),
    rule: str = typer.Option(_DEFAULTS["rule"], help="best: highest mean CV accuracy; one-se: the smallest h "
                             "within one standard error of it."),
    test_size: float = typer.Option(0.2, help="Test fraction held out from tuning, where the data has no official split."),
    one_hot: bool = ONE_HOT_OPTION,
    depth: Optional[int] = DEPTH_OPTION,
    width: Optional[int] = WIDTH_OPTION,
    epochs: Optional[int] = EPOCHS_OPTION,
    batch_size: Optional[int] = BATCH_SIZE_OPTION,
    learning_rate: Optional[float] = LEARNING_RATE_OPTION,
    seed: int = typer.Option(0, help="Seed of the test split, the folds, initialisation and mini-batch order."),
    save: Optional[Path] = typer.Option(None, help="Write the refit chosen model here (safetensors)."),
    out: Optional[Path] = typer.Option(None, help="Folder for cv_results.csv and tune.png [results/tune-NAME]."),
    device: str = DEVICE_OPTION,
    init: str = INIT_OPTION,
):
    """Cross-validate every (block, h), refit the chosen one on the train split, test it, save it."""
    from ..viz.tune import plot_tune

    check_data_source(data, target, dataset)
    parse_init(init)
    if save is not None:
        check_output_file(save, "--save")
    out = check_output_folder(out or Path("results") / f"tune-{dataset or data.stem}", "--out")

    preset = preset_or_none(dataset)
    settings = preset_or_estimator(preset, depth=depth, width=width, epochs=epochs, batch_size=batch_size,
                                   learning_rate=learning_rate)
    if step_sizes is not None:
        settings["step_sizes"] = parse_step_sizes(step_sizes)
    elif preset is not None:
        settings["step_sizes"] = preset.step_sizes
    search = StableResNetClassifierCV(
        blocks=tuple(b.strip() for b in blocks.split(",") if b.strip()), cv=cv, rule=rule,
        random_state=seed, device=resolve_device(device), init=init, **settings,
    )

    loaded = load_data_source(data, target, dataset, seed=seed, test_size=test_size, one_hot=one_hot)
    labels = np.array(loaded.class_names)
    n_members = len(search.blocks) * len(search.step_sizes) * cv
    with console.status(f"training {n_members} members ({len(search.blocks)} blocks × {len(search.step_sizes)} h × "
                        f"{cv} folds) on {len(loaded.y_train)} rows of {loaded.name}"):
        steps = StepLog()
        search.fit(loaded.X_train, labels[loaded.y_train], on_step=lambda step: (steps.begin(step), steps.end()))
    table = cv_results_frame(search)
    print_cv_table(table, search.rule)
    test_accuracy = search.score(loaded.X_test, labels[loaded.y_test])
    console.print(f"chosen: {search.best_block_} block, h = {search.best_step_size_:g} "
                  f"(CV accuracy {search.best_score_:.4f}), refit on {len(loaded.y_train)} rows")
    console.print(f"test accuracy {test_accuracy:.4f} on {len(loaded.y_test)} held-out rows")

    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "cv_results.csv", lambda p: table.to_csv(p, index=False))
    figure = plot_tune(table)
    write_atomically(out / "tune.png", lambda p: figure.savefig(p, dpi=150))
    console.print(f"wrote {out / 'cv_results.csv'} and {out / 'tune.png'}")
    if save is not None:
        search.save(save, schema=loaded.schema)
        console.print(f"saved model to {save}")


def print_cv_table(table, rule: str) -> None:
    """Mean ± std CV accuracy, one row per h and one column per block; the chosen cell marked ◀."""
    grid = Table(title=f"CV accuracy, mean ± std ({rule})")
    blocks = list(dict.fromkeys(table["block"]))
    grid.add_column("h", justify="right")
    for block in blocks:
        grid.add_column(block, justify="right")
    for h, rows in table.groupby("step_size"):
        by_block = rows.set_index("block")
        cells = []
        for block in blocks:
            row = by_block.loc[block]
            cells.append(f"{row['mean_test_score']:.3f} ± {row['std_test_score']:.3f}"
                         + (f" ({int(row['diverged_folds'])} div.)" if row["diverged_folds"] else "")
                         + (" ◀" if row["chosen"] else ""))
        grid.add_row(f"{h:g}", *cells)
    console.print(grid)
