"""Layer-by-layer feature propagation on 2-D data (Zhang & Wynter 2018, Figures 2-7).

A network of width 2 without a lift keeps every layer's features in the plane, so the
trajectory y_0, ..., y_depth of the test points can be looked at directly. This module
trains such a network and records, per layer i:

- the test points' features y_i (the pictures);
- ``head_accuracy``: the trained head applied to y_i (at i = depth this *is* the model's
  test accuracy);
- ``probe_accuracy``: a logistic regression fitted on the training points' y_i and scored
  on the test points' y_i (how linearly separable layer i is, whatever the head thinks);
- ``max_abs_feature``: max |y_i| over test points and coordinates (divergence or shrinkage);
- ``mean_step_norm``: mean over test points of ||y_i - y_{i-1}|| (smoothness; NaN at i = 0).

Only arrays come out (`Propagation`); drawing is ``stableresnet.viz.propagation``.
Plain h = 1 can overflow to inf/NaN at deep layers: that is recorded
(``first_nonfinite_layer``), never raised. No matplotlib is imported here.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data import DataError, dataset_names, load_dataset
from ..files import write_atomically
from ..model import ConfigError, StableResNet
from ..multilevel import coarsen, coarsest_model, fit_multilevel
from ..train import TrainConfig, evaluate


@dataclass(frozen=True)
class FigurePreset:
    """The network behind one of the paper's propagation pictures."""

    block: str
    step_size: float
    depth: int


# The paper's six pictures, the only place this table lives. Depth 500 for h = 0.1 is the
# paper's "deeper network" (presets.toml: synthetic.deep_depth).
FIGURE_PRESETS = {
    2: FigurePreset(block="plain", step_size=1.0, depth=100),
    3: FigurePreset(block="plain", step_size=0.1, depth=500),
    4: FigurePreset(block="shrinkage", step_size=1.0, depth=100),
    5: FigurePreset(block="shrinkage", step_size=0.1, depth=500),
    6: FigurePreset(block="batchnorm", step_size=1.0, depth=100),
    7: FigurePreset(block="batchnorm", step_size=0.1, depth=500),
}


def figure_preset(number: int) -> FigurePreset:
    """The preset of paper figure ``number`` (2-7); anything else is a `ConfigError`."""
    if number not in FIGURE_PRESETS:
        raise ConfigError(f"unknown figure {number!r}; propagation figures are {sorted(FIGURE_PRESETS)}")
    return FIGURE_PRESETS[number]


def default_layers(depth: int) -> list[int]:
    """The layers shown in a grid: 0, 5, then every ``ceil(depth / 10)``-th layer up to ``depth``.

    This reproduces the paper's choice, 0, 5, 10, 20, ..., 100 for 100 layers and
    0, 5, 50, 100, ..., 500 for 500 layers, and gives at most 12 panels for any depth
    (layer 5 is left out where it is beyond ``depth``; ``depth`` itself is always shown).

    >>> default_layers(100)[:4], default_layers(500)[:4], default_layers(4)
    ([0, 5, 10, 20], [0, 5, 50, 100], [0, 1, 2, 3, 4])
    """
    stride = max(1, math.ceil(depth / 10))
    return sorted({0, depth, *(k for k in (5,) if k <= depth), *range(stride, depth + 1, stride)})


def check_layers(layers, depth: int) -> list[int]:
    """Sorted unique layer indices, each in [0, depth]; otherwise a `ConfigError` naming the bad one."""
    layers = list(layers)
    if not layers:
        raise ConfigError("at least one layer must be shown")
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise ConfigError(f"layers must be integers; got {layer!r}")
        if layer < 0:
            raise ConfigError(f"layer {layer} is negative; layers run from 0 (the input) to the depth")
        if layer > depth:
            raise ConfigError(f"layer {layer} is beyond the depth {depth}; layers run from 0 to {depth}")
    return sorted({int(layer) for layer in layers})


def parse_layers(text: str) -> list[int]:
    """``"0,5,10"`` -> [0, 5, 10]; a piece that is not an integer is a `ConfigError`."""
    try:
        return [int(piece) for piece in text.split(",") if piece.strip()]
    except ValueError:
        raise ConfigError(f"--layers must be comma-separated integers like 0,5,10; got {text!r}") from None


@dataclass(frozen=True)
class PropagationConfig:
    """Everything that determines a propagation run; the same seed gives the same arrays."""

    block: str = "plain"
    step_size: float = 1.0
    depth: int = 100
    data: str = "circles"
    n_samples: int = 500
    noise: float = 0.1
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    activation: str = "relu"
    seed: int = 0
    integrator: str = "euler"
    step_size_policy: str = "fixed"
    levels: int = 1  # multi-level depth: ``depth`` and ``step_size`` are the finest level's

    def __post_init__(self):
        """Check the network and training settings now, so nothing runs or is written with bad ones."""
        network = StableResNet(2, 2, self.depth, None, self.block, self.step_size, self.activation,
                               integrator=self.integrator, step_size_policy=self.step_size_policy)
        coarsen(network.config(), self.levels)
        TrainConfig(self.epochs, self.batch_size, self.learning_rate, self.optimizer)


