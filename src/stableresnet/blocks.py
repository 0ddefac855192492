"""Residual blocks as one step of an ODE solver (Zhang & Wynter 2018, eqs. 5-8).

A block is two separate objects, after diffrax: a *vector field* F (the layer's
learned map, with parameters K1, K2, b1, b2) and an *integrator* (the step rule).
Forward Euler turns them into the paper's residual update

    y_{i+1} = y_i + h * F(y_i)                                            (eq. 5)

Every tensor carries a leading *member* axis of size M, so one module holds M
independent networks (the ensemble engine trains them in one batched pass; a
single network is M = 1). Features are row vectors of shape (M, batch, width); a
weight K of shape (M, width, width) acts as ``y @ K^T``, i.e. ``K y`` in the
paper's column-vector notation.

Adding a vector field or an integrator is one class plus one registry entry.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


def glorot_uniform_(weight: torch.Tensor, generators: list[torch.Generator]) -> None:
    """Fill ``weight`` (M, fan_out, fan_in) member by member with Glorot-uniform draws.

    Bound sqrt(6 / (fan_in + fan_out)), as Keras' default initialiser (the paper's
    experiments used Keras). Member m draws from ``generators[m]`` only.
    """
    fan_out, fan_in = weight.shape[-2:]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        for member, generator in enumerate(generators):
            draw = torch.rand(weight.shape[1:], generator=generator, dtype=torch.float64)
            weight[member].copy_((2 * draw - 1) * bound)


def _linear(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Member-wise affine map: ``bias + y @ weight^T`` for y (M, B, d_in), weight (M, d_out, d_in)."""
    return torch.baddbmm(bias, y, weight.transpose(1, 2))


class AbstractVectorField(nn.Module):
    """The right-hand side F(y) of dy/dt = F(y) for one block, for M members.

    Parameters K1 (M, d, d) and b1 (M, 1, d) exist in every field, so a seed gives
    the same initial K1 whichever field is chosen (a paired design across blocks).
    """

    def __init__(self, n_members: int, width: int, activation: str):
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self.K1 = nn.Parameter(torch.zeros(n_members, width, width))
        self.b1 = nn.Parameter(torch.zeros(n_members, 1, width))

    def init_weights(self, k1_generators: list[torch.Generator], k2_generators: list[torch.Generator]) -> None:
        """Glorot-uniform weights, zero biases (Keras' defaults)."""
        glorot_uniform_(self.K1, k1_generators)


class Plain(AbstractVectorField):
    """F(y) = K2 σ(K1 y + b1) + b2 (Definitions 1-2, eq. 7).

    With h = 1 and forward Euler this is the vanilla ResNet block. No stability
    guarantee: the eigenvalues of ∂F/∂y may have any sign.
    """

    def __init__(self, n_members: int, width: int, activation: str):
        super().__init__(n_members, width, activation)
        self.K2 = nn.Parameter(torch.zeros(n_members, width, width))
        self.b2 = nn.Parameter(torch.zeros(n_members, 1, width))

    def init_weights(self, k1_generators, k2_generators):
        super().init_weights(k1_generators, k2_generators)
        glorot_uniform_(self.K2, k2_generators)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return _linear(self.activation(_linear(y, self.K1, self.b1)), self.K2, self.b2)


class Shrinkage(AbstractVectorField):
    """F(y) = -(K1ᵀ σ(K1 y + b1) + b2) (Definition 3, eq. 8).

    The second weight is the transpose of the first (tied, not a copy), so the
    Jacobian ∂F/∂y = -K1ᵀ diag(σ'(K1 y + b1)) K1 is symmetric negative
    semi-definite for non-decreasing σ: its eigenvalues are real and ≤ 0
    (Proposition 2).
    """

    def __init__(self, n_members: int, width: int, activation: str):
        super().__init__(n_members, width, activation)
        self.b2 = nn.Parameter(torch.zeros(n_members, 1, width))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(_linear(y, self.K1, self.b1))
        # In row-vector form K1ᵀ σ is σ @ K1: the tied transpose is one matmul.
        return -torch.baddbmm(self.b2, hidden, self.K1)


class BatchNorm(AbstractVectorField):
    """F(y) = BN(K2 σ(BN(K1 y + b1)) + b2) (He et al. 2016 ordering, no activation after the sum).

    "Batch norm with small h" is this field with h < 1. Each member keeps its own
    batch statistics: the (M, B, d) features are laid out as (B, M·d) channels for
    ``torch.nn.functional.batch_norm`` (PyTorch defaults: momentum 0.1, eps 1e-5).
    """

    def __init__(self, n_members: int, width: int, activation: str):
        super().__init__(n_members, width, activation)
        self.K2 = nn.Parameter(torch.zeros(n_members, width, width))
        self.b2 = nn.Parameter(torch.zeros(n_members, 1, width))
        for name in ("norm1", "norm2"):
            self.register_parameter(f"{name}_weight", nn.Parameter(torch.ones(n_members, width)))
            self.register_parameter(f"{name}_bias", nn.Parameter(torch.zeros(n_members, width)))
            self.register_buffer(f"{name}_running_mean", torch.zeros(n_members, width))
            self.register_buffer(f"{name}_running_var", torch.ones(n_members, width))

    def init_weights(self, k1_generators, k2_generators):
        super().init_weights(k1_generators, k2_generators)
        glorot_uniform_(self.K2, k2_generators)

    def _norm(self, z: torch.Tensor, name: str) -> torch.Tensor:
        n_members, batch, width = z.shape
        channels = z.transpose(0, 1).reshape(batch, n_members * width)
        normed = F.batch_norm(
            channels,
            getattr(self, f"{name}_running_mean").view(-1),
            getattr(self, f"{name}_running_var").view(-1),
            getattr(self, f"{name}_weight").view(-1),
            getattr(self, f"{name}_bias").view(-1),
            training=self.training,
        )
        return normed.view(batch, n_members, width).transpose(0, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self._norm(_linear(y, self.K1, self.b1), "norm1"))
        return self._norm(_linear(hidden, self.K2, self.b2), "norm2")


VECTOR_FIELDS: dict[str, type[AbstractVectorField]] = {
    "plain": Plain,
    "shrinkage": Shrinkage,
    "batchnorm": BatchNorm,
}


class AbstractIntegrator:
    """One step y_i -> y_{i+1} of an explicit ODE solver for dy/dt = F(y)."""

    def step(self, field: AbstractVectorField, y: torch.Tensor, step_size: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Euler(AbstractIntegrator):
    """Forward Euler, y_{i+1} = y_i + h F(y_i) (eq. 5): the ResNet update.

    Stable when max |1 + h λ(∂F/∂y)| ≤ 1 (Proposition 1).
    """

    def step(self, field, y, step_size):
        return y + step_size * field(y)


INTEGRATORS: dict[str, type[AbstractIntegrator]] = {"euler": Euler}


class ResidualBlock(nn.Module):
    """A vector field advanced by one integrator step of size h (per member)."""

    def __init__(self, field: AbstractVectorField, integrator: AbstractIntegrator):
        super().__init__()
        self.field = field
        self.integrator = integrator

    def forward(self, y: torch.Tensor, step_size: torch.Tensor) -> torch.Tensor:
        return self.integrator.step(self.field, y, step_size)
