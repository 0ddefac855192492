"""Step-size policies: how each block's h_i is chosen, separate from the field and the step rule.

A policy is called once per block as ``policy(field, y, index, step_size)`` with that
block's field F_i, the features y (M, B, d) reaching it, the block index and the model's
given step sizes h (M, 1, 1) (always passed explicitly: the model's ``step_size`` buffer
stays the one source of h); it returns the (M, 1, 1) tensor the integrator uses.
``block_step_sizes(step_size)`` reports the (M, depth) step sizes of evaluation mode.
Policies are built from h (M,), an upper bound h_max (M,) (used by ``learnable``) and
the depth.

- ``fixed``: h_i = h for every block (the paper).
- ``learnable``: h_i = h_max − (h_max − h_min) σ(−θ_i), trained with the weights.
- ``adaptive``: h_i = min(h, c / ρ̂_i) from a power-iteration estimate ρ̂_i of the spectral
  radius of ∂F_i/∂y on the current batch (Proposition 1).

Adding a policy is one class plus one entry in ``STEP_SIZE_POLICIES``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn


class AbstractStepSizePolicy(nn.Module, ABC):
    """Chooses h_i for block i from the given step sizes h (M, 1, 1).

    Built from h (M,), h_max (M,) and the depth; only state that training changes is
    persistent (saved with the model), so the fixed policy adds nothing to a saved file.
    """

    def __init__(self, step_size: torch.Tensor, max_step_size: torch.Tensor, depth: int):
        super().__init__()
        self.depth = depth
        # Rebuilt from the model's config on loading, hence not saved.
        self.register_buffer("max_step_size", max_step_size.detach().clone().view(-1, 1), persistent=False)

    @abstractmethod
    def forward(self, field: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, index: int,
                step_size: torch.Tensor) -> torch.Tensor:
        """h_index for every member, shape (M, 1, 1)."""

    @abstractmethod
    def block_step_sizes(self, step_size: torch.Tensor) -> torch.Tensor:
        """The (M, depth) step sizes used in evaluation mode (detached)."""

    def scale_step_sizes_(self, factor: float) -> None:
        """Multiply any stored step size by ``factor`` (prolongation halves h, ``multilevel``).

        Nothing to do for policies that derive h_i from h and h_max alone.
        """


class Fixed(AbstractStepSizePolicy):
    """:math:`h_i = h` for every block: the paper's explicit, constant step size."""

    def forward(self, field, y, index, step_size):
        return step_size

    def block_step_sizes(self, step_size):
        return step_size.view(-1, 1).expand(-1, self.depth).clone()


class Learnable(AbstractStepSizePolicy):
    r"""One trained step size per block and member: :math:`h_i = h_{max} - (h_{max} - h_{min})\,\sigma(-\theta_i)`.

    σ(−θ) ∈ [0, 1] for every θ, including ±∞, and subtracting a non-negative number
    from h_max never rounds above it, so h_min ≤ h_i ≤ h_max whatever the gradients do
    (h_min up to a few ulps of h_max, from the cancellation h_max − (h_max − h_min)).
    The floor h_min = ``min_fraction`` · h_max keeps h_i > 0 in floating point, where
    σ underflows to 0 (θ ≈ −88 in float32); it is far below any useful step.
    θ starts where h_i = h, so h < h_max is required. Adam and SGD act element-wise on
    θ (M, depth), so members stay independent.
    """

    min_fraction: ClassVar[float] = 1e-3

    def __init__(self, step_size, max_step_size, depth):
        super().__init__(step_size, max_step_size, depth)
        low = self.min_fraction * self.max_step_size
        # Solve h = h_max − (h_max − h_min) σ(−θ) for θ: σ(−θ) = s  ⇔  θ = log((1 − s) / s).
        share = (self.max_step_size - step_size.view(-1, 1)) / (self.max_step_size - low)
        theta = torch.log1p(-share) - torch.log(share)
        self.theta = nn.Parameter(theta.expand(-1, depth).clone())

    def _step_sizes(self, theta: torch.Tensor) -> torch.Tensor:
        low = self.min_fraction * self.max_step_size
        return self.max_step_size - (self.max_step_size - low) * torch.sigmoid(-theta)

    def forward(self, field, y, index, step_size):
        return self._step_sizes(self.theta[:, index : index + 1]).view(-1, 1, 1)

    def block_step_sizes(self, step_size):
        return self._step_sizes(self.theta).detach()


