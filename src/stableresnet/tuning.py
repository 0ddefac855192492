"""Cross-validated choice of block and step size h, every (block, h, fold) trained in batched ensembles.

``StableResNetClassifierCV`` is to ``StableResNetClassifier`` what ``LogisticRegressionCV`` is to
``LogisticRegression``: it scores the grid blocks × step sizes by stratified k-fold cross-validation,
chooses one (block, h) by a rule from ``SELECTION_RULES``, and refits that one on all rows.

Every member is the network an explicit ``StableResNetClassifier(block, step_size, random_state)``
fit on its fold's training rows would train: the same seed (so the same initial weights and
mini-batch order), the same rows in the same order, standardised on those rows alone. Members train
side by side in one :class:`~stableresnet.model.StableResNet` per block type and training-set size
(k-fold training sets can differ by one row, and ``fit`` trains all members on equally many rows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .blocks import VECTOR_FIELDS
from .errors import ConfigError, DataError
from .estimator import StableResNetClassifier, seed_from
from .multilevel import fit_multilevel
from .spec import NetworkSpec, TrainingSpec, build_network
from .train import predict_logits

# Means closer than this count as tied: equal fold accuracies summed in another order may differ by an ulp.
_TIE_TOLERANCE = 1e-12


def _block_positions(blocks: np.ndarray) -> np.ndarray:
    """Each candidate's block as its position in first-seen order (the order the blocks were given)."""
    order = list(dict.fromkeys(blocks.tolist()))
    return np.array([order.index(block) for block in blocks])


def select_best(mean: np.ndarray, std: np.ndarray, sem: np.ndarray, step_size: np.ndarray,
                block: np.ndarray) -> int:
    """The candidate with the highest mean CV accuracy; ties go to the smaller h, then the earlier block.

    Every rule in ``SELECTION_RULES`` takes the same per-candidate arrays; this one needs only the means.
    """
    rounded = np.round(mean / _TIE_TOLERANCE) * _TIE_TOLERANCE
    return int(np.lexsort((_block_positions(block), step_size, -rounded))[0])


def select_one_standard_error(mean: np.ndarray, std: np.ndarray, sem: np.ndarray, step_size: np.ndarray,
                              block: np.ndarray) -> int:
    """The smallest h whose mean CV accuracy is within one standard error of the best mean.

    Eligible: mean ≥ mean_best − SE_best, with SE = sample std over folds / √folds of the
    ``select_best`` candidate. Among them the smallest h wins, ties by the lower std over
    folds, then the earlier block. Why the smallest: by Proposition 1 forward Euler is
    stable when max |1 + hλ(J_i)| ≤ 1, which a smaller h satisfies for more Jacobians, and
    the paper finds the spread of accuracy over trials grows with h; an accuracy difference
    smaller than its own standard error is no reason to give that stability up.
    """
    best = select_best(mean, std, sem, step_size, block)
    eligible = np.flatnonzero(mean >= mean[best] - sem[best] - _TIE_TOLERANCE)
    order = np.lexsort((_block_positions(block)[eligible], std[eligible], step_size[eligible]))
    return int(eligible[order[0]])


SELECTION_RULES = {"best": select_best, "one-se": select_one_standard_error}


