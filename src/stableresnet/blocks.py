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

Other explicit solvers (Heun, midpoint, RK4, leapfrog) are other integrators applied to
the same field and parameters: only the step rule changes.

Adding a vector field or an integrator is one class plus one registry entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from .init import AbstractInitializer, Glorot, initialize_

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
# PyTorch's batch-norm defaults (``torch.nn.functional.batch_norm``), the engine's unless told otherwise.
BATCH_NORM_MOMENTUM, BATCH_NORM_EPS = 0.1, 1e-5


def glorot_uniform_(weight: torch.Tensor, generators: list[torch.Generator]) -> None:
    """Fill ``weight`` (M, ..., fan_out, fan_in) member by member with Glorot-uniform draws.

    Bound sqrt(6 / (fan_in + fan_out)), Keras' default initialiser. Member m draws from
    ``generators[m]`` only. (The blocks' K1 and K2 take any initialiser of ``stableresnet.init``.)
    """
    initialize_(weight, generators, Glorot(1.0), depth=1)


def affine(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Member-wise ``bias + y @ weightᵀ`` for y (M, B, d_in), weight (M, d_out, d_in), bias (M, 1, d_out)."""
    return torch.baddbmm(bias, y, weight.transpose(1, 2))


def column_affine(columns: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``affine`` on transposed features: ``weight @ columns + biasᵀ``, columns and result (M, d, B)."""
    return torch.baddbmm(bias.transpose(1, 2), weight, columns)


class AbstractVectorField(nn.Module, ABC):
    """The right-hand sides F_i(y), i < depth, of dy/dt = F(t, y), for M members.

    K1 (M, depth, d, d) and b1 (M, depth, 1, d) exist in every field, so a seed gives
    the same initial K1 whichever field is chosen (a paired design across blocks).

    ``weight_names`` lists the field's weight matrices (drawn by the initialiser, and summed in the
    inter-layer smoothness penalty); ``separable_streams`` is True for two-stream fields F(p, q) = (f(q), g(p))
    whose halves each depend only on the other half (what leapfrog needs).
    ``batch_normalized`` fields take the batch norms' ``momentum`` and ``eps`` as keywords.
    """

    weight_names: ClassVar[tuple[str, ...]] = ("K1",)
    separable_streams: ClassVar[bool] = False
    batch_normalized: ClassVar[bool] = False  # takes ``momentum`` and ``eps`` of its batch norms

    def __init__(self, n_members: int, depth: int, width: int, activation: str):
        super().__init__()
        self.activation = ACTIVATIONS[activation]
        self._frozen = False  # see frozen_statistics
        self.K1 = nn.Parameter(torch.zeros(n_members, depth, width, width))
        self.b1 = nn.Parameter(torch.zeros(n_members, depth, 1, width))

    def init_weights(self, k1_generators: list[torch.Generator], k2_generators: list[torch.Generator],
                     init: AbstractInitializer) -> None:
        """The weight matrices drawn by ``init`` (K1 from the K1 streams, K2 from the K2 streams); biases zero."""
        depth = self.K1.shape[1]
        for name in self.weight_names:
            initialize_(getattr(self, name), k1_generators if name == "K1" else k2_generators, init, depth)

    def layers(self) -> list[dict[str, torch.Tensor]]:
        """One dict of (M, ...) tensors per layer; ``unbind`` keeps the backward pass one stack."""
        per_name = {name: p.unbind(1) for name, p in self.named_parameters(recurse=False)}
        return [{name: tensors[i] for name, tensors in per_name.items()} for i in range(self.K1.shape[1])]

    def smoothness(self) -> torch.Tensor:
        """Σ_i ‖K_{i+1} − K_i‖²_F over the field's weight matrices, per member: shape (M,).

        Haber & Ruthotto's (2017) time-smoothness regulariser: neighbouring layers are
        steps of one ODE, so their weights should vary slowly with depth.
        """
        total = self.K1.new_zeros(self.K1.shape[0])
        for name in self.weight_names:
            weight = getattr(self, name)
            total = total + (weight[:, 1:] - weight[:, :-1]).pow(2).sum(dim=(1, 2, 3))
        return total

    @contextmanager
    def frozen_statistics(self):
        """Evaluations inside leave any running statistics as they are (the adaptive policy's probes)."""
        frozen, self._frozen = self._frozen, True
        try:
            yield
        finally:
            self._frozen = frozen

    @abstractmethod
    def forward(self, y: torch.Tensor, layer: dict[str, torch.Tensor], index: int) -> torch.Tensor:
        """F_index(y) for features y (M, B, d) with that layer's parameters."""


class Plain(AbstractVectorField):
    r""":math:`F(y) = K_2\,\sigma(K_1 y + b_1) + b_2` (Definitions 1-2, eq. 7).

    With h = 1 and forward Euler this is the vanilla ResNet block. No stability
    guarantee: the eigenvalues of ∂F/∂y may have any sign.
    """

    weight_names = ("K1", "K2")

    def __init__(self, n_members: int, depth: int, width: int, activation: str):
        super().__init__(n_members, depth, width, activation)
        self.K2 = nn.Parameter(torch.zeros(n_members, depth, width, width))
        self.b2 = nn.Parameter(torch.zeros(n_members, depth, 1, width))

    def forward(self, y, layer, index):
        return affine(self.activation(affine(y, layer["K1"], layer["b1"])), layer["K2"], layer["b2"])


class Shrinkage(AbstractVectorField):
    r""":math:`F(y) = -(K_1^\top \sigma(K_1 y + b_1) + b_2)` (Definition 3, eq. 8).

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


class AbstractBatchNormField(AbstractVectorField):
    """A field with two batch norms, BN1 and BN2, and a second weight K2.

    Each member keeps its own batch statistics: the branch works on the features transposed,
    (M, d, B) (the paper's column form K y, ``column_affine``), whose memory is M·d channels of B
    values, (1, M·d, B), as ``torch.nn.functional.batch_norm`` takes them: normalised
    (z − μ_B)/sqrt(σ²_B + eps), running statistics r ← (1 − momentum)·r + momentum·(batch
    statistic). PyTorch's defaults are momentum 0.1, eps 1e-5 (``BATCH_NORM_MOMENTUM``,
    ``BATCH_NORM_EPS``); Keras' (the paper's framework) are momentum 0.99 in its own sense,
    r ← 0.99·r + 0.01·(batch), i.e. 0.01 here, and eps 1e-3. In that layout each channel's B
    values are contiguous, and the CPU kernel sums each channel in one thread, so the numbers do
    not depend on torch's thread count. (The (B, M·d) layout took the channels-last kernel, which
    splits the batch between threads: its sums, and so every result of these blocks, changed with
    the thread count.) The branch's output goes back to (M, B, d) as a transposed view; inside the
    branch, norms, activations and products all read contiguous memory (the earlier row form, which
    transposed each norm's input to channels and its output back, made Adult's batch-norm step
    1.17-1.24× slower, ``benchmarks/bench_layout.py``). Running statistics are stored (depth, M, d)
    so each layer's slice is contiguous and updated in place. Integrators with several stages
    evaluate F several times per block, and in training mode each evaluation updates the running
    statistics; the adaptive step-size policy's probes do not (``frozen_statistics``).

    A bias right before a batch norm is kept at zero and not trained: the normalisation cancels
    any constant shift (BN's own shift takes that role), so its gradient is zero in exact
    arithmetic, and training it would only let Adam amplify round-off into steps of size lr,
    making results depend on how members are batched (``cancelled_biases``).
    """

    weight_names = ("K1", "K2")
    batch_normalized = True
    cancelled_biases: ClassVar[tuple[str, ...]]

    def __init__(self, n_members: int, depth: int, width: int, activation: str,
                 momentum: float = BATCH_NORM_MOMENTUM, eps: float = BATCH_NORM_EPS):
        super().__init__(n_members, depth, width, activation)
        self.momentum, self.eps = momentum, eps
        self.K2 = nn.Parameter(torch.zeros(n_members, depth, width, width))
        self.b2 = nn.Parameter(torch.zeros(n_members, depth, 1, width))
        for norm in ("norm1", "norm2"):
            self.register_parameter(f"{norm}_weight", nn.Parameter(torch.ones(n_members, depth, width)))
            self.register_parameter(f"{norm}_bias", nn.Parameter(torch.zeros(n_members, depth, width)))
            self.register_buffer(f"{norm}_running_mean", torch.zeros(depth, n_members, width))
            self.register_buffer(f"{norm}_running_var", torch.ones(depth, n_members, width))
        for name in self.cancelled_biases:
            getattr(self, name).requires_grad_(False)

    def _norm(self, z: torch.Tensor, layer: dict, index: int, norm: str) -> torch.Tensor:
        """Batch norm of z (M, d, B), contiguous, each member's d rows over the batch."""
        n_members, width, batch = z.shape
        # Running statistics are left out (not updated) under ``frozen_statistics`` in training mode.
        update = not (self.training and self._frozen)
        normed = F.batch_norm(
            z.view(1, n_members * width, batch),
            getattr(self, f"{norm}_running_mean")[index].view(-1) if update else None,
            getattr(self, f"{norm}_running_var")[index].view(-1) if update else None,
            layer[f"{norm}_weight"].reshape(-1),
            layer[f"{norm}_bias"].reshape(-1),
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )
        # Through a flat view: autograd then copies the (strided) gradient of the output to undo
        # it, for every M. Batch norm's backward sums a contiguous gradient in another order than
        # a strided one, and for M = 1 the direct view back to (1, d, B) keeps it strided: a member
        # would not train alone as it does in an ensemble.
        return normed.flatten().view(n_members, width, batch)


class BatchNorm(AbstractBatchNormField):
    r""":math:`F(y) = \mathrm{BN}_2(K_2\,\sigma(\mathrm{BN}_1(K_1 y + b_1)) + b_2)` (He et al. 2016 ordering, no activation after the sum).

    "Batch norm with small h" is this field with h < 1: the paper's batch-norm block, its norms
    at the end of the branch. b1 and b2 each sit right before a norm (``cancelled_biases``).
    """

    cancelled_biases = ("b1", "b2")

    def forward(self, y, layer, index):
        columns = y.transpose(1, 2)
        hidden = self.activation(self._norm(column_affine(columns, layer["K1"], layer["b1"]), layer, index, "norm1"))
        return self._norm(column_affine(hidden, layer["K2"], layer["b2"]), layer, index, "norm2").transpose(1, 2)


class PreActivationBatchNorm(AbstractBatchNormField):
    r""":math:`F(y) = K_2\,\sigma(\mathrm{BN}_2(K_1 \sigma(\mathrm{BN}_1(y)) + b_1)) + b_2` (He et al. 2016b, "full pre-activation").

    The same parameters as ``BatchNorm`` with the norms moved in front of the activations: the
    branch starts from the normalised input and ends in a plain affine map, so F is not
    normalised and its scale is K2's. Only b1 sits before a norm (``cancelled_biases``).
    """

    cancelled_biases = ("b1",)

    def forward(self, y, layer, index):
        columns = y.transpose(1, 2).contiguous()  # BN1 takes the features as contiguous channels
        hidden = self.activation(self._norm(columns, layer, index, "norm1"))
        hidden = self.activation(self._norm(column_affine(hidden, layer["K1"], layer["b1"]), layer, index, "norm2"))
        return column_affine(hidden, layer["K2"], layer["b2"]).transpose(1, 2)


class Antisymmetric(AbstractVectorField):
    r""":math:`F(y) = \sigma((K_1 - K_1^\top - \gamma I)\,y + b_1)` (Haber & Ruthotto 2017, antisymmetric weights).

    The linear part K1 − K1ᵀ − γI is a skew-symmetric matrix shifted by −γ, so its
    eigenvalues are exactly −γ + iω (real part −γ). With D = diag(σ'(·)) ≥ 0 (σ
    non-decreasing) the Jacobian ∂F/∂y = D (K1 − K1ᵀ − γI) is similar to
    D^½ (K1 − K1ᵀ) D^½ − γD, whose symmetric part −γD is ≤ 0: every eigenvalue of
    ∂F/∂y has real part ≤ 0. The network neither blows up nor forgets its input
    quickly; forward Euler still needs h ≤ 2|Re λ|/|λ|² for |1 + hλ| ≤ 1.
    """

    # Haber & Ruthotto's dissipation γ: small, so the spectrum stays near the imaginary
    # axis (long memory), but > 0 so forward Euler is not unstable for every h.
    gamma: ClassVar[float] = 0.01

    def linear_part(self, layer: dict[str, torch.Tensor]) -> torch.Tensor:
        """K1 − K1ᵀ − γI, shape (M, d, d)."""
        K = layer["K1"]
        identity = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
        return K - K.transpose(1, 2) - self.gamma * identity

    def forward(self, y, layer, index):
        return self.activation(affine(y, self.linear_part(layer), layer["b1"]))


class Hamiltonian(AbstractVectorField):
    r"""Two streams :math:`y = (p, q)`, each width d/2: :math:`F(p, q) = (B^\top \sigma(B q + b_1),\; -A^\top \sigma(A p + b_2))`.

    After Chang et al. (2018a): K1 = [A | B] is split by columns, A = K1[:, :d/2] acts on
    p and B = K1[:, d/2:] on q, so the field is the Hamiltonian flow of
    H(p, q) = −(1ᵀρ(A p + b2) + 1ᵀρ(B q + b1)) with ρ' = σ: dp/dt = −∂H/∂q, dq/dt = ∂H/∂p.
    Each half depends only on the other half (``separable_streams``), which is what
    leapfrog needs to be explicit and symplectic. The Jacobian [[0, BᵀD₁B], [−AᵀD₂A, 0]]
    with D = diag(σ') ≥ 0 has eigenvalues λ with λ² = −eig(BᵀD₁B AᵀD₂A) ≤ 0: all
    purely imaginary (Re λ = 0), so the flow conserves H and neither grows nor decays.
    Forward Euler gives |1 + hλ| = √(1 + h²|λ|²) ≥ 1; leapfrog is stable for h|λ| < 2.
    The width must be even.
    """

    separable_streams = True

    def __init__(self, n_members: int, depth: int, width: int, activation: str):
        if width % 2:
            raise ValueError(f"the hamiltonian block needs an even width (two streams of width/2); got {width}")
        super().__init__(n_members, depth, width, activation)
        self.b2 = nn.Parameter(torch.zeros(n_members, depth, 1, width))

    def forward(self, y, layer, index):
        half = y.shape[-1] // 2
        p, q = y[..., :half], y[..., half:]
        A, B = layer["K1"][..., :half], layer["K1"][..., half:]
        # In row-vector form Bᵀσ(Bq + b) is σ(q @ Bᵀ + b) @ B.
        dp = self.activation(affine(q, B, layer["b1"])) @ B
        dq = -(self.activation(affine(p, A, layer["b2"])) @ A)
        return torch.cat([dp, dq], dim=-1)


VECTOR_FIELDS: dict[str, type[AbstractVectorField]] = {
    "plain": Plain,
    "shrinkage": Shrinkage,
    "batchnorm": BatchNorm,
    "batchnorm-preact": PreActivationBatchNorm,
    "antisymmetric": Antisymmetric,
    "hamiltonian": Hamiltonian,
}


class AbstractIntegrator(ABC):
    """One step y_i -> y_{i+1} of an explicit ODE solver for dy/dt = F_i(y).

    Every stage uses the same block i's field (the parameters of a block are those of
    one step, whatever the solver). ``needs_separable_streams`` marks solvers that only
    apply to two-stream fields (see ``AbstractVectorField.separable_streams``).
    ``evaluations`` is the number of F evaluations per step (the cost).
    """

    needs_separable_streams: ClassVar[bool] = False
    evaluations: ClassVar[int]

    @abstractmethod
    def step(self, field: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, step_size) -> torch.Tensor:
        """Advance y by one step of size ``step_size`` (a float or an (M, 1, 1) tensor)."""


class Euler(AbstractIntegrator):
    r"""Forward Euler, :math:`y_{i+1} = y_i + h\,F(y_i)` (eq. 5): the ResNet update.

    Stable when max |1 + h λ(∂F/∂y)| ≤ 1 (Proposition 1). For F(y) = A y one step is
    the matrix I + hA.
    """

    evaluations = 1

    def step(self, field, y, step_size):
        return y + step_size * field(y)


class Heun(AbstractIntegrator):
    r"""Heun's method (explicit trapezoid, RK2): :math:`k_1 = F(y),\ k_2 = F(y + h k_1),\ y + \tfrac{h}{2}(k_1 + k_2)`.

    Second order. For F(y) = A y one step is I + hA + (hA)²/2; the real stability
    interval is the same as Euler's, h|λ| ≤ 2, but the region is larger off the axis.
    """

    evaluations = 2

    def step(self, field, y, step_size):
        k1 = field(y)
        k2 = field(y + step_size * k1)
        return y + step_size / 2 * (k1 + k2)


class Midpoint(AbstractIntegrator):
    r"""Explicit midpoint (RK2): :math:`y + h\,F\big(y + \tfrac{h}{2} F(y)\big)`.

    Second order, same stability polynomial as Heun: I + hA + (hA)²/2.
    """

    evaluations = 2

    def step(self, field, y, step_size):
        return y + step_size * field(y + step_size / 2 * field(y))


class RK4(AbstractIntegrator):
    r"""Classic fourth-order Runge–Kutta: :math:`y + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4)`.

    For F(y) = A y one step is Σ_{k≤4} (hA)^k / k!; real stability interval h|λ| ≤ 2.785.
    """

    evaluations = 4

    def step(self, field, y, step_size):
        k1 = field(y)
        k2 = field(y + step_size / 2 * k1)
        k3 = field(y + step_size / 2 * k2)
        k4 = field(y + step_size * k3)
        return y + step_size / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


class Leapfrog(AbstractIntegrator):
    """Störmer–Verlet (kick–drift–kick) for two-stream fields F(p, q) = (f(q), g(p)):

        p_{½} = p + h/2 f(q),   q' = q + h g(p_{½}),   p' = p_{½} + h/2 f(q').

    The state is y = (p, q), split at width/2. Second order, symplectic and
    time-reversible: for a linear Hamiltonian field it conserves a modified quadratic
    energy exactly (up to round-off), and is stable for h|λ| < 2 with λ imaginary.
    Each sub-step evaluates the whole field and keeps the half it needs.
    """

    needs_separable_streams = True
    evaluations = 3

    def step(self, field, y, step_size):
        half = y.shape[-1] // 2
        p, q = y[..., :half], y[..., half:]
        p = p + step_size / 2 * field(y)[..., :half]
        q = q + step_size * field(torch.cat([p, q], dim=-1))[..., half:]
        p = p + step_size / 2 * field(torch.cat([p, q], dim=-1))[..., :half]
        return torch.cat([p, q], dim=-1)


INTEGRATORS: dict[str, type[AbstractIntegrator]] = {
    "euler": Euler,
    "heun": Heun,
    "midpoint": Midpoint,
    "rk4": RK4,
    "leapfrog": Leapfrog,
}
