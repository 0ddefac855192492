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

With a `Checkpoint`, ``fit`` saves its whole state between epochs, and a run killed part-way
resumes at the last save with the numbers of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.fx.experimental import _config as shape_config

from . import compilation
from .compilation import Choice
from .files import write_atomically
from .errors import ConfigError
from .model import StableResNet, member_generator

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
# Each optimiser's kernel, the same for eager and compiled training, so that every path steps alike:
# the fused one, a single pass over the flat buffer (benchmarks/bench_optimizer.py). Adam's is
# about 3x faster than foreach's several passes on the CPU and 1.5-3x on a GPU; SGD's update is
# one multiply-add either way (the same bits as foreach); its fused kernel ties with foreach on the
# CPU (within runs' ±25 % spread) and was up to 12 % faster on a GPU.
KERNELS = {"adam": {"fused": True}, "sgd": {"fused": True}}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: the paper's defaults are Adam with learning rate 1e-3 (Keras').

    ``smoothness`` is λ ≥ 0 of the inter-layer penalty λ Σ_i ‖K_{i+1} − K_i‖²_F (Haber &
    Ruthotto 2017), summed over the field's weight matrices; 0 (the paper) turns it off.
    ``adam_epsilon`` is Adam's ε in the step lr · m̂ / (√v̂ + ε): PyTorch's 1e-8 by default,
    Keras' (the paper's framework) is 1e-7. ``compile`` runs each mini-batch's forward pass and
    loss through ``torch.compile`` (its backward too): fused element-wise kernels, at the cost of a
    compilation per network shape (on 2 cores 45 s for a Wine group, 1-8 min for Adult's; seconds
    once its graphs are cached: `compilation`), so it pays only for long runs
    (``benchmarks/bench_capacity.py --compare``). On CUDA the compiled step is
    captured as CUDA graphs (``mode="reduce-overhead"``). Fused kernels round differently: results
    match the eager engine's to round-off, not to the bit. Both take the optimiser's ``KERNELS``.
    ``compile="auto"`` compiles only where the run is long enough to pay for it
    (`compilation.choose`: a fixed rule, no clock, so a run repeats to the bit).
    """

    epochs: int = 50
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    standardize: bool = True
    smoothness: float = 0.0
    adam_epsilon: float = 1e-8
    compile: bool | str = False

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be an integer ≥ 1; got {value!r}")
        if not np.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be a finite number > 0; got {self.learning_rate!r}")
        if isinstance(self.smoothness, bool) or not np.isfinite(self.smoothness) or self.smoothness < 0:
            raise ConfigError(f"smoothness must be a finite number ≥ 0; got {self.smoothness!r}")
        if isinstance(self.adam_epsilon, bool) or not np.isfinite(self.adam_epsilon) or self.adam_epsilon <= 0:
            raise ConfigError(f"adam_epsilon must be a finite number > 0; got {self.adam_epsilon!r}")
        compilation.check_setting(self.compile)
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
    # Training seconds that earlier, stopped calls spent on the epochs this call resumed after (`Checkpoint`).
    resumed_seconds: float = 0.0
    compiled: bool = False  # whether this call trained through torch.compile
    compile_reason: str = ""  # why (`compilation.Choice.reason`)


@dataclass(frozen=True)
class Checkpoint:
    """Where ``fit`` keeps its state, saved after an epoch (the last one too) once ``every_seconds``
    have passed since training started or was last saved (0: after every epoch), so that a killed
    run resumes there; a run shorter than that writes nothing.

    The state is everything the remaining epochs read: parameters, optimiser moments, buffers
    (batch-norm statistics, the adaptive policy's averages), each member's mini-batch generator,
    the divergence marks, the loss history and the training time; so a resumed run ends with the
    numbers of an uninterrupted one, to the bit. The file is left for the caller to remove once it
    has kept its results: a run killed after a save of its last epoch resumes there, at no cost.
    A file saved by another run (other data, seeds, model or training settings), in another format
    or unreadable is not used, and is overwritten. The engine (eager or compiled) and the device
    may change between runs; the numbers then agree with an uninterrupted run's to round-off only.
    """

    path: Path
    every_seconds: float = 300.0

    def __post_init__(self):
        if isinstance(self.every_seconds, bool) or not np.isfinite(self.every_seconds) or self.every_seconds < 0:
            raise ConfigError(f"a checkpoint's every_seconds must be a finite number ≥ 0; got {self.every_seconds!r}")


CHECKPOINT_FORMAT = 2  # the saved state's layout; a file of another format is not used (2: padded buffers)


def _fingerprint(model: StableResNet, X: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                 train_index: torch.Tensor) -> str:
    """What a checkpoint must come from: the model's config, the training settings and the rows."""
    settings = [model.config(), asdict(replace(config, compile=False))]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=lambda number: number.item()).encode())
    for tensor in (X, y, train_index):
        digest.update(tensor.detach().cpu().contiguous().numpy())
    return digest.hexdigest()


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


