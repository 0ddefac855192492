"""Residual blocks as steps of an ODE solver (Zhang & Wynter 2018, eqs. 5-8).

A block is two separate objects, after diffrax: a *vector field* F (the layer's
learned map, with parameters K1, K2, b1, b2) and an *integrator* (the step rule).
Forward Euler turns them into the paper's residual update

    y_{i+1} = y_i + h * F_i(y_i)                                          (eq. 5)

A vector-field module holds the parameters of *all* `depth` layers of M independent
networks (members), stacked as (M, depth, ...): the ensemble engine trains every
member in one batched pass, and a single network is M = 1. ``field.layers()`` splits
them into one parameter dict per layer and ``field(y, layer)`` evaluates F_i.
Features are row vectors of shape (M, batch, width); a weight K of shape
(M, width, width) acts as ``y @ Kᵀ``, i.e. ``K y`` in the paper's column notation.

Adding a vector field or an integrator is one class plus one registry entry.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


def glorot_uniform_(weight: torch.Tensor, generators: list[torch.Generator]) -> None:
    """Fill ``weight`` (M, ..., fan_out, fan_in) member by member with Glorot-uniform draws.

    Bound sqrt(6 / (fan_in + fan_out)), Keras' default initialiser (the paper's
    experiments used Keras). Member m draws from ``generators[m]`` only.
    """
    fan_out, fan_in = weight.shape[-2:]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        for member, generator in enumerate(generators):
            draw = torch.rand(weight.shape[1:], generator=generator, dtype=torch.float64)
            weight[member].copy_((2 * draw - 1) * bound)


def affine(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Member-wise ``bias + y @ weightᵀ`` for y (M, B, d_in), weight (M, d_out, d_in), bias (M, 1, d_out)."""
    return torch.baddbmm(bias, y, weight.transpose(1, 2))


class AbstractVectorField(nn.Module, ABC):
    """The right-hand sides F_i(y), i < depth, of dy/dt = F(t, y), for M members.

    K1 (M, depth, d, d) and b1 (M, depth, 1, d) exist in every field, so a seed gives
    the same initial K1 whichever field is chosen (a paired design across blocks).
    """

    def __init__(self, n_members: int, depth: int, width: int, activation: str):
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.K1 = nn.Parameter(torch.zeros(n_members, depth, width, width))
        self.b1 = nn.Parameter(torch.zeros(n_members, depth, 1, width))

    def init_weights(self, k1_generators: list[torch.Generator], k2_generators: list[torch.Generator]) -> None:
        """Glorot-uniform weights, zero biases (Keras' defaults)."""
        glorot_uniform_(self.K1, k1_generators)

    def layers(self) -> list[dict[str, torch.Tensor]]:
        """One dict of (M, ...) tensors per layer; ``unbind`` keeps the backward pass one stack."""
        per_name = {name: p.unbind(1) for name, p in self.named_parameters(recurse=False)}
        return [{name: tensors[i] for name, tensors in per_name.items()} for i in range(self.K1.shape[1])]

    @abstractmethod
    def forward(self, y: torch.Tensor, layer: dict[str, torch.Tensor], index: int) -> torch.Tensor:
        """F_index(y) for features y (M, B, d) with that layer's parameters."""


class Plain(AbstractVectorField):
    """F(y) = K2 σ(K1 y + b1) + b2 (Definitions 1-2, eq. 7).

    With h = 1 and forward Euler this is the vanilla ResNet block. No stability
    guarantee: the eigenvalues of ∂F/∂y may have any sign.
    """

    def __init__(self, n_members: int, depth: int, width: int, activation: str):
        super().__init__(n_members, depth, width, activation)
        self.K2 = nn.Parameter(torch.zeros(n_members, depth, width, width))
        self.b2 = nn.Parameter(torch.zeros(n_members, depth, 1, width))

    def init_weights(self, k1_generators, k2_generators):
        super().init_weights(k1_generators, k2_generators)
        glorot_uniform_(self.K2, k2_generators)

    def forward(self, y, layer, index):
        return affine(self.activation(affine(y, layer["K1"], layer["b1"])), layer["K2"], layer["b2"])


