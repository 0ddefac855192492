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
- ``mean_step_norm``: mean over test points of ||y_i - y_{i-1}|| (smoothness; NaN at i = 0);
- ``inactive_share``: the share of block i's hidden units (its activation's outputs) that are
  0 on every test point, i.e. dead ReLUs (NaN at i = 0, which no block produces). At width 2
  a block has two hidden units: one dead unit halves what the block can do;
- ``train_head_accuracy``, ``train_probe_accuracy``: the head and the probe scored on the
  training points' y_i. The paper says neither which classifier reads "accuracy at layer i" nor
  whether its pictures show training or test points: these are the other readers.

Per network, before training (``stableresnet.diagnostics.initial_signal``): ``init_scale_ratio``,
max |y_depth| / max |y_0| on the training points, and ``init_gradient_norm``, the loss gradient
reaching the first block on the first mini-batch. A ratio below 1e-3 means the network starts
collapsed: its initial weights already map every point near one. A multi-level run measures the
coarsest network, the one that starts training.

Besides, ``knn_accuracy``: a k-nearest-neighbour classifier's accuracy on the same test
points, trained on the training points: an estimate of the best accuracy the data allows
(noisy data put some points on the wrong side of any boundary), shown beside "accuracy 1.0".

Many seeds: ``PropagationConfig.seeds = N`` trains N members, seeds ``seed, ..., seed + N - 1``,
as one batched ensemble. Member s draws its own data and initialisation from s, so it gives
the same numbers as a single run with ``seed = s`` (`PropagationSeeds`).

Only arrays come out (`Propagation`); drawing is ``stableresnet.viz.propagation``.
Plain h = 1 can overflow to inf/NaN at deep layers: that is recorded
(``first_nonfinite_layer``), never raised. No matplotlib is imported here.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Collection
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..blocks import BATCH_NORM_EPS, BATCH_NORM_MOMENTUM
from ..errors import ConfigError, DataError
from ..data import dataset_names, load_dataset
from ..diagnostics import initial_signal
from ..files import write_atomically
from ..init import DEFAULT_INIT
from ..model import StableResNet, check_batch_norm
from ..multilevel import fit_multilevel
from ..spec import NetworkSpec, build_network
from ..train import TrainConfig, evaluate, fit_standardization


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


@dataclass(frozen=True)
class Reader:
    """How "accuracy at layer i" is read, which the paper leaves open: by the trained ``head`` or a
    per-layer logistic ``probe``, on the ``test`` or the ``train`` points, and the accuracy that
    counts as "1.0" (``perfect``: 1.0 exactly, or 0.995, 1.0 at two decimals as a figure prints it)."""

    classifier: str
    points: str
    perfect: float

    @property
    def key(self) -> str:
        """"head-test-1", "probe-train-0.995", ..."""
        return f"{self.classifier}-{self.points}-{self.perfect:g}"

    @property
    def needs_probe(self) -> bool:
        return self.classifier == "probe"

    def accuracy(self, record: Propagation) -> np.ndarray:
        """The per-layer accuracy this reader reads off a record, (depth + 1,)."""
        prefix = "" if self.points == "test" else "train_"
        return getattr(record, f"{prefix}{self.classifier}_accuracy")


READERS = {reader.key: reader for reader in (Reader(classifier, points, perfect) for classifier in ("head", "probe")
                                             for points in ("test", "train") for perfect in (1.0, 0.995))}
DEFAULT_READER = "head-test-1"  # the final trained head on the test points, exactly 1.0


def reader(key) -> Reader:
    """The reader of ``key`` (``READERS``); a `ConfigError` names an unknown one."""
    if not isinstance(key, str) or key not in READERS:
        raise ConfigError(f"unknown reader {key!r}; expected one of {list(READERS)}")
    return READERS[key]


