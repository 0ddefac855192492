"""Initial weights of the blocks' K1 and K2: a choice the paper never states, and one that decides deep nets.

A shrinkage block is y − h K1ᵀ D K1 y near the origin (eq. 8, D = diag(σ') ∈ {0, 1} for ReLU), so
each block contracts by about 1 − h·s² along K1's directions, s the scale of K1's entries, and a
stack of N blocks by (1 − h s²)^N. With Glorot-uniform weights at width 2 (bound √(6/4) ≈ 1.22)
500 blocks at h = 0.1 shrink every point to ~1e-11 before training starts; with Keras 2's
``'uniform'`` initialiser, U(−0.05, 0.05), the same stack barely moves it. The paper used Keras and
does not say which initialiser; Keras' ``Dense`` layers default to Glorot, and the shrinkage block,
whose K1ᵀ is tied to K1, needs a custom layer, which Keras' guide of that time built with
``initializer='uniform'``.

An initialiser is named by a string, ``NAME`` or ``NAME:SCALE``:

=================  ==============================================  ===============
name               K1, K2 entries                                   scale (default)
=================  ==============================================  ===============
``glorot``         U(−g·b, g·b), b = √(6 / (fan_in + fan_out))     gain g (1)
``uniform``        U(−a, a) (Keras 2's ``'uniform'``)               a (0.05)
``normal``         N(0, σ²) (Keras' ``'random_normal'``)            σ (0.05)
``depth-scaled``   Glorot × g / √depth (Fixup's rule)               gain g (1)
=================  ==============================================  ===============

``depth-scaled`` keeps a shrinkage stack's total contraction, which grows like h·depth·s², the
same at every depth: at width 2 and depth 500 its bound is 1.22/√500 ≈ 0.055, close to U(±0.05).
(Multi-level training draws the coarsest network's weights, so there "depth" is the coarsest depth.)

Only the blocks' K1 and K2 follow the initialiser; the lift and the head stay Glorot-uniform and
biases zero. Member m draws from its own generators (``model.member_generator``), so a seed gives
every block type the same draws, whatever the ensemble: the paired design holds for every initialiser.
Adding an initialiser is one class plus one registry entry.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from .errors import ConfigError

DEFAULT_INIT = "glorot"


def glorot_bound(weight: torch.Tensor) -> float:
    """√(6 / (fan_in + fan_out)) of a weight (M, ..., fan_out, fan_in)."""
    fan_out, fan_in = weight.shape[-2:]
    return math.sqrt(6.0 / (fan_in + fan_out))


class AbstractInitializer(ABC):
    """Draws one member's weight entries: ``draw(shape, generator, weight, depth)`` -> float64 tensor."""

    default_scale: ClassVar[float]
    scale_name: ClassVar[str]

    def __init__(self, scale: float):
        self.scale = scale

    @abstractmethod
    def draw(self, shape: torch.Size, generator: torch.Generator, weight: torch.Tensor, depth: int) -> torch.Tensor:
        """Entries of one member's ``weight[m]`` (shape ``shape``), from ``generator`` only."""


def _uniform(shape, generator, bound: float) -> torch.Tensor:
    return (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1) * bound


class Glorot(AbstractInitializer):
    """U(−g·b, g·b), b = √(6 / (fan_in + fan_out)): Keras' default (g = 1), or scaled by a gain g."""

    default_scale, scale_name = 1.0, "gain"

    def draw(self, shape, generator, weight, depth):
        return _uniform(shape, generator, glorot_bound(weight) * self.scale)


class Uniform(AbstractInitializer):
    """U(−a, a), a fixed bound whatever the width (Keras 2's ``'uniform'``: a = 0.05)."""

    default_scale, scale_name = 0.05, "bound"

    def draw(self, shape, generator, weight, depth):
        return _uniform(shape, generator, self.scale)


class Normal(AbstractInitializer):
    """N(0, σ²) (Keras' ``'random_normal'``: σ = 0.05)."""

    default_scale, scale_name = 0.05, "standard deviation"

    def draw(self, shape, generator, weight, depth):
        return torch.randn(shape, generator=generator, dtype=torch.float64) * self.scale


class DepthScaled(AbstractInitializer):
    """Glorot × g / √depth (Fixup's rule for two-layer residual branches): a stack's total
    contraction, ~ h·depth·s², no longer grows with depth."""

    default_scale, scale_name = 1.0, "gain"

    def draw(self, shape, generator, weight, depth):
        return _uniform(shape, generator, glorot_bound(weight) * self.scale / math.sqrt(depth))


INITIALIZERS: dict[str, type[AbstractInitializer]] = {
    "glorot": Glorot,
    "uniform": Uniform,
    "normal": Normal,
    "depth-scaled": DepthScaled,
}


def parse_init(spec) -> AbstractInitializer:
    """The initialiser of ``"NAME"`` or ``"NAME:SCALE"`` (module docstring); a `ConfigError` names a bad one.

    >>> init = parse_init("uniform:0.1"); type(init).__name__, init.scale
    ('Uniform', 0.1)
    >>> parse_init("normal").scale
    0.05
    """
    if not isinstance(spec, str):
        raise ConfigError(f"init must be a string NAME or NAME:SCALE, NAME one of {sorted(INITIALIZERS)}; got {spec!r}")
    name, colon, scale_text = spec.strip().partition(":")
    if name not in INITIALIZERS:
        raise ConfigError(f"unknown init {name!r} in {spec!r}; expected one of {sorted(INITIALIZERS)}, "
                          "optionally with :SCALE (e.g. uniform:0.05, glorot:0.5)")
    kind = INITIALIZERS[name]
    if not colon:
        return kind(kind.default_scale)
    try:
        scale = float(scale_text)
    except ValueError:
        raise ConfigError(f"init {spec!r}: the {kind.scale_name} after ':' must be a number; got {scale_text!r}") from None
    if not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"init {spec!r}: the {kind.scale_name} must be a finite number > 0; got {scale_text!r}")
    return kind(scale)


def initialize_(weight: torch.Tensor, generators: list[torch.Generator], init: AbstractInitializer,
                depth: int) -> None:
    """Fill ``weight`` (M, ..., fan_out, fan_in) member by member: member m draws from ``generators[m]`` only."""
    with torch.no_grad():
        for member, generator in enumerate(generators):
            weight[member].copy_(init.draw(weight.shape[1:], generator, weight, depth))
