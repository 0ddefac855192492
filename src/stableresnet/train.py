"""Training and evaluation of a StableResNet, one member or an ensemble of many in one pass.

All members step together: one forward pass over stacked parameters, the sum of
the members' mean cross-entropies as the loss (so each member's gradient is its
own), and one optimiser step. Adam and SGD act element-wise, so a member's
trajectory depends only on its own seed and step size, never on its neighbours.

An optional penalty λ Σ_i ‖K_{i+1} − K_i‖² (``TrainConfig.smoothness``) is added to each
member's own loss, so it keeps the members independent.

A member whose loss or gradient turns non-finite is marked diverged (with the
epoch), frozen at its last finite parameters, and evaluated with them; the others
carry on. Divergence is a result, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from .model import ConfigError, StableResNet, member_generator

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the paper's defaults are Adam with learning rate 1e-3 (Keras').

    ``smoothness`` is λ ≥ 0 of the inter-layer penalty λ Σ_i ‖K_{i+1} − K_i‖²_F (Haber &
    Ruthotto 2017), summed over the field's weight matrices; 0 (the paper) turns it off.
    """

    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    standardize: bool = True
    smoothness: float = 0.0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be an integer ≥ 1; got {value!r}")
        if not np.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be a finite number > 0; got {self.learning_rate!r}")
        if isinstance(self.smoothness, bool) or not np.isfinite(self.smoothness) or self.smoothness < 0:
            raise ConfigError(f"smoothness must be a finite number ≥ 0; got {self.smoothness!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; expected one of {sorted(OPTIMIZERS)}")


@dataclass
class TrainResult:
    """Per-member outcome of training; arrays have one entry per member."""

    diverged: np.ndarray  # bool (M,)
    diverged_epoch: np.ndarray  # int (M,), -1 where the member never diverged
    loss_history: np.ndarray = field(repr=False)  # (epochs_run, M) mean training loss per epoch
    # (M, depth) each block's h after training (``StableResNet.block_step_sizes``): the
    # learnable policy's trained h_i, the adaptive policy's running average, else h.
    step_sizes: np.ndarray | None = field(default=None, repr=False)


def _check_data(X: torch.Tensor, y: torch.Tensor, model: StableResNet) -> None:
    if X.dim() != 2 or X.shape[1] != model.in_features:
        raise ConfigError(f"X must have shape (n_samples, {model.in_features}); got {tuple(X.shape)}")
    if y.shape != (X.shape[0],):
        raise ConfigError(f"y must have shape ({X.shape[0]},) to match X; got {tuple(y.shape)}")
    if not torch.isfinite(X).all():
        raise ConfigError("X holds NaN or infinite values; clean or impute them first")
    if y.numel() and (y.min() < 0 or y.max() >= model.n_classes):
        raise ConfigError(f"y must hold class indices in [0, {model.n_classes - 1}]")


def fit_standardization(model: StableResNet, X: torch.Tensor, train_index: torch.Tensor) -> None:
    """Set each member's input mean and scale from its own training rows (never the test rows)."""
    with torch.no_grad():
        for member in range(model.n_members):
            rows = X[train_index[member]]
            scale = rows.std(dim=0, unbiased=False)
            model.input_mean[member, 0] = rows.mean(dim=0)
            # A constant column is left unscaled rather than divided by zero.
            model.input_scale[member, 0] = torch.where(scale > 0, scale, torch.ones_like(scale))


def _batch_starts(n_rows: int, batch_size: int) -> range:
    # A trailing batch of one row is dropped: batch norm cannot normalise a single sample.
    usable = n_rows - 1 if n_rows % batch_size == 1 and n_rows > 1 else n_rows
    return range(0, usable, batch_size)


def _member_state(model: StableResNet) -> list[tuple[torch.Tensor, int]]:
    """Every tensor that training changes, with the position of its member axis."""
    state = [(p, 0) for p in model.parameters() if p.requires_grad]
    # Batch-norm running statistics are stored (depth, M, width); step-size policy state (M, depth).
    state += [(b, 1) for name, b in model.field.named_buffers() if "running" in name]
    return state + [(b, 0) for b in model.step_policy.buffers()]


def _member_mask(alive: torch.Tensor, tensor: torch.Tensor, member_axis: int) -> torch.Tensor:
    shape = [1] * tensor.dim()
    shape[member_axis] = -1
    return alive.view(shape)