class Shrinkage(AbstractVectorField):
    """F(y) = -(K1ᵀ σ(K1 y + b1) + b2) (Definition 3, eq. 8).

    The second weight is the transpose of the first (tied, not a copy), so the
    Jacobian ∂F/∂y = -K1ᵀ diag(σ'(K1 y + b1)) K1 is symmetric negative
    semi-definite for non-decreasing σ: its eigenvalues are real and ≤ 0
    (Proposition 2).
    """

    def __init__(self, n_members: int, depth: int, width: int, activation: str):
        super().__init__(n_members, depth, width, activation)
        self.b2 = nn.Parameter(torch.zeros(n_members, depth, 1, width))

    def forward(self, y, layer, index):
        hidden = self.activation(affine(y, layer["K1"], layer["b1"]))
        # In row-vector form K1ᵀ σ is σ @ K1: the tied transpose is one matmul.
        return -torch.baddbmm(layer["b2"], hidden, layer["K1"])


class BatchNorm(AbstractVectorField):
    """F(y) = BN(K2 σ(BN(K1 y + b1)) + b2) (He et al. 2016 ordering, no activation after the sum).

    "Batch norm with small h" is this field with h < 1. Each member keeps its own
    batch statistics: the (M, B, d) features are laid out as (B, M·d) channels for
    ``torch.nn.functional.batch_norm`` (PyTorch defaults: momentum 0.1, eps 1e-5).
    Running statistics are stored (depth, M, d) so each layer's slice is contiguous
    and updated in place.

    b1 and b2 are kept at zero and not trained: the normalisation right after each
    cancels any constant shift (BN's own shift takes that role), so their gradient is
    zero in exact arithmetic, and training them would only let Adam amplify round-off
    into steps of size lr, making results depend on how members are batched.
    """

    def __init__(self, n_members: int, depth: int, width: int, activation: str):
        super().__init__(n_members, depth, width, activation)
        self.K2 = nn.Parameter(torch.zeros(n_members, depth, width, width))
        self.b2 = nn.Parameter(torch.zeros(n_members, depth, 1, width))
        for norm in ("norm1", "norm2"):
            self.register_parameter(f"{norm}_weight", nn.Parameter(torch.ones(n_members, depth, width)))
            self.register_parameter(f"{norm}_bias", nn.Parameter(torch.zeros(n_members, depth, width)))
            self.register_buffer(f"{norm}_running_mean", torch.zeros(depth, n_members, width))
            self.register_buffer(f"{norm}_running_var", torch.ones(depth, n_members, width))
        self.b1.requires_grad_(False)
        self.b2.requires_grad_(False)

    def init_weights(self, k1_generators, k2_generators):
        super().init_weights(k1_generators, k2_generators)
        glorot_uniform_(self.K2, k2_generators)

    def _norm(self, z: torch.Tensor, layer: dict, index: int, norm: str) -> torch.Tensor:
        n_members, batch, width = z.shape
        channels = z.transpose(0, 1).reshape(batch, n_members * width)
        normed = F.batch_norm(
            channels,
            getattr(self, f"{norm}_running_mean")[index].view(-1),
            getattr(self, f"{norm}_running_var")[index].view(-1),
            layer[f"{norm}_weight"].reshape(-1),
            layer[f"{norm}_bias"].reshape(-1),
            training=self.training,
        )
        return normed.view(batch, n_members, width).transpose(0, 1)

    def forward(self, y, layer, index):
        hidden = self.activation(self._norm(affine(y, layer["K1"], layer["b1"]), layer, index, "norm1"))
        return self._norm(affine(hidden, layer["K2"], layer["b2"]), layer, index, "norm2")


VECTOR_FIELDS: dict[str, type[AbstractVectorField]] = {
    "plain": Plain,
    "shrinkage": Shrinkage,
    "batchnorm": BatchNorm,
}


class AbstractIntegrator(ABC):
    """One step y_i -> y_{i+1} of an explicit ODE solver for dy/dt = F_i(y)."""

    @abstractmethod
    def step(self, field: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, step_size) -> torch.Tensor:
        """Advance y by one step of size ``step_size`` (a float or an (M, 1, 1) tensor)."""


class Euler(AbstractIntegrator):
    """Forward Euler, y_{i+1} = y_i + h F(y_i) (eq. 5): the ResNet update.

    Stable when max |1 + h λ(∂F/∂y)| ≤ 1 (Proposition 1).
    """

    def step(self, field, y, step_size):
        return y + step_size * field(y)


INTEGRATORS: dict[str, type[AbstractIntegrator]] = {"euler": Euler}