def epoch_orders(generators: list[torch.Generator], n_rows: int) -> torch.Tensor:
    """(M, n_rows): each member's row order for one epoch, ``randperm`` from its own "batches" generator."""
    return torch.stack([torch.randperm(n_rows, generator=g) for g in generators])


def _batch_starts(n_rows: int, batch_size: int) -> range:
    # A trailing batch of one row is dropped: batch norm cannot normalise a single sample.
    usable = n_rows - 1 if n_rows % batch_size == 1 and n_rows > 1 else n_rows
    return range(0, usable, batch_size)


def _member_buffers(model: StableResNet) -> list[tuple[torch.Tensor, int]]:
    """Buffers that the forward pass changes in training, with the position of their member axis."""
    # Batch-norm running statistics are stored (depth, M, width); step-size policy state (M, depth).
    state = [(b, 1) for name, b in model.field.named_buffers() if "running" in name]
    return state + [(b, 0) for b in model.step_policy.buffers()]


def _member_mask(alive: torch.Tensor, tensor: torch.Tensor, member_axis: int) -> torch.Tensor:
    shape = [1] * tensor.dim()
    shape[member_axis] = -1
    return alive.view(shape)


class _FlatParameters:
    """The trainable parameters as views into one flat buffer, their gradients into another.

    The optimiser then updates one tensor (Adam and SGD act element-wise, so the numbers are
    those of a per-tensor update), and one reduction over the gradient buffer tells whether
    anything turned non-finite. A field's stacked (M, depth, ...) parameters are stored
    depth-major, so each block's (M, ...) slice is contiguous and its products need no copy.
    ``release`` gives every parameter back its own contiguous storage.

    The buffers end in zeros up to a multiple of ``ALIGNMENT`` elements. The fused kernels step
    whole SIMD vectors and the last few elements one by one, which can round differently (one
    unit in the last place, seen in Adam's update); without the padding the last parameter (the
    head's bias) of a one-member model sits in that tail, and the member would not train alone
    as it does in an ensemble. A zero parameter with a zero gradient stays zero under Adam and SGD.
    """

    ALIGNMENT = 64  # floats: a multiple of every CPU's SIMD width (16 float32 in AVX-512)

    def __init__(self, model: StableResNet):
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        stacked = {id(p) for p in model.field.parameters(recurse=False)}
        self.depth_major = [id(p) in stacked for p in self.parameters]
        first = self.parameters[0]
        size = sum(p.numel() for p in self.parameters)
        padded = -(-size // self.ALIGNMENT) * self.ALIGNMENT
        self.values = torch.zeros(padded, dtype=first.dtype, device=first.device)
        self.grads = torch.zeros_like(self.values)
        for p, value, grad in zip(self.parameters, self.views(self.values), self.views(self.grads)):
            value.copy_(p.detach())
            p.data, p.grad = value, grad

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Each parameter's (M, ...) view into ``flat`` (any buffer laid out like ``values``)."""
        result, offset = [], 0
        for p, depth_major in zip(self.parameters, self.depth_major):
            chunk = flat[offset : offset + p.numel()]
            offset += p.numel()
            shape = p.shape
            if depth_major:
                result.append(chunk.view(shape[1], shape[0], *shape[2:]).transpose(0, 1))
            else:
                result.append(chunk.view(shape))
        return result

    def release(self) -> None:
        for p in self.parameters:
            p.data = p.detach().clone(memory_format=torch.contiguous_format)
            p.grad = p.grad.clone(memory_format=torch.contiguous_format)


def fit(
    model: StableResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    train_index: torch.Tensor | None = None,
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
    checkpoint: Checkpoint | None = None,
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
    on_epoch : called as ``on_epoch(epoch, mean_loss_per_member)`` after each epoch (from the
        first epoch not yet trained, when resumed from a checkpoint).
    checkpoint : Checkpoint or None
        Save the state between epochs there, and resume from it (see `Checkpoint`).
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

    saving = None if checkpoint is None else (checkpoint, _fingerprint(model, X, y, config, train_index))
    flat = _FlatParameters(model)
    try:
        alive, diverged_epoch, history, resumed_seconds, choice = _train(model, X, y, config, train_index, on_epoch,
                                                                         flat, saving)
    finally:
        flat.release()
    model.eval()
    return TrainResult(
        diverged=~alive.cpu().numpy(),
        diverged_epoch=diverged_epoch.cpu().numpy(),
        loss_history=np.array(history),
        step_sizes=model.block_step_sizes().cpu().numpy(),
        resumed_seconds=resumed_seconds,
        compiled=choice.compile,
        compile_reason=choice.reason,
    )


def _train(
    model: StableResNet, X: torch.Tensor, y: torch.Tensor, config: TrainConfig, train_index: torch.Tensor,
    on_epoch: Callable[[int, np.ndarray], None] | None, flat: _FlatParameters,
    saving: tuple[Checkpoint, str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray], float, Choice]:
    """The epochs of ``fit``; returns (alive, diverged_epoch, loss history, resumed seconds, engine choice).

    ``saving`` is a checkpoint and the fingerprint of this run: the epochs start from the state
    saved there (when it is this run's) and the state is saved there between epochs.
    """
    n_members, n_train, device = model.n_members, train_index.shape[1], X.device
    # One tensor for the optimiser: its update is one or a few whole-buffer kernels.
    flat.values.grad = flat.grads
    options = {"eps": config.adam_epsilon} if config.optimizer == "adam" else {}
    optimizer = OPTIMIZERS[config.optimizer]([flat.values], lr=config.learning_rate, **KERNELS[config.optimizer],
                                             **options)
    batch_generators = [member_generator(seed, "batches") for seed in model.seeds]
    buffers = _member_buffers(model)
    alive = torch.ones(n_members, dtype=torch.bool, device=device)
    diverged_epoch = torch.full((n_members,), -1, dtype=torch.long, device=device)
    # On the CPU a flag is read for free: the common step (everything finite, nobody dead) skips
    # the per-member checks. Elsewhere every step takes the masked path, which never waits on the host.
    host_checks, any_dead = device.type == "cpu", False
    history = []

    def member_losses(x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's mean cross-entropy on its (B,) batch, and its training objective."""
        member_loss = F.cross_entropy(model(x).flatten(0, 1), target.flatten(), reduction="none")
        member_loss = member_loss.view(n_members, -1).mean(dim=1)
        objective = member_loss + config.smoothness * model.field.smoothness() if config.smoothness else member_loss
        return member_loss, objective

    model.train()
    first_epoch, resumed_seconds = 0, 0.0
    started = last_save = time.monotonic()
    if saving is not None:
        resumed = _load_state(saving, model, flat, optimizer, batch_generators)
        if resumed is not None:
            first_epoch, alive, diverged_epoch, history, resumed_seconds = resumed
            any_dead = host_checks and not bool(alive.all())
    # The whole run's steps, resumed or not: a resumed run makes the choice it made at the start.
    steps = config.epochs * len(_batch_starts(n_train, config.batch_size))
    choice = compilation.choose(config.compile, model, steps, config.batch_size, device)
    compilation.logger.info("%s", choice.reason)
    if choice.compile:
        member_losses = _compiled(member_losses, compilation.shape_key(model, config.batch_size, device), device)
    for epoch in range(first_epoch, config.epochs):
        order = epoch_orders(batch_generators, n_train).to(device)
        order = torch.gather(train_index, 1, order)
        epoch_loss = torch.zeros(n_members, device=device)
        n_batches = 0
        for start in _batch_starts(n_train, config.batch_size):
            rows = order[:, start : start + config.batch_size]  # (M, B): indices, not data copies
            saved = [b.clone() for b, _ in buffers]
            member_loss, objective = member_losses(X[rows], y[rows])
            flat.grads.zero_()
            torch.where(alive, objective, 0.0).sum().backward()
            # A sum is finite only if every term is (an overflow merely sends the step to the exact check).
            if not host_checks or any_dead or not torch.isfinite(flat.grads.sum() + objective.sum()):
                alive, diverged_epoch = _freeze_diverged(flat, optimizer, objective, alive, diverged_epoch, epoch)
                any_dead = host_checks and not bool(alive.all())
            optimizer.step()
            if not host_checks or any_dead:
                with torch.no_grad():  # dead members' statistics go back to their values before this step
                    for (tensor, axis), old in zip(buffers, saved):
                        tensor.copy_(torch.where(_member_mask(alive, tensor, axis), tensor, old))
            epoch_loss += torch.where(alive, member_loss.detach(), 0.0)
            n_batches += 1
        mean_loss = (epoch_loss / max(n_batches, 1)).cpu().numpy()
        mean_loss[~alive.cpu().numpy()] = np.nan
        history.append(mean_loss)
        everyone_dead = not bool(alive.any())
        if saving is not None and time.monotonic() - last_save >= saving[0].every_seconds:
            next_epoch = config.epochs if everyone_dead else epoch + 1  # nobody left to train: finished
            last_save = time.monotonic()
            _save_state(saving, next_epoch, model, flat, optimizer, batch_generators, alive, diverged_epoch, history,
                        resumed_seconds + last_save - started)
        if on_epoch is not None:
            on_epoch(epoch, mean_loss)
        if everyone_dead:
            break
    return alive, diverged_epoch, history, resumed_seconds, choice


def _compiled(member_losses: Callable, shape: str, device: torch.device) -> Callable:
    """``member_losses`` through ``torch.compile``, its graphs kept in `compilation.cache_folder`;
    the shape is listed as compiled there once its first step has run.

    Shapes are symbols: the epoch's last, smaller batch reuses the one graph (static shapes compiled
    twice, for no faster steps). Sizes that happen to be equal keep their own symbols: by default
    Dynamo gives them one, so a batch as large as the group (Adult's 100 rows for 100 members) was
    fixed with the group's size and the last batch compiled a second graph, which then served
    every step. Python floats are constants of the graph: as symbols, Dynamo restarted its
    analysis of a batch-norm network on every run, warm cache or not. On CUDA the step is captured
    as CUDA graphs: one launch per step instead of hundreds.
    """
    compilation.use_cache_folder()
    compiled = torch.compile(member_losses, dynamic=True, mode="reduce-overhead" if device.type == "cuda" else None)
    first_call = []

    def run(x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        started = time.monotonic()
        with torch._dynamo.config.patch(specialize_float=True), shape_config.patch(use_duck_shape=False):
            result = compiled(x, target)
        if not first_call:
            first_call.append(True)
            compilation.remember(shape, time.monotonic() - started)
        return result

    return run


def _save_state(saving: tuple[Checkpoint, str], next_epoch: int, model: StableResNet, flat: _FlatParameters,
                optimizer: torch.optim.Optimizer, generators: list[torch.Generator], alive: torch.Tensor,
                diverged_epoch: torch.Tensor, history: list[np.ndarray], seconds: float) -> None:
    """Write the state the epochs from ``next_epoch`` on read, atomically (a kill mid-write keeps the last one),
    with the training ``seconds`` spent up to it."""
    checkpoint, fingerprint = saving
    state = {
        "format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "next_epoch": next_epoch,
        "parameters": flat.values.detach().cpu(),
        "buffers": {name: b.detach().cpu() for name, b in model.named_buffers()},
        "optimizer": optimizer.state_dict(), "generators": [g.get_state() for g in generators],
        "alive": alive.cpu(), "diverged_epoch": diverged_epoch.cpu(), "history": torch.from_numpy(np.stack(history)),
        "seconds": seconds,
    }
    write_atomically(checkpoint.path, lambda p: torch.save(state, p))


def _load_state(saving: tuple[Checkpoint, str], model: StableResNet, flat: _FlatParameters,
                optimizer: torch.optim.Optimizer, generators: list[torch.Generator],
                ) -> tuple[int, torch.Tensor, torch.Tensor, list[np.ndarray], float] | None:
    """Put this run's saved state back; (next epoch, alive, diverged_epoch, history, seconds), or None where
    there is no checkpoint, or it is another run's, another format's or unreadable."""
    checkpoint, fingerprint = saving
    path = Path(checkpoint.path)
    if not path.is_file():
        return None
    try:  # on the CPU first: a state saved on a GPU loads anywhere, and goes to this run's device below
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or \
            state.get("fingerprint") != fingerprint:
        return None
    device = flat.values.device
    with torch.no_grad():
        flat.values.copy_(state["parameters"])
        for name, buffer in model.named_buffers():
            buffer.copy_(state["buffers"][name])
    saved = state["optimizer"]
    # The moments are the run's; the kernel (foreach or fused) is this engine's, so keep today's groups.
    saved["param_groups"] = [{**group, "params": old["params"]}
                             for group, old in zip(optimizer.state_dict()["param_groups"], saved["param_groups"])]
    optimizer.load_state_dict(saved)
    for generator, generator_state in zip(generators, state["generators"]):
        generator.set_state(generator_state)
    history = list(state["history"].numpy())
    return (state["next_epoch"], state["alive"].to(device), state["diverged_epoch"].to(device), history,
            state.get("seconds", 0.0))


def _freeze_diverged(
    flat: _FlatParameters, optimizer: torch.optim.Optimizer, objective: torch.Tensor, alive: torch.Tensor,
    diverged_epoch: torch.Tensor, epoch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mark members whose loss or gradient is non-finite; freeze every dead member exactly.

    A dead member's gradient and optimiser moments are set to zero, so Adam's and SGD's
    update leaves its parameters bit for bit where they were before the step that failed.
    """
    finite = torch.isfinite(objective)
    for grad in flat.views(flat.grads):
        finite &= torch.isfinite(grad).reshape(grad.shape[0], -1).all(dim=1)
    diverged_epoch = torch.where(alive & ~finite, epoch, diverged_epoch)
    alive = alive & finite
    state = [t for t in optimizer.state[flat.values].values() if t.shape == flat.values.shape]
    with torch.no_grad():
        for buffer in (flat.grads, *state):
            for view in flat.views(buffer):
                view.masked_fill_(~_member_mask(alive, view, 0), 0.0)
    return alive, diverged_epoch


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