def fit(
    model: StableResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    train_index: torch.Tensor | None = None,
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
) -> TrainResult:
    """Train every member of ``model`` on its rows of (X, y).

    Parameters
    ----------
    model : StableResNet with M members; updated in place.
    X : (n_samples, in_features) float tensor, shared by all members (never copied per member).
    y : (n_samples,) int64 class indices.
    config : TrainConfig
    train_index : (M, n_train) int64 or None
        Rows of X each member trains on (its own split); ``None`` means all rows for all.
    on_epoch : called as ``on_epoch(epoch, mean_loss_per_member)`` after each epoch.
    """
    _check_data(X, y, model)
    n_members = model.n_members
    device = model.step_size.device
    X, y = X.to(device=device, dtype=model.step_size.dtype), y.to(device)
    if train_index is None:
        train_index = torch.arange(X.shape[0], device=device).expand(n_members, -1)
    train_index = train_index.to(device)
    n_train = train_index.shape[1]
    if n_train < 1:
        raise ConfigError("the training split is empty")
    if config.standardize:
        fit_standardization(model, X, train_index)

    # foreach: one fused kernel per update rule over all parameters, also on the CPU.
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[config.optimizer](trainable, lr=config.learning_rate, foreach=True)
    batch_generators = [member_generator(seed, "batches") for seed in model.seeds]
    state = _member_state(model)
    alive = torch.ones(n_members, dtype=torch.bool, device=device)
    diverged_epoch = torch.full((n_members,), -1, dtype=torch.long, device=device)
    history = []
    model.train()
    for epoch in range(config.epochs):
        order = torch.stack([torch.randperm(n_train, generator=g) for g in batch_generators]).to(device)
        order = torch.gather(train_index, 1, order)
        epoch_loss = torch.zeros(n_members, device=device)
        n_batches = 0
        for start in _batch_starts(n_train, config.batch_size):
            rows = order[:, start : start + config.batch_size]  # (M, B): indices, not data copies
            before = [t.detach().clone() for t, _ in state]
            logits = model(X[rows])
            member_loss = F.cross_entropy(
                logits.flatten(0, 1), y[rows].flatten(), reduction="none"
            ).view(n_members, -1).mean(dim=1)
            objective = member_loss + config.smoothness * model.field.smoothness() if config.smoothness else member_loss
            optimizer.zero_grad(set_to_none=False)
            torch.where(alive, objective, 0.0).sum().backward()
            finite = torch.isfinite(objective)
            for p in trainable:
                finite &= torch.isfinite(p.grad).flatten(1).all(dim=1)
            newly_diverged = alive & ~finite
            diverged_epoch = torch.where(newly_diverged, epoch, diverged_epoch)
            alive = alive & finite
            optimizer.step()
            with torch.no_grad():
                # Diverged members are put back to their state before this step.
                for (tensor, axis), old in zip(state, before):
                    tensor.copy_(torch.where(_member_mask(alive, tensor, axis), tensor, old))
            epoch_loss += torch.where(alive, member_loss.detach(), 0.0)
            n_batches += 1
        mean_loss = (epoch_loss / max(n_batches, 1)).cpu().numpy()
        mean_loss[~alive.cpu().numpy()] = np.nan
        history.append(mean_loss)
        if on_epoch is not None:
            on_epoch(epoch, mean_loss)
        if not alive.any():
            break
    model.eval()
    return TrainResult(
        diverged=~alive.cpu().numpy(),
        diverged_epoch=diverged_epoch.cpu().numpy(),
        loss_history=np.array(history),
        step_sizes=model.block_step_sizes().cpu().numpy(),
    )


def predict_logits(model: StableResNet, X: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    """Evaluation-mode logits (M, n, C) for inputs X (n, in) or (M, n, in), in chunks."""
    model.eval()
    X = X.to(device=model.step_size.device, dtype=model.step_size.dtype)
    with torch.no_grad():
        chunks = [model._members(X)[:, i : i + batch_size] for i in range(0, X.shape[-2], batch_size)]
        return torch.cat([model(chunk) for chunk in chunks], dim=1)


def evaluate(
    model: StableResNet, X: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None = None, batch_size: int = 8192
) -> dict[str, np.ndarray]:
    """Per-member accuracy and mean cross-entropy on (X, y).

    ``index`` (M, n) picks each member's own rows of X (e.g. its test split); rows are
    gathered chunk by chunk, never copied per member whole. A row whose logits are
    not finite (a diverged member) counts as misclassified.
    """
    device = model.step_size.device
    X, y = X.to(device=device, dtype=model.step_size.dtype), y.to(device)
    if index is None:
        index = torch.arange(X.shape[0], device=device).expand(model.n_members, -1)
    index = index.to(device)
    correct = torch.zeros(model.n_members, device=device)
    loss = torch.zeros(model.n_members, device=device, dtype=X.dtype)
    model.eval()
    with torch.no_grad():
        for start in range(0, index.shape[1], batch_size):
            rows = index[:, start : start + batch_size]
            logits, labels = model(X[rows]), y[rows]
            finite_rows = torch.isfinite(logits).all(dim=-1)
            correct += ((logits.argmax(dim=-1) == labels) & finite_rows).sum(dim=1)
            loss += F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view_as(labels).sum(dim=1)
    n_rows = index.shape[1]
    return {"accuracy": (correct / n_rows).cpu().numpy(), "loss": (loss / n_rows).cpu().numpy()}
