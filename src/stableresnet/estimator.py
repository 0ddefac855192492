"""scikit-learn classifier around StableResNet.

Follows scikit-learn's estimator rules: ``__init__`` only stores its arguments;
validation, seeding and building happen in ``fit``; learned state ends in ``_``.
Compliance is proven by ``parametrize_with_checks`` in the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .data import InputSchema
from .multilevel import fit_multilevel
from .serialization import load_model, save_model, stored_schema
from .spec import NETWORK_SETTINGS, TRAINING_SETTINGS, NetworkSpec, TrainingSpec, build_network
from .train import predict_logits


def seed_from(random_state) -> int:
    """The network seed of a ``random_state``: an integer is the seed itself, anything else draws one."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class StableResNetClassifier(ClassifierMixin, BaseEstimator):
    """Deep residual classifier for tabular data with an explicit step size h.

    The defaults (a lift to width 32, learning rate 1e-2, 50 epochs; depth 20, h = 0.1, batch 32;
    declared in ``stableresnet.spec``) were chosen by ``benchmarks/choose_defaults.py``: the best mean rank of test accuracy over the
    five UCI sets and the four 2-D sets among candidates that pass scikit-learn's ``check_estimator``
    and cost at most 1.5 times the paper-like setting (no lift, 1e-3). The paper's own settings
    (width = number of features, its depth, epochs and batch size per dataset, 1e-3) are the presets,
    ``stableresnet.data.paper_preset``.

    Parameters
    ----------
    depth : int, default 20
        Number of residual blocks.
    width : int or None, default 32
        Block width, after a linear lift of the input; None keeps the number of input features
        (no lift, as in the paper).
    block : {"plain", "shrinkage", "batchnorm", "batchnorm-preact", "antisymmetric", "hamiltonian"}, default "plain"
        Vector field (``stableresnet.VECTOR_FIELDS``); hamiltonian needs an even width.
    step_size : float, default 0.1
        h in y_{i+1} = y_i + h F(y_i); the paper finds h = 0.1 stable and accurate.
    activation : {"relu", "tanh"}, default "relu"
    integrator : {"euler", "heun", "midpoint", "rk4", "leapfrog"}, default "euler"
        Step rule (``stableresnet.INTEGRATORS``); leapfrog needs the hamiltonian block.
    step_size_policy : {"fixed", "learnable", "adaptive"}, default "fixed"
        How each block's h_i follows from h (``stableresnet.STEP_SIZE_POLICIES``).
    max_step_size : float or None, default None
        h_max of the learnable policy (> h); None means 2h.
    smoothness : float, default 0.0
        λ of the inter-layer penalty λ Σ_i ‖K_{i+1} − K_i‖².
    init : str, default "glorot"
        How the blocks' K1 and K2 are drawn, ``"NAME"`` or ``"NAME:SCALE"`` (``stableresnet.INITIALIZERS``:
        glorot, uniform, normal, depth-scaled); see ``stableresnet.init``.
    levels : int, default 1
        Multi-level depth (Chang et al. 2018b): train depth/2^(L−1) blocks at step
        2^(L−1)·h, then double the blocks and halve h, L − 1 times; ``epochs`` per level.
        ``depth`` must be a multiple of 2^(L−1).
    optimizer : {"adam", "sgd"}, default "adam"
    learning_rate : float, default 1e-2
    epochs : int, default 50
    batch_size : int, default 32
    random_state : int, RandomState or None
        Seed of initialisation and mini-batch order.
    device : str, default "cpu"

    Attributes
    ----------
    step_sizes_ : ndarray (depth,)
        Each block's h_i after training (trained for ``learnable``, the running average
        for ``adaptive``, h for ``fixed``).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = StableResNetClassifier(depth=5, epochs=30, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    def __init__(
        self,
        depth: int = NetworkSpec.depth,
        width: int | None = NetworkSpec.width,
        block: str = NetworkSpec.block,
        step_size: float = NetworkSpec.step_size,
        activation: str = NetworkSpec.activation,
        optimizer: str = TrainingSpec.optimizer,
        learning_rate: float = TrainingSpec.learning_rate,
        epochs: int = TrainingSpec.epochs,
        batch_size: int = TrainingSpec.batch_size,
        random_state=None,
        device: str = "cpu",
        integrator: str = NetworkSpec.integrator,
        step_size_policy: str = NetworkSpec.step_size_policy,
        max_step_size: float | None = NetworkSpec.max_step_size,
        smoothness: float = TrainingSpec.smoothness,
        levels: int = NetworkSpec.levels,
        init: str = NetworkSpec.init,
    ):
        self.depth = depth
        self.width = width
        self.block = block
        self.step_size = step_size
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device
        self.integrator = integrator
        self.step_size_policy = step_size_policy
        self.max_step_size = max_step_size
        self.smoothness = smoothness
        self.levels = levels
        self.init = init

    def specs(self) -> tuple[NetworkSpec, TrainingSpec]:
        """The network and training specs of this estimator's parameters (checked there)."""
        return (NetworkSpec(**{name: getattr(self, name) for name in NETWORK_SETTINGS}),
                TrainingSpec(**{name: getattr(self, name) for name in TRAINING_SETTINGS}))

    def _seed(self) -> int:
        return seed_from(self.random_state)

    def fit(self, X, y):
        """Standardise X (on these rows), then train the network; returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class ({self.classes_[0]!r})"
            )
        network, training = self.specs()
        model = build_network(network, X.shape[1], len(self.classes_), self._seed(), device=self.device)
        model, result = fit_multilevel(model, torch.tensor(X, dtype=torch.float32),
                                       torch.tensor(self._label_encoder.transform(y)), training.train_config(),
                                       network.levels)
        self.diverged_ = bool(result.diverged[0])
        self.diverged_epoch_ = int(result.diverged_epoch[0]) if self.diverged_ else None
        self.loss_curve_ = result.loss_history[:, 0]
        self.step_sizes_ = result.step_sizes[0]
        # Predictions run in float64 so that they do not depend on how rows are batched.
        self.model_ = model.double().eval()
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        logits = predict_logits(self.model_, torch.tensor(X))[0]
        # A diverged network may produce non-finite logits; report them as uninformative.
        logits = torch.nan_to_num(logits, nan=0.0, posinf=1e300, neginf=-1e300)
        return torch.softmax(logits, dim=-1).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        """Most probable class label for each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def save(self, path: str | Path, schema: InputSchema | None = None) -> Path:
        """Write the fitted network, its labels and hyper-parameters to a safetensors file.

        ``schema`` (e.g. ``dataset.schema``) records the raw input columns and their encoding in the
        file's checksummed header, so ``stableresnet predict`` can read a table by column name.
        """
        check_is_fitted(self)
        # A RandomState object has no JSON form; the weights already hold its effect.
        params = {k: v for k, v in self.get_params().items() if isinstance(v, (bool, int, float, str, type(None)))}
        return save_model(path, self.model_, classes=self.classes_.tolist(), extra={"params": params}, schema=schema)

    @classmethod
    def load(cls, path: str | Path) -> StableResNetClassifier:
        """Rebuild a fitted classifier from a file written by :meth:`save`.

        ``schema_`` is the stored `InputSchema`, or None for a file saved without one.
        """
        model, classes, extra = load_model(path)
        classifier = cls(**extra.get("params", {}))
        classifier.model_ = model.double()
        classifier.classes_ = np.array(classes)
        classifier._label_encoder = LabelEncoder().fit(classifier.classes_)
        classifier.n_features_in_ = model.in_features
        classifier.schema_ = stored_schema(path, extra, model)
        return classifier