@dataclass(eq=False)
class Propagation:
    """What `run_propagation` / `propagate` record; every figure is drawn from these arrays.

    Attributes
    ----------
    trajectory : float64 (depth + 1, n_test, 2)
        Test features at every layer (layer 0 is the standardised input); may hold inf/NaN.
    labels : int64 (n_test,)
    head_accuracy, probe_accuracy, max_abs_feature, mean_step_norm : float64 (depth + 1,)
        See the module docstring. ``probe_accuracy`` is NaN where the training features
        are not finite; ``mean_step_norm[0]`` is NaN.
    first_nonfinite_layer : int
        First layer holding a non-finite test feature, -1 if none.
    test_accuracy : float
        ``evaluate(model, X_test, y_test)``; equals ``head_accuracy[-1]``.
    diverged : bool
        Training turned non-finite (the model keeps its last finite weights).
    config : dict
        The resolved `PropagationConfig` (empty when built from a given model).
    """

    trajectory: np.ndarray
    labels: np.ndarray
    head_accuracy: np.ndarray
    probe_accuracy: np.ndarray
    max_abs_feature: np.ndarray
    mean_step_norm: np.ndarray
    first_nonfinite_layer: int
    test_accuracy: float
    diverged: bool = False
    config: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return self.trajectory.shape[0] - 1

    def rows(self) -> list[dict]:
        """One tidy record per layer (the CSV's rows)."""
        return [
            {
                "layer": layer,
                "head_accuracy": float(self.head_accuracy[layer]),
                "probe_accuracy": float(self.probe_accuracy[layer]),
                "max_abs_feature": float(self.max_abs_feature[layer]),
                "mean_step_norm": float(self.mean_step_norm[layer]),
            }
            for layer in range(self.depth + 1)
        ]