@dataclass(frozen=True)
class PropagationConfig:
    """Everything that determines a propagation run; the same seed gives the same arrays.

    ``seeds`` members are trained, with seeds ``seed, seed + 1, ..., seed + seeds - 1``.
    ``standardize``, ``adam_epsilon`` and ``batch_norm_momentum``/``batch_norm_eps`` are the
    engine's options (`TrainConfig`, `StableResNet`); their defaults are PyTorch's set-up.
    """

    block: str = "plain"
    step_size: float = 1.0
    depth: int = 100
    data: str = "circles"
    n_samples: int = 500
    noise: float = 0.1
    n_test: int | None = None  # test points; None: as many as training points (n_samples)
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    activation: str = "relu"
    seed: int = 0
    integrator: str = "euler"
    step_size_policy: str = "fixed"
    levels: int = 1  # multi-level depth: ``depth`` and ``step_size`` are the finest level's
    seeds: int = 1
    standardize: bool = True
    adam_epsilon: float = TrainConfig.adam_epsilon
    batch_norm_momentum: float = BATCH_NORM_MOMENTUM
    batch_norm_eps: float = BATCH_NORM_EPS
    init: str = DEFAULT_INIT

    def __post_init__(self):
        """Check the network and training settings now, so nothing runs or is written with bad ones."""
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, (int, np.integer)) or self.seeds < 1:
            raise ConfigError(f"seeds must be an integer ≥ 1 (the number of networks); got {self.seeds!r}")
        self.network()
        check_batch_norm(self.batch_norm_momentum, self.batch_norm_eps)
        if self.n_test is not None and (isinstance(self.n_test, bool) or not isinstance(self.n_test, (int, np.integer))
                                        or self.n_test < 1):
            raise ConfigError(f"n_test must be an integer ≥ 1 (test points) or None; got {self.n_test!r}")
        self.train_config()

    def network(self) -> NetworkSpec:
        """The network spec of every member: no lift (width = the 2 input features)."""
        return NetworkSpec(self.depth, None, self.block, self.step_size, self.activation, self.integrator,
                           self.step_size_policy, levels=self.levels, init=self.init)

    def train_config(self) -> TrainConfig:
        """How each network is trained."""
        return TrainConfig(self.epochs, self.batch_size, self.learning_rate, self.optimizer,
                           standardize=self.standardize, adam_epsilon=self.adam_epsilon)

    def resolved(self) -> PropagationConfig:
        """This config with its defaults said explicitly (``n_test``: as many as ``n_samples``): equal
        resolved configs train the same networks on the same points."""
        return replace(self, n_test=self.n_samples if self.n_test is None else self.n_test)

    def member_seeds(self) -> list[int]:
        """The members' seeds: ``seed, seed + 1, ..., seed + seeds - 1``."""
        return list(range(self.seed, self.seed + self.seeds))


