"""The ``diagnose`` command: stability diagnostics of trained networks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer
from rich.table import Table

from ..files import check_output_folder, write_atomically
from ..init import parse_init
from ..errors import ConfigError
from ..model import StableResNet
from ..train import TrainConfig, fit
from .common import (
    BATCH_SIZE_OPTION, DATASET_OPTION, DATA_OPTION, DEPTH_OPTION, DEVICE_OPTION, EPOCHS_OPTION, INIT_OPTION,
    INTEGRATOR_HELP, LEARNING_RATE_OPTION, ONE_HOT_OPTION, POLICY_HELP, TARGET_OPTION, TEST_SIZE_OPTION, WIDTH_OPTION,
    app, check_data_source, console, epoch_progress, initial_signal_line, load_data_source, preset_or_estimator,
    preset_or_none, resolve_device, user_errors,
)


def _diagnose_figures(spectra, eigenvalues, growth, robustness) -> dict:
    """Every diagnose figure, rebuilt from the tidy tables alone (the CSV files it writes)."""
    from matplotlib.figure import Figure

    from ..viz.diagnostics import plot_amplification, plot_eigenvalues, plot_growth, plot_robust_accuracy

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
    data: Optional[Path] = DATA_OPTION,
    target: Optional[str] = TARGET_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    test_size: float = TEST_SIZE_OPTION,
    one_hot: bool = ONE_HOT_OPTION,
    model_file: Optional[Path] = typer.Option(None, "--model", help="Diagnose this saved model instead of training."),
    block: list[str] = typer.Option(["plain"], help="Vector field to train; repeat for several."),
    step_size: list[float] = typer.Option([0.1], "--step-size", "-h", help="Step size h; repeat for several."),
    depth: Optional[int] = DEPTH_OPTION,
    width: Optional[int] = WIDTH_OPTION,
    epochs: Optional[int] = EPOCHS_OPTION,
    batch_size: Optional[int] = BATCH_SIZE_OPTION,
    learning_rate: Optional[float] = LEARNING_RATE_OPTION,
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
    device: str = DEVICE_OPTION,
    init: str = INIT_OPTION,
):
    """Jacobian spectra (Prop. 1-2), perturbation growth (eq. 4) and robust accuracy of trained networks."""
    import json

    import pandas as pd

    from ..diagnostics import initial_signal, layer_spectra, perturbation_growth, robust_accuracy
    from ..serialization import load_model
    from ..train import fit_standardization

    if isinstance(samples, bool) or samples < 1:
        raise ConfigError(f"--samples must be an integer ≥ 1; got {samples!r}")
    check_data_source(data, target, dataset)
    check_output_folder(out, "--out")

    def load(seed):
        return load_data_source(data, target, dataset, seed=seed, test_size=test_size, one_hot=one_hot)

    if len(set(step_size)) != len(step_size) or len(set(block)) != len(block):
        raise ConfigError(f"--block and --step-size values must be distinct; got {block} and {step_size}")
    device = resolve_device(device)
    parse_init(init)
    models, signals = [], []  # (block name, model); each one's signal at initialisation
    if model_file is not None:
        model, _, extra = load_model(model_file)
        seed = extra.get("params", {}).get("random_state", 0) if seed is None else seed
        loaded = load(seed)
        if model.in_features != loaded.n_features or model.n_classes != loaded.n_classes:
            codes = "one-hot" if one_hot else "ordinal"
            source = f"dataset {dataset!r}" if data is None else f"{str(data)!r} ({codes} codes)"
            raise ConfigError(
                f"{str(model_file)!r} expects {model.in_features} features and {model.n_classes} classes; "
                f"{source} has {loaded.n_features} and {loaded.n_classes}")
        models.append((model.block, model.to(device)))
        # The same network as its seed initialised it: its config, its standardisation, untrained weights.
        start = StableResNet(**model.config()).to(device)
        start.input_mean.copy_(model.input_mean)
        start.input_scale.copy_(model.input_scale)
        train_batch = extra.get("params", {}).get("batch_size") or batch_size or 32
        signals.append(initial_signal(start, torch.tensor(loaded.X_train), torch.tensor(loaded.y_train), train_batch))
    else:
        seed = 0 if seed is None else seed
        loaded = load(seed)
        preset = preset_or_none(dataset)
        settings = preset_or_estimator(preset, depth=depth, width=width, epochs=epochs, batch_size=batch_size,
                                       learning_rate=learning_rate)
        depth, width = settings["depth"], settings["width"]
        config = TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"],
                             learning_rate=settings["learning_rate"])
        X_train = torch.tensor(loaded.X_train, dtype=torch.float32)
        y_train = torch.tensor(loaded.y_train)
        for name in block:
            model = StableResNet(loaded.n_features, loaded.n_classes, depth, width,
                                 name, step_size, activation, seed=seed, integrator=integrator,
                                 step_size_policy=step_size_policy, init=init).to(device)
            fit_standardization(model, X_train.to(device),
                                torch.arange(len(X_train), device=device).expand(model.n_members, -1))
            signals.append(initial_signal(model, X_train, y_train, config.batch_size))
            with epoch_progress(config.epochs, "train") as progress:
                task = progress.add_task(f"{name} h={step_size}", total=config.epochs, loss="-")
                fit(model, X_train, y_train, config,
                    on_epoch=lambda epoch, loss: progress.update(task, completed=epoch + 1, loss=f"{np.nanmax(loss):.4f}"))
            models.append((name, model))

    rows = np.random.default_rng(seed).permutation(len(loaded.X_test))[:samples]
    X_sub = loaded.X_test[np.sort(rows)]
    spectra_rows, eigen_rows, growth_rows, robust_rows, summary = [], [], [], [], []
    for (name, model), signal in zip(models, signals):
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
                            "clean_accuracy": float(robust["noise"][m, 0]) if robust["sigma"][0] == 0 else None,
                            "init": model.init, "init_scale_ratio": float(signal.scale_ratio[m]),
                            "init_gradient_norm": float(signal.gradient_norm[m]), "init_state": signal.state[m]})
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
        "dataset": loaded.name, "data_file": str(data) if data else None, "target": target,
        "test_size": test_size, "one_hot": one_hot, "model_file": str(model_file) if model_file else None, "seed": seed,
        "models": [model.config() for _, model in models], "samples": len(X_sub), "sigma": sigma,
        "epsilon": epsilon, "growth_epsilon": growth_epsilon, "pgd_steps": pgd_steps, "summary": summary,
    }
    write_atomically(out / "summary.json", lambda tmp: tmp.write_text(json.dumps(record, indent=2, allow_nan=True)))
    for name, figure in _diagnose_figures(**tables).items():
        write_atomically(out / f"{name}.png", lambda tmp: figure.savefig(tmp, format="png", dpi=120))

    integrators = ", ".join(sorted({model.integrator for _, model in models}))
    table = Table(title=f"{loaded.name}: stability diagnostics, {integrators} ({len(X_sub)} test rows)",
                  caption="Φ: a block's map y ↦ step(F, y, h_i); for euler |eig ∂Φ/∂y| = |1 + hλ| (Prop. 1)")
    for column in ("block", "h", "max |eig ∂Φ/∂y|", "max Re λ", "|eig| ≤ 1", "c (eq. 4)", "clean acc."):
        table.add_column(column, justify="left" if column == "block" else "right")
    for row in summary:
        clean = "-" if row["clean_accuracy"] is None else f"{row['clean_accuracy']:.3f}"
        table.add_row(row["block"], f"{row['step_size']:g}", f"{row['max_amplification']:.4g}",
                      f"{row['max_real']:.3g}", f"{row['stable_fraction']:.1%}", f"{row['stability_constant']:.4g}", clean)
    console.print(table)
    for row in summary:
        console.print(f"{row['block']} h={row['step_size']:g}, init {row['init']}: "
                      + initial_signal_line([row["init_scale_ratio"]], [row["init_gradient_norm"]]))
    console.print(f"wrote records and figures to {out}")
