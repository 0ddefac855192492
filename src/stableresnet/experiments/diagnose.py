"""Stability diagnostics of trained networks as tidy tables: per-layer Jacobian spectra (Propositions
1-2), perturbation growth (eq. 4) and accuracy under Gaussian noise, FGSM and PGD.

`run_diagnosis` trains one network per block, with one member per step size h (or takes a saved
model), and measures every member on the test split. `save_diagnosis` writes the four tables as
CSV files, the record as ``summary.json`` and the figures, which
``stableresnet.viz.diagnostics.plot_diagnosis`` draws from the tables alone.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import Dataset, load_dataset, load_table
from ..diagnostics import InitialSignal, initial_signal, layer_spectra, perturbation_growth, robust_accuracy
from ..errors import ConfigError
from ..files import write_atomically
from ..model import StableResNet
from ..serialization import load_model
from ..spec import NetworkSpec, TrainingSpec, build_network
from ..train import fit, fit_standardization


@dataclass(frozen=True)
class DiagnosisConfig:
    """Everything that determines a diagnosis' numbers; recorded in ``summary.json``.

    The data is the bundled ``dataset`` or the file ``data_file`` with its ``target`` column, split
    with ``seed`` (None: a ``model_file``'s own ``random_state``, else 0). The networks are
    ``model_file``'s, or one per entry of ``blocks`` with one member per entry of ``step_sizes``,
    trained with the network and training settings (defaults: the specs'). ``samples`` test
    rows (a seeded subset) give the spectra and the perturbation growth (of size
    ``growth_epsilon``); all test rows give the accuracy at each noise level ``sigma`` and each
    FGSM/PGD radius ``epsilon`` (``pgd_steps`` iterations).
    """

    dataset: str | None = None
    data_file: Path | None = None
    target: str | None = None
    test_size: float = 0.2
    one_hot: bool = False
    model_file: Path | None = None
    blocks: tuple[str, ...] = ("plain",)
    step_sizes: tuple[float, ...] = (0.1,)
    depth: int = NetworkSpec.depth
    width: int | None = NetworkSpec.width
    epochs: int = TrainingSpec.epochs
    batch_size: int | None = None  # None: a model_file's own, else the spec's
    learning_rate: float = TrainingSpec.learning_rate
    activation: str = NetworkSpec.activation
    integrator: str = NetworkSpec.integrator
    step_size_policy: str = NetworkSpec.step_size_policy
    init: str = NetworkSpec.init
    seed: int | None = None
    samples: int = 256
    sigma: tuple[float, ...] = (0.0, 0.1, 0.2, 0.5, 1.0)
    epsilon: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.5)
    growth_epsilon: float = 1e-3
    pgd_steps: int = 10

    def load(self, seed: int) -> Dataset:
        """The split of the configured data with ``seed``."""
        if self.data_file is not None:
            return load_table(self.data_file, self.target, seed=seed, test_size=self.test_size, one_hot=self.one_hot)
        return load_dataset(self.dataset, seed=seed, test_size=self.test_size, one_hot=self.one_hot)


@dataclass
class Diagnosis:
    """A diagnosis' records: ``tables`` (spectra, eigenvalues, growth, robustness; tidy, one row per
    member and layer, sample or level) and ``record`` (``summary.json``: the data, the networks'
    configs, the settings and one ``summary`` row per member)."""

    tables: dict[str, pd.DataFrame]
    record: dict


# Entered while a network trains, with its block and epochs; yields its on_epoch(epoch, loss_per_member).
TrainingProgress = Callable[[str, int], AbstractContextManager[Callable[[int, np.ndarray], None]]]


def _saved_network(config: DiagnosisConfig, device: str) -> tuple[int, Dataset, StableResNet, InitialSignal]:
    """The seed, data split, model and signal at initialisation of ``config.model_file``."""
    model, _, extra = load_model(config.model_file)
    params = extra.get("params", {})
    seed = params.get("random_state", 0) if config.seed is None else config.seed
    data = config.load(seed)
    if model.in_features != data.n_features or model.n_classes != data.n_classes:
        codes = "one-hot" if config.one_hot else "ordinal"
        source = (f"dataset {config.dataset!r}" if config.data_file is None
                  else f"{str(config.data_file)!r} ({codes} codes)")
        raise ConfigError(
            f"{str(config.model_file)!r} expects {model.in_features} features and {model.n_classes} classes; "
            f"{source} has {data.n_features} and {data.n_classes}")
    model = model.to(device)
    # The same network as its seed initialised it: its config, its standardisation, untrained weights.
    start = StableResNet(**model.config()).to(device)
    start.input_mean.copy_(model.input_mean)
    start.input_scale.copy_(model.input_scale)
    batch_size = params.get("batch_size") or config.batch_size or TrainingSpec.batch_size
    signal = initial_signal(start, torch.tensor(data.X_train), torch.tensor(data.y_train), batch_size)
    return seed, data, model, signal


def _trained_networks(config: DiagnosisConfig, data: Dataset, seed: int, device: str,
                      progress: TrainingProgress | None) -> list[tuple[StableResNet, InitialSignal]]:
    """One network per block, a member per h, each with its signal at initialisation."""
    training = TrainingSpec(learning_rate=config.learning_rate, epochs=config.epochs,
                            batch_size=config.batch_size or TrainingSpec.batch_size).train_config()
    X_train = torch.tensor(data.X_train, dtype=torch.float32)
    y_train = torch.tensor(data.y_train)
    networks = []
    for block in config.blocks:
        spec = NetworkSpec(depth=config.depth, width=config.width, block=block,
                           step_size=config.step_sizes[0], activation=config.activation,
                           integrator=config.integrator, step_size_policy=config.step_size_policy, init=config.init)
        model = build_network(spec, data.n_features, data.n_classes, seed, step_sizes=list(config.step_sizes),
                              device=device)
        fit_standardization(model, X_train.to(device),
                            torch.arange(len(X_train), device=device).expand(model.n_members, -1))
        signal = initial_signal(model, X_train, y_train, training.batch_size)
        with progress(block, training.epochs) if progress else contextlib.nullcontext() as on_epoch:
            fit(model, X_train, y_train, training, on_epoch=on_epoch)
        networks.append((model, signal))
    return networks


def run_diagnosis(config: DiagnosisConfig, device: str = "cpu", progress: TrainingProgress | None = None) -> Diagnosis:
    """Train (or load) the configured networks and measure every member; the tables and record.

    Nothing is written; `save_diagnosis` does that.
    """
    if config.model_file is not None:
        seed, data, model, signal = _saved_network(config, device)
        networks = [(model, signal)]
    else:
        seed = 0 if config.seed is None else config.seed
        data = config.load(seed)
        networks = _trained_networks(config, data, seed, device, progress)

    rows = np.random.default_rng(seed).permutation(len(data.X_test))[:config.samples]
    X_sub = data.X_test[np.sort(rows)]
    spectra_rows, eigen_rows, growth_rows, robust_rows, summary = [], [], [], [], []
    for model, signal in networks:
        spectra = layer_spectra(model, X_sub)
        growth = perturbation_growth(model, X_sub, config.growth_epsilon, seed=seed)
        robust = robust_accuracy(model, data.X_test, data.y_test, list(config.sigma), list(config.epsilon),
                                 config.pgd_steps, seed=seed)
        shown = sorted({0, model.depth // 2, model.depth - 1})  # first, middle and last block
        for m, h in enumerate(spectra.step_size.tolist()):
            key = {"block": model.block, "integrator": model.integrator, "step_size": h}
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
    record = {
        "dataset": data.name, "data_file": str(config.data_file) if config.data_file else None,
        "target": config.target, "test_size": config.test_size, "one_hot": config.one_hot,
        "model_file": str(config.model_file) if config.model_file else None, "seed": seed,
        "models": [model.config() for model, _ in networks], "samples": len(X_sub), "sigma": list(config.sigma),
        "epsilon": list(config.epsilon), "growth_epsilon": config.growth_epsilon, "pgd_steps": config.pgd_steps,
        "summary": summary,
    }
    return Diagnosis(tables, record)


def save_diagnosis(directory: str | Path, diagnosis: Diagnosis) -> list[Path]:
    """Write the tables (``NAME.csv``), the record (``summary.json``) and the figures drawn from the
    tables (``NAME.png``) into ``directory``, each file whole or not at all; returns their paths."""
    from ..viz.diagnostics import plot_diagnosis

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [write_atomically(directory / f"{name}.csv", lambda tmp: table.to_csv(tmp, index=False))
               for name, table in diagnosis.tables.items()]
    text = json.dumps(diagnosis.record, indent=2, allow_nan=True)
    written.append(write_atomically(directory / "summary.json", lambda tmp: tmp.write_text(text)))
    for name, figure in plot_diagnosis(**diagnosis.tables).items():
        written.append(write_atomically(directory / f"{name}.png",
                                        lambda tmp: figure.savefig(tmp, format="png", dpi=120)))
    return written