class StableResNetClassifierCV(ClassifierMixin, BaseEstimator):
    """StableResNetClassifier with block and step size h chosen by stratified k-fold cross-validation.

    The folds are ``StratifiedKFold(cv, shuffle=True, random_state=seed)``; every (block, h, fold)
    member is trained with ``random_state=seed``, as ``GridSearchCV`` over ``StableResNetClassifier``
    would, but all of one block type in one batched model. A member that diverges is frozen at
    its last finite weights and scored with them, as the classifier does.

    Parameters
    ----------
    blocks : sequence of str, default ("plain", "shrinkage", "batchnorm")
        Vector fields to compare (``stableresnet.VECTOR_FIELDS``).
    step_sizes : sequence of float, default (0.1, 0.2, ..., 1.0)
        Values of h to compare, each > 0 (the paper's grid).
    cv : int, default 5
        Number of folds, ≥ 2.
    rule : {"best", "one-se"}, default "best"
        ``SELECTION_RULES``: the highest mean CV accuracy (ties: smaller h, then block order), or
        the smallest h within one standard error of it (see ``select_one_standard_error``).
    random_state : int, RandomState or None
        Seed of the folds and of every member (initialisation and mini-batch order).
    depth, width, activation, optimizer, learning_rate, epochs, batch_size, device, integrator, step_size_policy, max_step_size, smoothness, levels, init
        As ``StableResNetClassifier``, with its defaults.

    Attributes
    ----------
    cv_results_ : dict of arrays, one entry per (block, h) in the order blocks × step_sizes
        ``param_block``, ``param_step_size``, ``params``, ``split{k}_test_score`` (accuracy on
        fold k's held-out rows), ``mean_test_score``, ``std_test_score`` (over folds, ddof=0 as
        in GridSearchCV), ``sem_test_score`` (sample std / √folds), ``rank_test_score`` (by
        mean, ties share the lower rank) and ``diverged_folds`` (folds whose member diverged).
    best_index_, best_block_, best_step_size_, best_score_, best_params_
        The chosen candidate: its index into ``cv_results_``, block, h and mean CV accuracy.
    best_estimator_ : StableResNetClassifier
        The chosen (block, h) refit on all rows with ``random_state=seed``.
    classes_ : ndarray of labels

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> search = StableResNetClassifierCV(blocks=("plain",), step_sizes=(0.1, 1.0), cv=3, depth=3, epochs=5,
    ...                                   random_state=0).fit(X, y)
    >>> search.best_block_, search.cv_results_["split2_test_score"].shape
    ('plain', (2,))
    """

    def __init__(
        self,
        blocks=("plain", "shrinkage", "batchnorm"),
        step_sizes=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        cv: int = 5,
        rule: str = "best",
        depth: int = NetworkSpec.depth,
        width: int | None = NetworkSpec.width,
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
        self.blocks = blocks
        self.step_sizes = step_sizes
        self.cv = cv
        self.rule = rule
        self.depth = depth
        self.width = width
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

    def _check_grid(self) -> tuple[list[str], list[float]]:
        blocks = [self.blocks] if isinstance(self.blocks, str) else list(self.blocks)
        if not blocks:
            raise ConfigError("blocks must name at least one block")
        for block in blocks:
            if block not in VECTOR_FIELDS:
                raise ConfigError(f"unknown block {block!r}; expected one of {sorted(VECTOR_FIELDS)}")
        if len(set(blocks)) != len(blocks):
            raise ConfigError(f"blocks must not repeat a block; got {blocks}")
        try:
            step_sizes = [float(h) for h in np.atleast_1d(self.step_sizes)]
        except (TypeError, ValueError):
            raise ConfigError(f"step_sizes must be numbers; got {self.step_sizes!r}") from None
        if not step_sizes:
            raise ConfigError("step_sizes must hold at least one h")
        for h in step_sizes:
            if not np.isfinite(h) or h <= 0:
                raise ConfigError(f"step size h must be a finite number > 0; got {h!r}")
        if len(set(step_sizes)) != len(step_sizes):
            raise ConfigError(f"step_sizes must not repeat a value; got {step_sizes}")
        if isinstance(self.cv, bool) or not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise ConfigError(f"cv must be an integer number of folds ≥ 2; got {self.cv!r}")
        if self.rule not in SELECTION_RULES:
            raise ConfigError(f"unknown rule {self.rule!r}; expected one of {sorted(SELECTION_RULES)}")
        return blocks, step_sizes

    def _classifier(self, block: str, step_size: float, seed: int) -> StableResNetClassifier:
        """The single classifier that member (block, h) stands for; its other parameters are ours."""
        shared = {name: getattr(self, name) for name in StableResNetClassifier().get_params()
                  if name not in ("block", "step_size", "random_state")}
        return StableResNetClassifier(block=block, step_size=step_size, random_state=seed, **shared)

    def fit(self, X, y, on_step=None):
        """Score every (block, h) by cross-validation, choose one by ``rule``, refit it on all rows.

        ``on_step(description)``, if given, is called after each batched model and after the refit.
        """
        blocks, step_sizes = self._check_grid()
        X_given, y_given = X, y  # the refit sees what the caller gave, feature names included
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes in y; "
                             f"got 1 class ({self.classes_.tolist()[0]!r})")
        seed = seed_from(self.random_state)  # as StableResNetClassifier
        labels = encoder.transform(y)
        try:
            folds = list(StratifiedKFold(self.cv, shuffle=True, random_state=seed).split(X, labels))
        except ValueError as error:  # e.g. more folds than rows
            raise DataError(f"cannot make {self.cv} stratified folds: {error}") from None
        for fold, (train_rows, _) in enumerate(folds):
            missing = np.setdiff1d(np.arange(len(self.classes_)), labels[train_rows])
            if missing.size:  # that fold's single fit would know fewer classes than the others
                raise DataError(f"fold {fold} of cv={self.cv} has no training row of class "
                                f"{self.classes_.tolist()[missing[0]]!r}; give more rows of it or fewer folds")

        scores = np.zeros((len(blocks), len(step_sizes), len(folds)))
        diverged = np.zeros_like(scores, dtype=bool)
        X_train = torch.tensor(X, dtype=torch.float32)  # as the classifier trains: float32, float64 to predict
        for block_index, block in enumerate(blocks):
            # One batched model per training-set size: all h × all folds with that many rows.
            for n_train in sorted({len(train_rows) for train_rows, _ in folds}):
                members = [(fold, h_index) for fold, (train_rows, _) in enumerate(folds) if len(train_rows) == n_train
                           for h_index in range(len(step_sizes))]
                accuracy, member_diverged = self._train_members(
                    block, [step_sizes[h_index] for _, h_index in members], seed, X_train, X, labels,
                    [folds[fold] for fold, _ in members])
                for (fold, h_index), value, flag in zip(members, accuracy, member_diverged):
                    scores[block_index, h_index, fold], diverged[block_index, h_index, fold] = value, flag
                if on_step is not None:
                    on_step(f"{block}: {len(members)} members on {n_train} training rows each")

        self.cv_results_ = _cv_results(blocks, step_sizes, scores.reshape(-1, len(folds)),
                                       diverged.reshape(-1, len(folds)))
        results = self.cv_results_
        self.best_index_ = SELECTION_RULES[self.rule](
            results["mean_test_score"], results["std_test_score"], results["sem_test_score"],
            results["param_step_size"], results["param_block"])
        self.best_block_ = str(results["param_block"][self.best_index_])
        self.best_step_size_ = float(results["param_step_size"][self.best_index_])
        self.best_score_ = float(results["mean_test_score"][self.best_index_])
        self.best_params_ = {"block": self.best_block_, "step_size": self.best_step_size_}
        self.best_estimator_ = self._classifier(self.best_block_, self.best_step_size_, seed).fit(X_given, y_given)
        if on_step is not None:
            on_step(f"refit {self.best_block_} h={self.best_step_size_:g} on all {len(y)} rows")
        return self

    def _train_members(self, block, step_sizes, seed, X_train, X, labels, folds):
        """Train one batched model, member i on folds[i]'s training rows; accuracy on its held-out rows."""
        network, training = self._classifier(block, step_sizes[0], seed).specs()
        model = build_network(network, X.shape[1], len(self.classes_), seed, step_sizes, device=self.device)
        train_index = torch.tensor(np.stack([train_rows for train_rows, _ in folds]))
        model, result = fit_multilevel(model, X_train, torch.tensor(labels), training.train_config(), network.levels,
                                       train_index=train_index)
        held_out = np.stack([test_rows for _, test_rows in folds])
        logits = predict_logits(model.double(), torch.tensor(X)[torch.tensor(held_out)])
        # As StableResNetClassifier.predict_proba: non-finite logits become uninformative, then softmax.
        logits = torch.nan_to_num(logits, nan=0.0, posinf=1e300, neginf=-1e300)
        predicted = torch.softmax(logits, dim=-1).argmax(dim=-1).cpu().numpy()
        return (predicted == labels[held_out]).mean(axis=1), result.diverged

    def predict_proba(self, X) -> np.ndarray:
        """The refit best estimator's class probabilities, shape (n_samples, n_classes)."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """The refit best estimator's most probable label for each row."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def save(self, path: str | Path, schema=None) -> Path:
        """Save the refit best estimator (``StableResNetClassifier.save``); load it with ``StableResNetClassifier.load``."""
        check_is_fitted(self)
        return self.best_estimator_.save(path, schema=schema)


