"""Multi-level training in depth (Chang et al. 2018b): train a short network, then refine it.

A network of N blocks at step size h integrates dy/dt = F(t, y) over [0, N h] with N
forward steps. Prolongation doubles the blocks and halves h: block i's parameters serve
blocks 2i and 2i + 1 (piecewise-constant in time), so the finer network integrates the
same ODE over the same interval with steps of h/2. For Euler the two half steps differ
from the one full step by

    (h/2) (F(y + (h/2) F(y)) − F(y)) = (h²/4) ∂F/∂y F(y) + O(h³)

per block, so right after prolongation the function changes by O(N h²) = O(T h) and
not at all where F is constant. ``fit_multilevel`` trains the coarsest network, then
prolongates and trains again, ``levels`` times in all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .errors import ConfigError
from .model import StableResNet
from .train import Checkpoint, TrainConfig, TrainResult, fit


def _check_levels(levels) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ConfigError(f"levels must be an integer ≥ 1; got {levels!r}")
    return int(levels)


def coarsen(config: dict, levels: int) -> dict:
    """The coarsest level's model config for a final network ``config`` (``StableResNet.config()`` keys).

    Depth D / 2^(L−1), step sizes h · 2^(L−1) (and h_max likewise), so ``levels − 1``
    prolongations give back depth D at h over the same time interval D h.
    """
    factor = 2 ** (_check_levels(levels) - 1)
    depth = config["depth"]
    if depth % factor:
        raise ConfigError(f"depth {depth} cannot be built in {levels} levels: it must be a multiple of 2^(levels−1) = {factor}")

    def scaled(value):
        if value is None:
            return None
        return [v * factor for v in value] if isinstance(value, (list, tuple)) else value * factor

    return {**config, "depth": depth // factor, "step_size": scaled(config["step_size"]),
            "max_step_size": scaled(config.get("max_step_size"))}


def coarsest_model(final: StableResNet, levels: int) -> StableResNet:
    """A fresh network for the first of ``levels`` levels that end in ``final``'s shape (``final`` if 1).

    Seeds, field, integrator and policy are ``final``'s; depth and step sizes follow ``coarsen``.
    """
    if _check_levels(levels) == 1:
        return final
    reference = final.step_size
    return StableResNet(**coarsen(final.config(), levels)).to(device=reference.device, dtype=reference.dtype)


def _depth_axis(coarse: torch.Size, fine: torch.Size) -> int:
    axes = [axis for axis, (c, f) in enumerate(zip(coarse, fine)) if c != f]
    if len(axes) != 1 or fine[axes[0]] != 2 * coarse[axes[0]]:
        raise AssertionError(f"a prolongated tensor must differ only in a doubled depth axis; got {coarse} -> {fine}")
    return axes[0]


def prolongate(model: StableResNet) -> StableResNet:
    """A network of twice the depth at half the step size whose blocks 2i and 2i + 1 copy block i.

    Every tensor with a depth axis (the field's parameters and batch-norm statistics, the
    step-size policy's state) is duplicated along it; the rest (standardisation, lift,
    head) is copied. Step sizes are halved: h and h_max, the learnable policy's h_i with
    them, and the adaptive policy's running average. ``model`` is left unchanged.
    """
    config = model.config()
    config["depth"] = 2 * model.depth
    config["step_size"] = [h / 2 for h in config["step_size"]]
    config["max_step_size"] = [h / 2 for h in config["max_step_size"]]
    reference = model.step_size
    finer = StableResNet(**config).to(device=reference.device, dtype=reference.dtype)
    fine_state = finer.state_dict()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name == "step_size":  # the finer model already holds h / 2
                continue
            target = fine_state[name]
            if tensor.shape != target.shape:
                tensor = tensor.repeat_interleave(2, dim=_depth_axis(tensor.shape, target.shape))
            target.copy_(tensor)
    finer.step_policy.scale_step_sizes_(0.5)
    finer.train(model.training)
    return finer


def fit_multilevel(
    model: StableResNet,
    X: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    levels: int,
    train_index: torch.Tensor | None = None,
    on_epoch: Callable[[int, np.ndarray], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[StableResNet, TrainResult]:
    """Train ``model`` (the coarsest level), prolongate, train again: ``levels`` levels in all.

    Each level trains ``config.epochs`` epochs with a fresh optimiser; ``levels=1`` is
    plain ``fit``. Returns the finest network (depth · 2^(levels−1), a new object unless
    ``levels=1``) and one `TrainResult` over all levels: losses of every epoch in order
    (``on_epoch`` gets that running epoch index), and a member counts as diverged, at
    its first such epoch, if it diverged at any level. ``checkpoint`` (`train.Checkpoint`) is
    used with one level only: a multi-level run resumes at its start.
    """
    levels = _check_levels(levels)
    if levels == 1:
        return model, fit(model, X, y, config, train_index=train_index, on_epoch=on_epoch, checkpoint=checkpoint)
    results = []
    for level in range(levels):
        if level:
            model = prolongate(model)
        offset = level * config.epochs
        level_on_epoch = None if on_epoch is None else (lambda epoch, loss, offset=offset: on_epoch(offset + epoch, loss))
        results.append(fit(model, X, y, config, train_index=train_index, on_epoch=level_on_epoch))
    diverged = np.any([r.diverged for r in results], axis=0)
    first = np.full(model.n_members, -1)
    for level, result in reversed(list(enumerate(results))):
        first = np.where(result.diverged, result.diverged_epoch + level * config.epochs, first)
    return model, TrainResult(
        diverged=diverged,
        diverged_epoch=first,
        loss_history=np.concatenate([r.loss_history for r in results]),
        step_sizes=results[-1].step_sizes,
        compiled=any(r.compiled for r in results),
        compile_reason="; ".join(dict.fromkeys(r.compile_reason for r in results)),
    )