@dataclass(eq=False)
class Propagation:
    """What `propagate` records for one network; every figure is drawn from these arrays.

    Attributes
    ----------
    trajectory : float64 (depth + 1, n_test, 2)
        Test features at every layer (layer 0 is the standardised input); may hold inf/NaN.
    labels : int64 (n_test,)
    head_accuracy, probe_accuracy, max_abs_feature, mean_step_norm, inactive_share : float64 (depth + 1,)
        See the module docstring. ``probe_accuracy`` is NaN where the training features
        are not finite; ``mean_step_norm[0]`` and ``inactive_share[0]`` are NaN.
    train_head_accuracy, train_probe_accuracy : float64 (depth + 1,)
        The head and the probe on the training points (NaN when not recorded).
    init_scale_ratio, init_gradient_norm : float
        The network's signal before training (module docstring); NaN when not recorded.
    first_nonfinite_layer : int
        First layer holding a non-finite test feature, -1 if none.
    test_accuracy : float
        ``evaluate(model, X_test, y_test)``; equals ``head_accuracy[-1]``.
    knn_accuracy : float
        k-NN accuracy on the test points (`knn_ceiling`); NaN where it cannot be estimated.
    seed : int
        The network's (and its data's) seed.
    diverged : bool
        Training turned non-finite (the model keeps its last finite weights).
    config : dict
        The resolved `PropagationConfig` of a single run with this seed (empty when built
        from a given model).
    """

    trajectory: np.ndarray
    labels: np.ndarray
    head_accuracy: np.ndarray
    probe_accuracy: np.ndarray
    max_abs_feature: np.ndarray
    mean_step_norm: np.ndarray
    inactive_share: np.ndarray
    first_nonfinite_layer: int
    test_accuracy: float
    knn_accuracy: float = float("nan")
    seed: int = 0
    diverged: bool = False
    config: dict = field(default_factory=dict)
    train_head_accuracy: np.ndarray | None = None
    train_probe_accuracy: np.ndarray | None = None
    init_scale_ratio: float = float("nan")
    init_gradient_norm: float = float("nan")

    def __post_init__(self):
        for name in ("train_head_accuracy", "train_probe_accuracy"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(self.depth + 1, np.nan))

    @property
    def depth(self) -> int:
        return self.trajectory.shape[0] - 1

    def rows(self) -> list[dict]:
        """One tidy record per layer (the CSV's rows)."""
        return [
            {
                "seed": self.seed,
                "layer": layer,
                "head_accuracy": float(self.head_accuracy[layer]),
                "probe_accuracy": float(self.probe_accuracy[layer]),
                "max_abs_feature": float(self.max_abs_feature[layer]),
                "mean_step_norm": float(self.mean_step_norm[layer]),
                "inactive_share": float(self.inactive_share[layer]),
                "train_head_accuracy": float(self.train_head_accuracy[layer]),
                "train_probe_accuracy": float(self.train_probe_accuracy[layer]),
                "init_scale_ratio": float(self.init_scale_ratio),
                "init_gradient_norm": float(self.init_gradient_norm),
            }
            for layer in range(self.depth + 1)
        ]


# The per-layer arrays of a `Propagation` (stacked over members in ``propagation.npz``).
LAYER_ARRAYS = ("head_accuracy", "probe_accuracy", "max_abs_feature", "mean_step_norm", "inactive_share",
                "train_head_accuracy", "train_probe_accuracy")