def _trajectory(model: StableResNet, X: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        _, trajectory = model(X.to(model.step_size.device), return_trajectory=True)
    return trajectory


def _head_accuracy(model: StableResNet, trajectory: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Accuracy of the head on every layer at once; a non-finite row counts as wrong (as in `evaluate`)."""
    with torch.no_grad():
        depth1, n_rows, width = trajectory.shape
        # The head is a MemberLinear taking (M = 1, rows, width): fold the layers into the rows.
        logits = model.head(trajectory.reshape(1, depth1 * n_rows, width)).view(depth1, n_rows, -1)
        correct = (logits.argmax(dim=-1) == y.to(logits.device)) & torch.isfinite(logits).all(dim=-1)
    return correct.double().mean(dim=1).cpu().numpy()


def _probe_accuracy(train_layer: np.ndarray, y_train: np.ndarray, test_layer: np.ndarray, y_test: np.ndarray) -> float:
    """Logistic regression on one layer's training features, scored on its test features."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if not np.isfinite(train_layer).all():
        return float("nan")
    # Divide by the largest training value first: diverging layers reach 1e30 and beyond,
    # where standardising would square them into overflow.
    scale = np.abs(train_layer).max()
    scale = scale if scale > 0 else 1.0
    train_scaled = train_layer / scale
    center, spread = train_scaled.mean(axis=0), train_scaled.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    finite_test = np.isfinite(test_layer).all(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = LogisticRegression().fit((train_scaled - center) / spread, y_train)
        test_scaled = (np.where(finite_test[:, None], test_layer, 0.0) / scale - center) / spread
        predicted = probe.predict(test_scaled)
    return float(np.mean((predicted == y_test) & finite_test))


def propagate(
    model: StableResNet,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
) -> Propagation:
    """Record the test trajectory and the per-layer metrics of a (trained) one-member model.

    Parameters
    ----------
    model : StableResNet with ``n_members == 1``; put in evaluation mode.
    X_train, X_test : float32 (n, in_features); y_train, y_test : int64 (n,)

    Returns
    -------
    Propagation

    Examples
    --------
    >>> model = StableResNet(2, 2, depth=3, step_size=0.1, seed=0)
    >>> X, y = torch.randn(20, 2), torch.arange(20) % 2
    >>> record = propagate(model, X, y, X, y)
    >>> record.trajectory.shape, record.head_accuracy.shape
    ((4, 20, 2), (4,))
    """
    if model.n_members != 1:
        raise ConfigError(f"propagate needs a one-member model; this one has {model.n_members}")
    test_trajectory = _trajectory(model, X_test)
    train_features = _trajectory(model, X_train).double().cpu().numpy()
    head_accuracy = _head_accuracy(model, test_trajectory, y_test)
    features = test_trajectory.double().cpu().numpy()
    y_train_np, y_test_np = y_train.cpu().numpy(), y_test.cpu().numpy()
    probe_accuracy = np.array([
        _probe_accuracy(train_features[layer], y_train_np, features[layer], y_test_np)
        for layer in range(features.shape[0])
    ])
    finite_layer = np.isfinite(features).all(axis=(1, 2))
    with np.errstate(invalid="ignore", over="ignore"):
        # A NaN feature makes the layer's maximum NaN (not a silently smaller number).
        max_abs_feature = np.abs(features).max(axis=(1, 2))
        steps = np.linalg.norm(np.diff(features, axis=0), axis=2).mean(axis=1)
    mean_step_norm = np.concatenate([[np.nan], steps])
    return Propagation(
        trajectory=features,
        labels=y_test_np.astype(np.int64),
        head_accuracy=head_accuracy,
        probe_accuracy=probe_accuracy,
        max_abs_feature=max_abs_feature,
        mean_step_norm=mean_step_norm,
        first_nonfinite_layer=int(np.argmin(finite_layer)) if not finite_layer.all() else -1,
        test_accuracy=float(evaluate(model, X_test, y_test)["accuracy"][0]),
    )


def run_propagation(
    config: PropagationConfig,
    device: str = "cpu",
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
) -> Propagation:
    """Load the 2-D data, train one width-2 network (no lift) and record its propagation.

    With ``config.levels`` > 1 the network is trained multi-level (``multilevel``) and the
    finest one is recorded.

    Deterministic: the data, the initial weights and the mini-batch order all flow from
    ``config.seed``.
    """
    try:
        dataset = load_dataset(config.data, config.seed, n_samples=config.n_samples, noise=config.noise)
    except DataError:
        if config.data not in dataset_names():
            raise
        # A registered set that takes no n_samples/noise is a bundled table, not 2-D synthetic data.
        raise ConfigError(f"propagation pictures need 2-D synthetic data (e.g. circles); {config.data!r} is not") from None
    if dataset.n_features != 2:
        raise ConfigError(f"propagation pictures need 2-D data; {config.data!r} has {dataset.n_features} features")
    model = coarsest_model(StableResNet(
        2, dataset.n_classes, config.depth, None, config.block, config.step_size, config.activation,
        seed=config.seed, integrator=config.integrator, step_size_policy=config.step_size_policy,
    ), config.levels).to(device)
    train_config = TrainConfig(config.epochs, config.batch_size, config.learning_rate, config.optimizer)
    X_train = torch.tensor(dataset.X_train, dtype=torch.float32)
    y_train = torch.tensor(dataset.y_train)
    X_test = torch.tensor(dataset.X_test, dtype=torch.float32)
    y_test = torch.tensor(dataset.y_test)
    model, result = fit_multilevel(model, X_train, y_train, train_config, config.levels, on_epoch=on_epoch)
    record = propagate(model, X_train, y_train, X_test, y_test)
    record.diverged = bool(result.diverged[0])
    record.config = asdict(config)
    return record


# ---------------------------------------------------------------------------------------
# Files. Each is written under a temporary name in its own folder and renamed into place,
# so an interrupted run never leaves a half-written file behind.

def write_records(record: Propagation, out: Path) -> list[Path]:
    """Write ``layers.csv`` (one row per layer), ``propagation.npz`` (all arrays) and ``config.json``."""
    import csv

    out = Path(out)

    def write_csv(path):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(record.rows()[0]))
            writer.writeheader()
            writer.writerows(record.rows())

    def write_npz(path):
        with open(path, "wb") as handle:
            np.savez_compressed(
                handle, trajectory=record.trajectory, labels=record.labels,
                head_accuracy=record.head_accuracy, probe_accuracy=record.probe_accuracy,
                max_abs_feature=record.max_abs_feature, mean_step_norm=record.mean_step_norm,
                first_nonfinite_layer=record.first_nonfinite_layer, test_accuracy=record.test_accuracy,
                diverged=record.diverged,
            )

    summary = {"config": record.config, "test_accuracy": record.test_accuracy, "diverged": record.diverged,
               "first_nonfinite_layer": record.first_nonfinite_layer}
    return [
        write_atomically(out / "layers.csv", write_csv),
        write_atomically(out / "propagation.npz", write_npz),
        write_atomically(out / "config.json", lambda path: path.write_text(json.dumps(summary, indent=2) + "\n")),
    ]


def load_record(path: Path) -> Propagation:
    """Read a ``propagation.npz`` back (figures can be redrawn from it without training)."""
    with np.load(path) as arrays:
        values = {name: arrays[name] for name in arrays.files}
    config_path = Path(path).with_name("config.json")
    config = json.loads(config_path.read_text())["config"] if config_path.exists() else {}
    return Propagation(
        trajectory=values["trajectory"], labels=values["labels"], head_accuracy=values["head_accuracy"],
        probe_accuracy=values["probe_accuracy"], max_abs_feature=values["max_abs_feature"],
        mean_step_norm=values["mean_step_norm"], first_nonfinite_layer=int(values["first_nonfinite_layer"]),
        test_accuracy=float(values["test_accuracy"]), diverged=bool(values["diverged"]), config=config,
    )