class Adaptive(AbstractStepSizePolicy):
    r""":math:`h_i = \min(h, c / \hat\rho_i)`, :math:`\hat\rho_i` a power-iteration estimate of the spectral radius of :math:`\partial F_i/\partial y`.

    ρ̂_i is taken per member over the current batch: the power iteration runs on the
    operator v ↦ (∂F_i/∂y) v for v (M, B, d), normalised per member, so it finds the
    largest spectral radius of any sample's Jacobian (their union is the batch operator's
    spectrum). Each Jacobian–vector product is a forward difference,
    Jv ≈ (F(y + εv) − F(y)) / ε with ‖v‖ = 1 and ε = √u (1 + ‖y‖) per member (u the unit
    round-off), the matrix-free product of Newton–Krylov solvers: one field evaluation,
    about 20× cheaper here than forward-mode autodiff, with a relative error O(√u) that
    is immaterial against the factor 2 of slack below (exact where ReLU units keep their
    sign). In training mode a batch-norm field updates its running statistics at each of
    these evaluations too, as it does at an integrator's stages. ρ̂_i is the
    largest ‖Jv‖/‖v‖ seen over ``iterations`` steps from a fixed, non-random start (a
    Weyl sequence), so a member's h depends only on its own parameters and batch. No
    gradient flows through ρ̂_i: h_i is a constant of the training step.

    Guarantee (Proposition 1). If every eigenvalue λ of ∂F_i/∂y on the batch is real and
    ≤ 0 — the shrinkage field, Proposition 2 — then |1 + h_i λ| ≤ 1 as soon as
    ρ̂_i ≥ c ρ_i / 2: h_i|λ| ≤ c ρ_i/ρ̂_i ≤ 2. With c = 1 the estimate needs only half the
    true radius; for a symmetric Jacobian ‖Jv‖/‖v‖ ≤ ρ_i, and ten iterations from the
    fixed start get past half in practice (tested with exact spectra). For eigenvalues
    with Re λ > 0 (possible in the plain field) no h can meet Proposition 1, and for
    complex λ it needs h ≤ 2|Re λ|/|λ|², which a radius alone cannot give: the policy
    then only bounds h|λ| ≤ c.

    In training mode h_i comes from the current batch; ``average_step_size`` keeps a
    running average (momentum 0.1, like batch norm's statistics) that evaluation mode
    uses, so predictions do not depend on how rows are batched.
    """

    safety: ClassVar[float] = 1.0
    iterations: ClassVar[int] = 10
    momentum: ClassVar[float] = 0.1

    def __init__(self, step_size, max_step_size, depth):
        super().__init__(step_size, max_step_size, depth)
        self.register_buffer("average_step_size", step_size.detach().view(-1, 1).expand(-1, depth).clone())

    @staticmethod
    def start_vector(like: torch.Tensor) -> torch.Tensor:
        """A fixed, well-spread start (Weyl sequence frac(k·φ) − ½ over the (B, d) entries), per member."""
        count = like[0].numel()
        golden = (math.sqrt(5) - 1) / 2
        sequence = torch.remainder(torch.arange(1, count + 1, dtype=torch.float64) * golden, 1.0) - 0.5
        return sequence.view(like.shape[1:]).to(like).expand_as(like).clone()

    def spectral_radius(self, field: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """ρ̂ (M,) for the batch y (M, B, d); no gradient."""
        y = y.detach()
        vector = self.start_vector(y)
        estimate = y.new_zeros(y.shape[0])
        finfo = torch.finfo(y.dtype)
        with torch.no_grad():
            increment = math.sqrt(finfo.eps) * (1 + y.flatten(1).norm(dim=1)).view(-1, 1, 1)
            base = field(y)
            for _ in range(self.iterations):
                vector = vector / vector.flatten(1).norm(dim=1).clamp_min(finfo.tiny).view(-1, 1, 1)
                image = (field(y + increment * vector) - base) / increment
                estimate = torch.maximum(estimate, image.flatten(1).norm(dim=1))
                vector = image
        return torch.nan_to_num(estimate, nan=float("inf"))

    def forward(self, field, y, index, step_size):
        if not self.training:
            return self.average_step_size[:, index].view(-1, 1, 1)
        radius = self.spectral_radius(field, y)
        h = torch.minimum(step_size.view(-1), self.safety / radius)
        with torch.no_grad():
            self.average_step_size[:, index].lerp_(h, self.momentum)
        return h.view(-1, 1, 1)

    def block_step_sizes(self, step_size):
        return self.average_step_size.detach().clone()

    def scale_step_sizes_(self, factor):
        self.average_step_size.mul_(factor)


STEP_SIZE_POLICIES: dict[str, type[AbstractStepSizePolicy]] = {
    "fixed": Fixed,
    "learnable": Learnable,
    "adaptive": Adaptive,
}