def _cv_results(blocks: list[str], step_sizes: list[float], scores: np.ndarray, diverged: np.ndarray) -> dict:
    """GridSearchCV-style results from fold scores (n_candidates, n_folds), candidates in blocks × step_sizes order."""
    n_folds = scores.shape[1]
    block = np.array([b for b in blocks for _ in step_sizes], dtype=object)
    step_size = np.array([h for _ in blocks for h in step_sizes])
    mean = scores.mean(axis=1)
    rank = np.array([1 + np.sum(mean > m + _TIE_TOLERANCE) for m in mean])
    return {
        "param_block": block,
        "param_step_size": step_size,
        "params": [{"block": b, "step_size": float(h)} for b, h in zip(block, step_size)],
        **{f"split{k}_test_score": scores[:, k] for k in range(n_folds)},
        "mean_test_score": mean,
        "std_test_score": scores.std(axis=1),
        "sem_test_score": scores.std(axis=1, ddof=1) / np.sqrt(n_folds),
        "rank_test_score": rank.astype(np.int32),
        "diverged_folds": diverged.sum(axis=1),
    }


def cv_results_frame(search: StableResNetClassifierCV) -> pd.DataFrame:
    """One row per (block, h) of a fitted search: fold scores, mean, std, sem, rank, diverged folds, chosen."""
    check_is_fitted(search)
    columns = {name: values for name, values in search.cv_results_.items() if name != "params"}
    frame = pd.DataFrame(columns).rename(columns={"param_block": "block", "param_step_size": "step_size"})
    frame["chosen"] = np.arange(len(frame)) == search.best_index_
    return frame