@dataclass(eq=False)
class PropagationSeeds:
    """The records of one network per seed, trained as one ensemble (a single run is one member).

    ``median_index`` names the member that pictures are drawn for. ``snapshots`` maps an
    epoch e to the members' records after e epochs, taken inside the same run (what a run
    of e epochs gives: the recording leaves training untouched).
    """

    members: list[Propagation]
    config: dict = field(default_factory=dict)
    snapshots: dict[int, list[Propagation]] = field(default_factory=dict)
    compiled: bool = False  # whether training went through torch.compile (`train.TrainResult`), and why
    compile_reason: str = ""

    @property
    def seeds(self) -> list[int]:
        return [member.seed for member in self.members]

    @property
    def median_index(self) -> int:
        """The member with the median final (test) accuracy; the lower median for an even count,
        and among members tied at that accuracy the one with the lowest seed.

        >>> accuracy = lambda value, seed: Propagation(*[np.zeros(1)] * 7, 0, value, seed=seed)
        >>> PropagationSeeds([accuracy(0.9, 4), accuracy(0.7, 5), accuracy(0.8, 6), accuracy(0.8, 3)]).median_index
        3
        """
        accuracies = [member.test_accuracy for member in self.members]
        median = sorted(accuracies)[(len(accuracies) - 1) // 2]
        tied = [index for index, value in enumerate(accuracies) if value == median]
        return min(tied, key=lambda index: self.members[index].seed)

    @property
    def median(self) -> Propagation:
        return self.members[self.median_index]

    def stacked(self, name: str) -> np.ndarray:
        """One per-layer array (``LAYER_ARRAYS``) of every member: (n_members, depth + 1)."""
        return np.stack([getattr(member, name) for member in self.members])

    def rows(self) -> list[dict]:
        """One tidy record per member and layer (the CSV's rows)."""
        return [{"member": index, **row} for index, member in enumerate(self.members) for row in member.rows()]


@contextmanager
def _recorded_activations(model: StableResNet):
    """Inside, every call of the blocks' activation appends its output to the yielded list."""
    field_module = model.field
    activation = field_module.activation
    outputs = []

    def recording(z):
        output = activation(z)
        outputs.append(output)
        return output

    field_module.activation = recording
    try:
        yield outputs
    finally:
        field_module.activation = activation


def _inactive_share(outputs: list[torch.Tensor], depth: int) -> np.ndarray:
    """(M, depth + 1): per block, the share of its hidden units that are 0 on every test point.

    ``outputs`` are the activation's outputs (M, n, units) in call order; a block may call
    it several times (several integrator stages, two streams), all its calls are its units.
    """
    if len(outputs) % depth:
        raise ConfigError(f"cannot attribute {len(outputs)} activation calls to {depth} blocks")
    calls = len(outputs) // depth
    shares = [torch.cat(outputs[block * calls:(block + 1) * calls], dim=-1).eq(0).all(dim=1).double().mean(dim=1)
              for block in range(depth)]
    n_members = outputs[0].shape[0]
    return np.concatenate([np.full((n_members, 1), np.nan), torch.stack(shares, dim=1).cpu().numpy()], axis=1)


def _head_accuracy(model: StableResNet, trajectory: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """(M, depth + 1): accuracy of each member's head on each layer; a non-finite row counts as wrong."""
    with torch.no_grad():
        depth1, n_members, n_rows, width = trajectory.shape
        # The head is a MemberLinear taking (M, rows, width): fold the layers into the rows.
        features = trajectory.permute(1, 0, 2, 3).reshape(n_members, depth1 * n_rows, width)
        logits = model.head(features).view(n_members, depth1, n_rows, -1)
        correct = (logits.argmax(dim=-1) == y.to(logits.device)[:, None]) & torch.isfinite(logits).all(dim=-1)
    return correct.double().mean(dim=2).cpu().numpy()


def _probe_accuracies(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray,
                      iterations: int = 100) -> np.ndarray:
    """(L,): a logistic-regression probe per layer, fitted on the training features, scored on the test ones
    (`layer_probe_accuracies` with the one set (test, y_test))."""
    return layer_probe_accuracies(train, y_train, [(test, y_test)], iterations)[0]


def layer_probe_accuracies(train: np.ndarray, y_train: np.ndarray, scored: list[tuple[np.ndarray, np.ndarray]],
                           iterations: int = 100) -> list[np.ndarray]:
    """Per set of ``scored``, (L,): a logistic-regression probe per layer fitted on the training features.

    ``train`` (L, n, 2) and each scored set's features (L, m, 2) are L layers' features of one
    network (a scored set may be the training set itself). Each layer
    is scaled by its largest training value (diverging layers reach 1e30 and beyond, where
    standardising would square them into overflow), then standardised. The probe is
    scikit-learn's default ``LogisticRegression`` for two classes (L2 penalty, C = 1, free
    intercept): it minimises Σ_j log(1 + exp(-s_j (w·x_j + b))) + |w|²/2, s_j = ±1, solved
    here for all layers at once by damped Newton steps (a convex problem: one minimum).
    More than two classes fall back to scikit-learn, layer by layer. A layer whose training
    features are not finite gets NaN; a non-finite scored point counts as wrong.
    """
    n_layers = train.shape[0]
    finite_train = np.isfinite(train).all(axis=(1, 2))
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.abs(np.where(finite_train[:, None, None], train, 0.0)).max(axis=(1, 2))
    scale = np.where(scale > 0, scale, 1.0)[:, None, None]
    train_scaled = np.where(finite_train[:, None, None], train, 0.0) / scale
    center, spread = train_scaled.mean(axis=1, keepdims=True), train_scaled.std(axis=1, keepdims=True)
    spread = np.where(spread > 0, spread, 1.0)
    features = (train_scaled - center) / spread
    sets = []
    for test, y_test in scored:
        finite_test = np.isfinite(test).all(axis=2)  # (L, m)
        sets.append(((np.where(finite_test[..., None], test, 0.0) / scale - center) / spread, y_test, finite_test))
    classes = np.unique(y_train)
    if len(classes) != 2:
        return [np.array([_sklearn_probe(features[i], y_train, test_features[i], y_test, finite_test[i])
                          if finite_train[i] else np.nan for i in range(n_layers)])
                for test_features, y_test, finite_test in sets]
    sign = np.where(y_train == classes[1], 1.0, -1.0)
    design = np.concatenate([features, np.ones(features.shape[:2] + (1,))], axis=2)  # (L, n, 3)
    penalty = np.array([1.0, 1.0, 0.0])  # the intercept is not penalised

    def objective(weights):
        margins = sign * np.einsum("lnk,lk->ln", design, weights)
        return np.logaddexp(0.0, -margins).sum(axis=1) + 0.5 * (penalty * weights ** 2).sum(axis=1)

    weights = np.zeros((n_layers, 3))
    value = objective(weights)
    for _ in range(iterations):
        z = np.einsum("lnk,lk->ln", design, weights)
        p = 0.5 * (1 + np.tanh(z / 2))  # the logistic function, overflow-free
        gradient = np.einsum("lnk,ln->lk", design, p - (sign > 0)) + penalty * weights
        curvature = np.einsum("lnk,ln,lnj->lkj", design, p * (1 - p), design) + np.diag(penalty)
        step = np.linalg.solve(curvature, gradient[..., None])[..., 0]
        # Halve the step where it does not lower the objective (damped Newton).
        rate = np.ones(n_layers)
        for _ in range(30):
            trial = objective(weights - rate[:, None] * step)
            worse = trial > value
            if not worse.any():
                break
            rate = np.where(worse, rate / 2, rate)
        weights = weights - rate[:, None] * step
        value = objective(weights)
        if np.abs(rate[:, None] * step).max() < 1e-10:
            break
    accuracies = []
    for test_features, y_test, finite_test in sets:
        predicted = np.where(np.einsum("lmk,lk->lm", test_features, weights[:, :2]) + weights[:, 2:] > 0,
                             classes[1], classes[0])
        accuracy = ((predicted == y_test) & finite_test).mean(axis=1)
        accuracies.append(np.where(finite_train, accuracy, np.nan))
    return accuracies


def _sklearn_probe(train_layer, y_train, test_layer, y_test, finite_test) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        predicted = LogisticRegression().fit(train_layer, y_train).predict(test_layer)
    return float(np.mean((predicted == y_test) & finite_test))


KNN_NEIGHBOURS = (1, 3, 5, 9, 15, 25, 45)


def knn_ceiling(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of k-nearest neighbours on the raw inputs, k in ``KNN_NEIGHBOURS`` chosen by
    5-fold cross-validation on the training points alone.

    k-NN approaches the Bayes classifier as the data grow, so on 2-D data this estimates the
    best accuracy any classifier can reach on these test points. NaN where a class has
    fewer than two training points (no fold to validate on).
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier

    counts = np.bincount(y_train)
    folds = min(5, int(counts[counts > 0].min())) if len(counts) else 0
    if folds < 2 or len(np.unique(y_train)) < 2:
        return float("nan")
    fold_size = len(y_train) - math.ceil(len(y_train) / folds)
    neighbours = [k for k in KNN_NEIGHBOURS if k <= fold_size]
    search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": neighbours}, cv=folds)
    return float(search.fit(X_train, y_train).score(X_test, y_test))


def propagate_members(
    model: StableResNet,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    probe: bool = True,
) -> list[Propagation]:
    """Record the test trajectory and the per-layer metrics of every member of a (trained) model.

    Parameters
    ----------
    model : StableResNet with M members; put in evaluation mode.
    X_train, X_test : float32 (M, n, in_features), member m's own rows
    y_train, y_test : int64 (M, n)
    probe : fit the per-layer logistic probes (most of the cost); ``False`` leaves
        ``probe_accuracy`` and ``train_probe_accuracy`` NaN.

    Returns
    -------
    list of M `Propagation`, member m's with ``seed = model.seeds[m]``.
    """
    n_members, device = model.n_members, model.step_size.device
    model.eval()
    with torch.no_grad():
        with _recorded_activations(model) as activations:
            _, test_trajectory = model(X_test.to(device), return_trajectory=True)  # (depth + 1, M, n, 2)
        inactive_share = _inactive_share(activations, model.depth)
        _, train_trajectory = model(X_train.to(device), return_trajectory=True)
    head_accuracy = _head_accuracy(model, test_trajectory, y_test)
    train_head_accuracy = _head_accuracy(model, train_trajectory, y_train)
    n_test = X_test.shape[1]
    test_accuracy = evaluate(model, X_test.reshape(-1, X_test.shape[-1]), y_test.reshape(-1),
                             index=torch.arange(n_members * n_test).view(n_members, n_test))["accuracy"]
    records = []
    for member in range(n_members):
        features = test_trajectory[:, member].double().cpu().numpy()
        train_features = train_trajectory[:, member].double().cpu().numpy()
        y_train_np, y_test_np = y_train[member].cpu().numpy(), y_test[member].cpu().numpy()
        probe_accuracy, train_probe_accuracy = (
            layer_probe_accuracies(train_features, y_train_np, [(features, y_test_np), (train_features, y_train_np)])
            if probe else (np.full(len(features), np.nan), np.full(len(features), np.nan)))
        finite_layer = np.isfinite(features).all(axis=(1, 2))
        with np.errstate(invalid="ignore", over="ignore"):
            # A NaN feature makes the layer's maximum NaN (not a silently smaller number).
            max_abs_feature = np.abs(features).max(axis=(1, 2))
            steps = np.linalg.norm(np.diff(features, axis=0), axis=2).mean(axis=1)
        records.append(Propagation(
            trajectory=features,
            labels=y_test_np.astype(np.int64),
            head_accuracy=head_accuracy[member],
            probe_accuracy=probe_accuracy,
            max_abs_feature=max_abs_feature,
            mean_step_norm=np.concatenate([[np.nan], steps]),
            inactive_share=inactive_share[member],
            first_nonfinite_layer=int(np.argmin(finite_layer)) if not finite_layer.all() else -1,
            test_accuracy=float(test_accuracy[member]),
            knn_accuracy=knn_ceiling(X_train[member].cpu().numpy(), y_train_np, X_test[member].cpu().numpy(),
                                     y_test_np),
            seed=model.seeds[member],
            train_head_accuracy=train_head_accuracy[member],
            train_probe_accuracy=train_probe_accuracy,
        ))
    return records


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
    return propagate_members(model, X_train[None], y_train[None], X_test[None], y_test[None])[0]


def _load_2d(config: PropagationConfig, seed: int):
    try:
        dataset = load_dataset(config.data, seed, n_samples=config.n_samples, noise=config.noise, n_test=config.n_test)
    except DataError:
        if config.data not in dataset_names():
            raise
        # A registered set that takes no n_samples/noise is a bundled table, not 2-D synthetic data.
        raise ConfigError(f"propagation pictures need 2-D synthetic data (e.g. circles); {config.data!r} is not") from None
    if dataset.n_features != 2:
        raise ConfigError(f"propagation pictures need 2-D data; {config.data!r} has {dataset.n_features} features")
    return dataset


def run_propagation_seeds(
    config: PropagationConfig,
    device: str = "cpu",
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
    snapshot_epochs: Collection[int] = (),
    probe: bool = True,
    compile: bool | str = False,
) -> PropagationSeeds:
    """Train ``config.seeds`` width-2 networks (no lift) as one ensemble and record each one's propagation.

    Member s (s = ``config.seed``, ..., ``config.seed + config.seeds - 1``) draws its data,
    initial weights and mini-batch order from s alone and trains on its own rows, so its
    record is that of a single run with ``seed = s`` (members of an ensemble are
    independent: ``stableresnet.train``). With ``config.levels`` > 1 the networks are
    trained multi-level (``multilevel``) and the finest ones are recorded.

    ``snapshot_epochs``: also record the members after each of these epochs (1 ≤ e < epochs;
    one level only) into ``snapshots``, as runs of e epochs would. ``probe=False`` skips the
    per-layer logistic probes (`propagate_members`). ``compile`` trains through ``torch.compile``
    (``TrainConfig.compile``: True, False or "auto"; equal to the eager engine to round-off).
    """
    snapshot_epochs = sorted(set(snapshot_epochs))
    if snapshot_epochs and (config.levels != 1 or snapshot_epochs[0] < 1 or snapshot_epochs[-1] >= config.epochs):
        raise ConfigError(f"snapshot epochs must lie in [1, {config.epochs - 1}] of a one-level run; "
                          f"got {snapshot_epochs} with {config.levels} levels")
    seeds = config.member_seeds()
    datasets = [_load_2d(config, seed) for seed in seeds]

    def stack(name, dtype):
        return torch.tensor(np.stack([getattr(dataset, name) for dataset in datasets]), dtype=dtype)

    X_train, X_test = stack("X_train", torch.float32), stack("X_test", torch.float32)  # (M, n, 2)
    y_train, y_test = stack("y_train", torch.long), stack("y_test", torch.long)
    n_members, n_train = y_train.shape
    model = build_network(config.network(), 2, datasets[0].n_classes, seeds, device=device,
                          batch_norm_momentum=config.batch_norm_momentum, batch_norm_eps=config.batch_norm_eps)
    train_index = torch.arange(n_members * n_train).view(n_members, n_train)
    # The signal before training, on the standardisation ``fit`` is about to set (the same numbers).
    if config.standardize:
        fit_standardization(model, X_train.reshape(-1, 2).to(device), train_index.to(device))
    signal = initial_signal(model, X_train, y_train, config.batch_size)
    snapshots = {}

    def with_signal(members: list[Propagation]) -> list[Propagation]:
        for member, ratio, gradient in zip(members, signal.scale_ratio, signal.gradient_norm):
            member.init_scale_ratio, member.init_gradient_norm = float(ratio), float(gradient)
        return members

    def record(epoch, loss):
        if on_epoch is not None:
            on_epoch(epoch, loss)
        if epoch + 1 in snapshot_epochs:
            members = with_signal(propagate_members(model, X_train, y_train, X_test, y_test, probe=probe))
            for member, lost in zip(members, np.isnan(loss)):  # a diverged member's loss is NaN
                member.diverged = bool(lost)
            snapshots[epoch + 1] = members
            model.train()  # the recording put the model in evaluation mode

    # All members' rows in one table; member m trains on its own block of rows.
    model, result = fit_multilevel(model, X_train.reshape(-1, 2), y_train.reshape(-1),
                                   replace(config.train_config(), compile=compile),
                                   config.levels, train_index=train_index,
                                   on_epoch=record if snapshot_epochs else on_epoch)
    members = with_signal(propagate_members(model, X_train, y_train, X_test, y_test, probe=probe))
    for member, diverged in zip(members, result.diverged):
        member.diverged = bool(diverged)
        member.config = asdict(replace(config, seed=member.seed, seeds=1))
    for epoch in snapshot_epochs:  # training stops once every member has diverged: later epochs keep that state
        snapshots.setdefault(epoch, [replace(member) for member in members])
    for epoch, taken in snapshots.items():
        for member in taken:
            member.config = asdict(replace(config, seed=member.seed, seeds=1, epochs=epoch))
    return PropagationSeeds(members, asdict(config), snapshots, result.compiled, result.compile_reason)


def run_propagation(
    config: PropagationConfig,
    device: str = "cpu",
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
) -> Propagation:
    """Load the 2-D data, train one width-2 network (no lift) and record its propagation.

    Deterministic: the data, the initial weights and the mini-batch order all flow from
    ``config.seed``. For many seeds use `run_propagation_seeds`.
    """
    if config.seeds != 1:
        raise ConfigError(f"run_propagation trains one network; use run_propagation_seeds for seeds={config.seeds}")
    return run_propagation_seeds(config, device, on_epoch).members[0]


# ---------------------------------------------------------------------------------------
# Files. Each is written under a temporary name in its own folder and renamed into place,
# so an interrupted run never leaves a half-written file behind.

def write_records(records: PropagationSeeds, out: Path) -> list[Path]:
    """Write ``layers.csv`` (one row per member and layer), ``propagation.npz`` (every array,
    with a leading member axis) and ``config.json`` (the config and each member's summary)."""
    import csv

    out = Path(out)
    members = records.members
    rows = records.rows()

    def write_csv(path):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def write_npz(path):
        with open(path, "wb") as handle:
            np.savez_compressed(
                handle,
                # The network computes in float32: storing its features so loses nothing.
                trajectory=np.stack([m.trajectory for m in members]).astype(np.float32),
                labels=np.stack([m.labels for m in members]),
                **{name: records.stacked(name) for name in LAYER_ARRAYS},
                first_nonfinite_layer=[m.first_nonfinite_layer for m in members],
                test_accuracy=[m.test_accuracy for m in members], knn_accuracy=[m.knn_accuracy for m in members],
                diverged=[m.diverged for m in members], seeds=records.seeds,
                init_scale_ratio=[m.init_scale_ratio for m in members],
                init_gradient_norm=[m.init_gradient_norm for m in members],
            )

    summary = {
        "config": records.config, "seeds": records.seeds, "median_seed": records.median.seed,
        "members": [{"seed": m.seed, "test_accuracy": m.test_accuracy, "knn_accuracy": m.knn_accuracy,
                     "diverged": m.diverged, "first_nonfinite_layer": m.first_nonfinite_layer,
                     "init_scale_ratio": m.init_scale_ratio, "init_gradient_norm": m.init_gradient_norm}
                    for m in members],
    }
    return [
        write_atomically(out / "layers.csv", write_csv),
        write_atomically(out / "propagation.npz", write_npz),
        write_atomically(out / "config.json", lambda path: path.write_text(json.dumps(summary, indent=2) + "\n")),
    ]


def load_record(path: Path) -> PropagationSeeds:
    """Read a ``propagation.npz`` back (figures can be redrawn from it without training).

    A file written before seeds existed (one network, no member axis) reads as one member.
    """
    with np.load(path) as arrays:
        values = {name: arrays[name] for name in arrays.files}
    config_path = Path(path).with_name("config.json")
    config = json.loads(config_path.read_text())["config"] if config_path.exists() else {}
    if values["trajectory"].ndim == 3:  # one network, no member axis
        values = {name: value[None] for name, value in values.items()}
        values["seeds"] = np.array([config.get("seed", 0)])
    n_members, depth1 = values["trajectory"].shape[:2]
    missing = np.full((n_members,), np.nan)
    members = []
    for m, seed in enumerate(values["seeds"]):
        members.append(Propagation(
            trajectory=values["trajectory"][m].astype(np.float64), labels=values["labels"][m],
            **{name: values[name][m] if name in values else np.full(depth1, np.nan) for name in LAYER_ARRAYS},
            first_nonfinite_layer=int(values["first_nonfinite_layer"][m]),
            test_accuracy=float(values["test_accuracy"][m]),
            knn_accuracy=float(values.get("knn_accuracy", missing)[m]),
            seed=int(seed), diverged=bool(values["diverged"][m]),
            config={**config, "seed": int(seed), "seeds": 1} if config else {},
            init_scale_ratio=float(values.get("init_scale_ratio", missing)[m]),
            init_gradient_norm=float(values.get("init_gradient_norm", missing)[m]),
        ))
    return PropagationSeeds(members, config)
