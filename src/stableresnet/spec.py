"""The hyper-parameters, declared once: the network (`NetworkSpec`) and its training (`TrainingSpec`).

Each field holds its default (``StableResNetClassifier``'s, chosen by
``benchmarks/choose_defaults.py``) and its one-line help, and is checked in one place. The other
surfaces derive from these two: the estimators' parameters and defaults (``estimator``,
``tuning``), the sweep's and drift's network and training settings (``experiments.sweep``,
``experiments.drift``), the keys ``reproduce.toml`` accepts and the command line's options and
their help. `build_network` is the one function that makes a `~stableresnet.model.StableResNet`
from a spec, multi-level training's coarsest network included. ``tests/test_spec.py`` fails
when a surface drifts from the specs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .blocks import VECTOR_FIELDS
from .init import DEFAULT_INIT, parse_init
from .model import StableResNet, check_network, member_max_step_sizes
from .multilevel import coarsen
from .train import TrainConfig


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class NetworkSpec:
    """One network: ``depth`` blocks :math:`y_{i+1} = y_i + h_i F(y_i)` (eq. 3) of vector field ``block``."""

    depth: int = _setting(20, "Residual blocks.")
    width: int | None = _setting(32, "Block width, after a linear lift of the input; the paper keeps the number "
                                     "of features (width None: no lift).")
    block: str = _setting("plain", f"Vector field F: {', '.join(VECTOR_FIELDS)}.")
    step_size: float = _setting(0.1, "Step size h > 0 (h = 1 with the plain block: the vanilla ResNet).")
    activation: str = _setting("relu", "relu or tanh.")
    integrator: str = _setting("euler", "Step rule: euler, heun, midpoint, rk4 or leapfrog (hamiltonian block).")
    step_size_policy: str = _setting("fixed", "Block step sizes h_i: fixed (h, the paper), learnable in (0, h_max] "
                                              "or adaptive (min(h, 1/ρ̂_i)).")
    max_step_size: float | None = _setting(None, "h_max of the learnable policy (> h) [2h].")
    levels: int = _setting(1, "Multi-level depth: start at depth/2^(L−1) blocks and step 2^(L−1)·h, double the "
                              "blocks and halve h L−1 times; epochs per level.")
    init: str = _setting(DEFAULT_INIT, "Initial weights of the blocks' K1, K2: glorot, uniform (U(±0.05), Keras 2's "
                                       "'uniform'), normal (N(0, 0.05²)) or depth-scaled (Glorot / √depth); NAME:SCALE "
                                       "sets the gain, bound or σ (glorot:0.5, uniform:0.1).")

    def __post_init__(self):
        check_network(self.depth, self.width, self.block, [self.step_size], self.activation, self.integrator)
        member_max_step_sizes(self.max_step_size, [self.step_size], self.step_size_policy, 1)
        coarsen({"depth": self.depth, "step_size": self.step_size}, self.levels)
        parse_init(self.init)


@dataclass(frozen=True)
class TrainingSpec:
    """How the network trains: mini-batch ``optimizer`` steps on the mean cross-entropy (plus
    ``smoothness`` · Σ_i ‖K_{i+1} − K_i‖²)."""

    optimizer: str = _setting("adam", "adam or sgd.")
    learning_rate: float = _setting(1e-2, "Learning rate.")
    epochs: int = _setting(50, "Epochs (per level).")
    batch_size: int = _setting(32, "Mini-batch size.")
    smoothness: float = _setting(0.0, "λ of the inter-layer penalty λ Σ_i ‖K_{i+1} − K_i‖².")

    def __post_init__(self):
        self.train_config()

    def train_config(self, **engine) -> TrainConfig:
        """The engine's `~stableresnet.train.TrainConfig` (which checks the values) with ``engine``'s
        settings (``compile``, ``standardize``, ``adam_epsilon``) added."""
        return TrainConfig(self.epochs, self.batch_size, self.learning_rate, self.optimizer,
                           smoothness=self.smoothness, **engine)


NETWORK_SETTINGS = tuple(f.name for f in dataclasses.fields(NetworkSpec))
TRAINING_SETTINGS = tuple(f.name for f in dataclasses.fields(TrainingSpec))


def defaults(names: Sequence[str] = NETWORK_SETTINGS + TRAINING_SETTINGS) -> dict:
    """The specs' defaults of ``names`` (the estimator's)."""
    return {f.name: f.default for spec in (NetworkSpec, TrainingSpec) for f in dataclasses.fields(spec)
            if f.name in names}


def help_text(name: str) -> str:
    """A setting's one-line help, as its spec declares it."""
    return next(f.metadata["help"] for spec in (NetworkSpec, TrainingSpec) for f in dataclasses.fields(spec)
                if f.name == name)


def check_step_size_grid(step_sizes: Sequence[float]) -> None:
    """A grid of h (a sweep's, drift's, the CV search's): at least one value, each finite and > 0."""
    if not len(step_sizes):
        raise ConfigError("the list of step sizes h is empty")
    for h in step_sizes:
        if not np.isfinite(h) or h <= 0:
            raise ConfigError(f"step size h must be a finite number > 0; got {h!r}")


def build_network(spec: NetworkSpec, in_features: int, n_classes: int, seed: int | Sequence[int],
                  step_sizes: Sequence[float] | None = None, device: str = "cpu", **model_options) -> StableResNet:
    """The network ``spec`` trains first: the coarsest of its ``levels`` (depth D/2^(L−1) at step
    2^(L−1)·h, ``multilevel.coarsen``), or the network itself for one level.

    ``step_sizes`` gives one member per h (an ensemble; ``seed`` one per member or one for all),
    in place of ``spec.step_size``. ``model_options`` are the model's own settings that no
    surface exposes (``batch_norm_momentum``, ``batch_norm_eps``).
    """
    settings = {
        "in_features": in_features, "n_classes": n_classes, "depth": spec.depth, "width": spec.width,
        "block": spec.block, "step_size": list(step_sizes) if step_sizes is not None else spec.step_size,
        "activation": spec.activation, "integrator": spec.integrator, "seed": seed,
        "step_size_policy": spec.step_size_policy, "max_step_size": spec.max_step_size, "init": spec.init,
        **model_options,
    }
    return StableResNet(**coarsen(settings, spec.levels)).to(device)
