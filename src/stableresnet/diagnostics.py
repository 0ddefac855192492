"""Stability diagnostics of networks: signal at initialisation, Jacobian spectra, perturbation growth, robust accuracy.

Measurements of the claims in Zhang & Wynter (2018), each vectorised over the members
(the leading M axis) so one call diagnoses a whole step-size sweep:

- **Signal at initialisation** (`initial_signal`). Before any training: the scale ratio
  max |y_depth| / max |y_0| over the given rows (all of them, one batch), and the norm ‖∂L/∂y_0‖ of
  the loss gradient that reaches the first block on the first mini-batch. A network whose ratio
  is below 1e-3 starts *collapsed* (every point mapped near one, no gradient to learn from);
  above 1e3 it starts *exploded* (``COLLAPSED_BELOW``, ``EXPLODED_ABOVE``).
- **Spectra** (Proposition 1, eq. 6; Proposition 2). For block i, the eigenvalues λ of the
  field Jacobian J_i = ∂F_i/∂y at the data points y_i that reach it (for shrinkage blocks
  real and ≤ 0), and the amplification max |eig(∂Φ_i/∂y)| of the whole block map
  Φ_i(y) = step(F_i, y, h_i) (the model's integrator with block i's step size h_i). A block
  is stable at y_i when the amplification is ≤ 1. For forward Euler ∂Φ_i/∂y = I + h_i J_i, so
  the amplification is Proposition 1's max |1 + h_i λ|; for another integrator it is that
  integrator's linearised amplification (for a linear field, |R(h_i λ)| with R its stability
  polynomial).
- **Perturbation growth** (eqs. 3-4). Layer 0 is perturbed by ε along a random direction and
  ‖y_ε(t) − y(t)‖ / ‖y_ε(0) − y(0)‖ is followed through every layer t (the model's own blocks
  Φ_i); its maximum over t is the empirical stability constant c.
- **Robust accuracy**. Test accuracy under Gaussian input noise and under FGSM and PGD
  (L∞) attacks. Noise and attack sizes are in *standardised* input units (the model's
  ``input_mean``/``input_scale``), so one number means the same on every data set and member.
  Tabular inputs have no natural box, so perturbed inputs are not clipped.

The signal at initialisation runs on a float64 copy in training mode, as the first step sees the
network (batch norm by the batch's own statistics, running statistics untouched). The rest run
on a float64 copy of the model in evaluation mode: batch-norm fields
then use their running statistics, so F acts sample by sample and the Jacobian is per sample;
float64 keeps the symmetric shrinkage Jacobians' round-off (and so spurious positive or
complex eigenvalues) near 1e-15. This module computes arrays only; ``stableresnet.viz.diagnostics``
draws them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.nn import functional as F

from .errors import ConfigError
from .model import StableResNet, member_generator
from .train import epoch_orders

# The condition max |eig(∂Φ_i/∂y)| ≤ 1 (Proposition 1's max |1 + hλ| ≤ 1 for Euler) is tested with
# this slack, so a field eigenvalue that is exactly 0 in exact arithmetic (a dead ReLU unit, whose
# block eigenvalue is then exactly 1) is not counted unstable for round-off.
STABILITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LayerSpectra:
    """Eigenvalues of every block's field Jacobian ∂F_i/∂y at the data, and the amplification of its block map.

    Attributes
    ----------
    layers : (L,) int, the block indices analysed.
    step_size : (M,) float, each member's given h.
    block_step_sizes : (M, L) float, the step size h_i of each analysed block (h for the fixed policy).
    eigenvalues : (M, L, n_samples, width) complex128 eigenvalues λ of ∂F_i/∂y, or None when not kept.
    max_real : (M, L) largest Re λ over the samples.
    max_imag : (M, L) largest |Im λ| over the samples.
    max_amplification : (M, L) largest |eig(∂Φ_i/∂y)| over the samples, Φ_i(y) = step(F_i, y, h_i)
        the block map; for forward Euler this is Proposition 1's max |1 + h_i λ|.
    stable_fraction : (M, L) fraction of samples whose max |eig(∂Φ_i/∂y)| ≤ 1.
    Non-finite Jacobians (a diverged trajectory) give NaN eigenvalues and count as unstable.
    """

    layers: np.ndarray
    step_size: np.ndarray
    block_step_sizes: np.ndarray
    eigenvalues: np.ndarray | None
    max_real: np.ndarray
    max_imag: np.ndarray
    max_amplification: np.ndarray
    stable_fraction: np.ndarray


@dataclass(frozen=True)
class PerturbationGrowth:
    """Growth of a layer-0 perturbation through the network (eq. 4).

    Attributes
    ----------
    ratio : (M, depth + 1, n_samples) ‖y_ε(t) − y(t)‖ / ‖y_ε(0) − y(0)‖; layer 0 is exactly 1.
    epsilon : float, the perturbation size in layer-0 units.
    stability_constant : (M,) max over layers and samples of ``ratio`` (the c of eq. 4).
    """

    ratio: np.ndarray
    epsilon: float

    @property
    def stability_constant(self) -> np.ndarray:
        # np.max propagates NaN, so a diverged member's c stays visibly undefined.
        return self.ratio.reshape(self.ratio.shape[0], -1).max(axis=1)


def analysis_copy(model: StableResNet, dtype: torch.dtype = torch.float64) -> StableResNet:
    """A detached copy of ``model`` in ``dtype`` and evaluation mode; the original is untouched."""
    if not isinstance(model, StableResNet):
        raise ConfigError(f"expected a StableResNet; got {type(model).__name__}")
    clone = copy.deepcopy(model).to(dtype).eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def _as_inputs(model: StableResNet, X) -> torch.Tensor:
    """(n, in_features) array or tensor -> (M, n, in_features) tensor on the model's device and dtype."""
    X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    if X.dim() != 2 or X.shape[1] != model.in_features:
        raise ConfigError(f"X must have shape (n_samples, {model.in_features}); got {tuple(X.shape)}")
    X = X.to(device=model.step_size.device, dtype=model.step_size.dtype)
    if not torch.isfinite(X).all():
        raise ConfigError("X holds NaN or infinite values; clean or impute them first")
    # A 3-D input keeps the member axis even for one member (see StableResNet.forward).
    return X.unsqueeze(0).expand(model.n_members, -1, -1)


def _as_labels(model: StableResNet, y, n_rows: int) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long()
    if y.shape != (n_rows,):
        raise ConfigError(f"y must have shape ({n_rows},) to match X; got {tuple(y.shape)}")
    if n_rows and (y.min() < 0 or y.max() >= model.n_classes):
        raise ConfigError(f"y must hold class indices in [0, {model.n_classes - 1}]")
    return y.to(model.step_size.device)


def block_maps(model: StableResNet) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The blocks Φ_i(y) = step(F_i, y, h_i) of evaluation mode, one callable on (M, B, width) per block.

    h_i is block i's step size from ``model.block_step_sizes()`` (not the given h: the learnable
    and adaptive policies give each block its own), shaped (M, 1, 1) for the integrator.
    """
    step_sizes = model.block_step_sizes()
    maps = []
    for index, layer in enumerate(model.field.layers()):
        def field(z, layer=layer, index=index):
            return model.field(z, layer, index)

        maps.append(partial(model.step_rule.step, field, step_size=step_sizes[:, index].view(-1, 1, 1)))
    return maps


def propagate(model: StableResNet, y0: torch.Tensor) -> torch.Tensor:
    """Run the residual blocks from layer-0 features y0 (M, B, width); returns (depth + 1, M, B, width).

    The same loop as ``StableResNet.forward`` in evaluation mode, after standardisation and
    lift, so a perturbation can be placed directly in layer-0 space.
    """
    trajectory = [y0]
    for block in block_maps(model):
        trajectory.append(block(trajectory[-1]))
    return torch.stack(trajectory)


# A network at initialisation is called collapsed (exploded) when its blocks shrink (grow) the
# features' largest entry by more than a factor 1e3: training then starts without a usable gradient.
COLLAPSED_BELOW, EXPLODED_ABOVE = 1e-3, 1e3


@dataclass(frozen=True)
class InitialSignal:
    """What a network passes on before training, per member.

    Attributes
    ----------
    scale_ratio : (M,) max |y_depth| / max |y_0| over the rows (inf or NaN where the features overflow).
    gradient_norm : (M,) ‖∂L/∂y_0‖_F, L the member's mean cross-entropy on its first mini-batch
        (the rows its first training step takes) and y_0 the first block's input.
    """

    scale_ratio: np.ndarray
    gradient_norm: np.ndarray

    @property
    def state(self) -> list[str]:
        """Per member: "collapsed", "exploded" (an overflow counts) or "ok"."""
        return [signal_state(ratio) for ratio in self.scale_ratio]


def signal_state(scale_ratio: float) -> str:
    """"collapsed" below ``COLLAPSED_BELOW``, "exploded" above ``EXPLODED_ABOVE`` or not finite, else "ok"."""
    if not np.isfinite(scale_ratio) or scale_ratio > EXPLODED_ABOVE:
        return "exploded"
    return "collapsed" if scale_ratio < COLLAPSED_BELOW else "ok"


def initial_signal(model: StableResNet, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> InitialSignal:
    """The scale ratio and first-batch gradient of ``model`` as it stands (call it before training).

    Parameters
    ----------
    model : StableResNet with M members, its standardisation already fitted (``train.fit_standardization``);
        left untouched (a float64 copy runs in training mode with batch-norm statistics frozen).
    X : (n, in_features) rows shared by all members, or (M, n, in_features) each member's own.
    y : (n,) or (M, n) int64 class indices.
    batch_size : the first mini-batch is the first ``batch_size`` rows of member m's first epoch
        order, ``randperm(n)`` from its "batches" stream: the rows ``train.fit`` steps on first.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer ≥ 1; got {batch_size!r}")
    net = copy.deepcopy(model).double().train()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    device = net.step_size.device
    X = torch.as_tensor(X, device=device, dtype=torch.float64)
    y = torch.as_tensor(y, device=device).long()
    if X.dim() == 2:
        X, y = X.unsqueeze(0).expand(net.n_members, -1, -1), y.unsqueeze(0).expand(net.n_members, -1)
    if X.dim() != 3 or X.shape[0] != net.n_members or X.shape[2] != net.in_features or y.shape != X.shape[:2]:
        raise ConfigError(f"X must have shape (n, {net.in_features}) or ({net.n_members}, n, {net.in_features}) "
                          f"with y (n,) or ({net.n_members}, n); got {tuple(X.shape)} and {tuple(y.shape)}")
    n_rows = X.shape[1]
    with net.field.frozen_statistics(), torch.no_grad():
        _, trajectory = net.flow(net.embed(X), return_trajectory=True)
        first, last = (trajectory[i].abs().flatten(1).amax(dim=1) for i in (0, -1))
        scale_ratio = last / first
    # The first epoch's order as ``fit`` draws it, so these are the rows of its first step.
    order = epoch_orders([member_generator(seed, "batches") for seed in net.seeds], n_rows)[:, :batch_size].to(device)
    y0 = net.embed(torch.gather(X, 1, order[..., None].expand(-1, -1, X.shape[2]))).detach().requires_grad_(True)
    with net.field.frozen_statistics():
        logits, _ = net.flow(y0)
    loss = F.cross_entropy(logits.flatten(0, 1), torch.gather(y, 1, order).flatten(), reduction="none")
    (gradient,) = torch.autograd.grad(loss.view(net.n_members, -1).mean(dim=1).sum(), y0)
    return InitialSignal(scale_ratio.cpu().numpy(), gradient.flatten(1).norm(dim=1).cpu().numpy())


def _per_sample_jacobian(function: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """∂function/∂y at every row of y (M, B, width), for a function acting on each row separately: (M, B, out, in).

    Then the Jacobian of Σ_{m,b} function(y)[m, b, :] with respect to y holds every per-row
    Jacobian at once: ``torch.func.jacrev`` computes it with one vmapped backward pass per
    output coordinate (width passes for the whole batch instead of width × B).
    """
    jacobian = torch.func.jacrev(lambda z: function(z).sum(dim=(0, 1)))(y)  # (out, M, B, in)
    return jacobian.permute(1, 2, 0, 3)


def field_jacobian(model: StableResNet, index: int, y: torch.Tensor) -> torch.Tensor:
    """J = ∂F_index/∂y at every point of y (M, B, width); returns (M, B, width, width), J[m, b, out, in].

    In evaluation mode F acts on each sample and member separately (see ``_per_sample_jacobian``).
    """
    layer = model.field.layers()[index]
    return _per_sample_jacobian(lambda z: model.field(z, layer, index), y)


def step_jacobian(model: StableResNet, index: int, y: torch.Tensor) -> torch.Tensor:
    """∂Φ_index/∂y of the block map Φ_i(y) = step(F_i, y, h_i) at every point of y (M, B, width).

    Returns (M, B, width, width), indexed [m, b, out, in]. For forward Euler it is I + h_i J_i;
    for a linear field F(y) = A y it is the integrator's stability polynomial R(h_i A).
    """
    return _per_sample_jacobian(block_maps(model)[index], y)


def _eigenvalues(jacobians: torch.Tensor) -> torch.Tensor:
    """Complex eigenvalues (..., width) of (..., width, width); NaN where a matrix is not finite.

    Each distinct matrix is decomposed once (the eigen-decompositions are most of a spectrum's
    cost): a ReLU field's Jacobian is fixed by its activation pattern (plain D K, shrinkage
    −Kᵀ D K, batch norm in evaluation mode alike), and samples share patterns, the more so the
    deeper the layer (13-76 % of a trained Abalone or Adult group's matrices were distinct). A
    matrix's eigenvalues do not depend on the batch around it, so they are the same numbers.
    """
    finite = torch.isfinite(jacobians).flatten(-2).all(dim=-1)
    safe = torch.where(finite[..., None, None], jacobians, torch.zeros_like(jacobians))
    width = safe.shape[-1]
    distinct, position = torch.unique(safe.reshape(-1, width * width), dim=0, return_inverse=True)
    values = torch.linalg.eigvals(distinct.view(-1, width, width))[position].view(safe.shape[:-1])
    return torch.where(finite[..., None], values, torch.full_like(values, complex(float("nan"), float("nan"))))


def _check_layers(model: StableResNet, layers) -> np.ndarray:
    if layers is None:
        return np.arange(model.depth)
    layers = np.atleast_1d(np.asarray(layers))
    if layers.size == 0 or not np.issubdtype(layers.dtype, np.integer) or layers.min() < 0 or layers.max() >= model.depth:
        raise ConfigError(f"layers must be block indices in [0, {model.depth - 1}]; got {layers.tolist()}")
    return layers


def layer_spectra(
    model: StableResNet,
    X,
    layers=None,
    keep_eigenvalues: bool = True,
    chunk_size: int = 2048,
) -> LayerSpectra:
    """Eigenvalues of each block's field Jacobian, and its block map's amplification, at the data.

    λ are the eigenvalues of ∂F_i/∂y; the amplification is max |eig(∂Φ_i/∂y)| of the block map
    Φ_i(y) = step(F_i, y, h_i) with the model's integrator and block step sizes (for forward
    Euler, max |1 + h_i λ|). Every member is analysed at once.

    Parameters
    ----------
    model : StableResNet with M members (not modified).
    X : (n_samples, in_features) raw inputs; the model standardises them.
    layers : sequence of int or None
        Block indices to analyse; ``None`` means all ``depth`` blocks.
    keep_eigenvalues : bool
        Keep the (M, L, n_samples, width) field eigenvalues (for the complex-plane figure).
    chunk_size : int
        Samples per Jacobian batch (bounds memory at width² × chunk_size × M numbers).

    Returns
    -------
    LayerSpectra

    Examples
    --------
    >>> net = StableResNet(in_features=2, n_classes=2, depth=3, block="shrinkage", step_size=0.5)
    >>> spectra = layer_spectra(net, np.random.default_rng(0).normal(size=(8, 2)))
    >>> spectra.max_amplification.shape, bool((spectra.max_real <= 1e-12).all())
    ((1, 3), True)
    """
    net = analysis_copy(model)
    layers = _check_layers(net, layers)
    inputs = _as_inputs(net, X)
    field_values, amplifications = [], []  # (M, L, chunk, width) and (M, L, chunk) per chunk of samples
    # Forward Euler's block map has Jacobian I + h_i J_i, whose eigenvalues are 1 + h_i λ: no second
    # eigen-decomposition (the eigenvalues are most of the cost). Other integrators differentiate Φ_i.
    euler_step_sizes = net.block_step_sizes()[:, layers, None, None] if net.integrator == "euler" else None
    for start in range(0, inputs.shape[1], chunk_size):
        with torch.no_grad():
            trajectory = net(inputs[:, start : start + chunk_size], return_trajectory=True)[1]
        values = torch.stack(
            [_eigenvalues(field_jacobian(net, int(index), trajectory[index])) for index in layers], dim=1)
        field_values.append(values.cpu())
        if euler_step_sizes is not None:
            amplifications.append((1 + euler_step_sizes * values).abs().amax(dim=-1).cpu())
        else:
            amplifications.append(torch.stack(
                [_eigenvalues(step_jacobian(net, int(index), trajectory[index])).abs().amax(dim=-1).cpu()
                 for index in layers], dim=1))  # NaN propagates
    values = torch.cat(field_values, dim=2)  # (M, L, n, width)
    amplification = torch.cat(amplifications, dim=2)  # (M, L, n)
    return LayerSpectra(
        layers=layers,
        step_size=net.step_size.flatten().cpu().numpy(),
        block_step_sizes=net.block_step_sizes()[:, layers].cpu().numpy(),
        eigenvalues=values.numpy() if keep_eigenvalues else None,
        max_real=values.real.amax(dim=(2, 3)).numpy(),
        max_imag=values.imag.abs().amax(dim=(2, 3)).numpy(),
        max_amplification=amplification.amax(dim=2).numpy(),
        stable_fraction=(amplification <= 1 + STABILITY_TOLERANCE).double().mean(dim=2).numpy(),
    )


def perturbation_growth(model: StableResNet, X, epsilon: float = 1e-3, seed: int = 0) -> PerturbationGrowth:
    """Follow a random layer-0 perturbation of size ε through every block Φ_i (eqs. 3-4).

    Each sample's layer-0 features y(0) (standardised, lifted) get y(0) + ε u with u a random
    unit vector (one draw per sample, shared by all members: a paired design across step
    sizes). The ratio is taken against the realised ‖y_ε(0) − y(0)‖, so an identity network
    gives exactly 1 at every layer.

    Parameters
    ----------
    model : StableResNet with M members.
    X : (n_samples, in_features) raw inputs.
    epsilon : float > 0, in layer-0 (standardised) units.
    seed : int, seed of the directions u.

    Returns
    -------
    PerturbationGrowth with ratio (M, depth + 1, n_samples).
    """
    if not np.isfinite(epsilon) or epsilon <= 0:
        raise ConfigError(f"epsilon must be a finite number > 0; got {epsilon!r}")
    net = analysis_copy(model)
    inputs = _as_inputs(net, X)
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(inputs.shape[1], net.width, generator=generator, dtype=torch.float64)
    direction = (direction / direction.norm(dim=1, keepdim=True)).to(inputs.device, inputs.dtype)
    with torch.no_grad():
        reference = net(inputs, return_trajectory=True)[1]  # (depth + 1, M, n, width)
        perturbed = propagate(net, reference[0] + epsilon * direction)
        distance = (perturbed - reference).norm(dim=-1)  # (depth + 1, M, n)
        ratio = distance / distance[0]
    return PerturbationGrowth(ratio=ratio.permute(1, 0, 2).cpu().numpy(), epsilon=float(epsilon))


# --- robust accuracy ------------------------------------------------------------------------


def _accuracy(net: StableResNet, inputs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Per-member accuracy; a row with non-finite logits counts as wrong (as in ``train.evaluate``)."""
    with torch.no_grad():
        logits = net(inputs)
    correct = (logits.argmax(dim=-1) == labels) & torch.isfinite(logits).all(dim=-1)
    return correct.double().mean(dim=1).cpu().numpy()


def _input_gradient(net: StableResNet, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """∂ loss_m / ∂ x for every member m and row; each row's gradient is its own cross-entropy's."""
    inputs = inputs.detach().requires_grad_(True)
    logits = net(inputs)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.repeat(net.n_members), reduction="sum")
    return torch.autograd.grad(loss, inputs)[0]


def _check_size(value: float, name: str) -> float:
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number ≥ 0; got {value!r}")
    return float(value)


def gaussian_noise(model: StableResNet, X, sigma: float, seed: int = 0) -> torch.Tensor:
    """Inputs (M, n, in) plus N(0, σ²) noise in standardised units: x + σ · input_scale_m · z.

    The same draw z serves every member, so members differ only by their own network.
    """
    sigma = _check_size(sigma, "sigma")
    inputs = _as_inputs(model, X)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(inputs.shape[1:], generator=generator, dtype=torch.float64)
    return inputs + sigma * model.input_scale * noise.to(inputs.device, inputs.dtype)


def fgsm(model: StableResNet, X, y, epsilon: float) -> torch.Tensor:
    """Fast gradient sign attack (Goodfellow et al. 2015) of L∞ size ε in standardised units.

    Standardised inputs are s = (x − μ)/σ_scale, so a step ε sign(∂loss/∂s) is, in raw units,
    x + ε · input_scale · sign(∂loss/∂x) (the scale is positive and leaves the sign unchanged).

    Returns
    -------
    (M, n, in_features) adversarial inputs, one set per member (each attacks its own network).
    """
    epsilon = _check_size(epsilon, "epsilon")
    net = analysis_copy(model)
    inputs = _as_inputs(net, X)
    labels = _as_labels(net, y, inputs.shape[1])
    gradient = _input_gradient(net, inputs, labels)
    return (inputs + epsilon * net.input_scale * gradient.sign()).to(model.step_size.dtype)


def pgd(model: StableResNet, X, y, epsilon: float, n_steps: int = 10, step_fraction: float = 2.5,
        random_start: bool = True, seed: int = 0) -> torch.Tensor:
    """Projected gradient descent in the L∞ ball of radius ε (Madry et al. 2018), standardised units.

    ``n_steps`` signed-gradient steps of size ``step_fraction · ε / n_steps`` (Madry's 2.5/n),
    each followed by projection onto the ball; optionally from a uniform random start
    (seeded). With ``n_steps=1``, no random start and ``step_fraction=1`` this is FGSM.

    Returns
    -------
    (M, n, in_features) adversarial inputs.
    """
    epsilon = _check_size(epsilon, "epsilon")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ConfigError(f"n_steps must be an integer ≥ 1; got {n_steps!r}")
    net = analysis_copy(model)
    inputs = _as_inputs(net, X)
    labels = _as_labels(net, y, inputs.shape[1])
    scale = net.input_scale
    step = step_fraction * epsilon / n_steps
    offset = torch.zeros_like(inputs)  # in standardised units
    if random_start:
        generator = torch.Generator().manual_seed(seed)
        draw = torch.rand(inputs.shape[1:], generator=generator, dtype=torch.float64)
        offset = ((2 * draw - 1) * epsilon).to(inputs.device, inputs.dtype).expand_as(inputs).clone()
    for _ in range(n_steps):
        gradient = _input_gradient(net, inputs + scale * offset, labels)
        offset = (offset + step * gradient.sign()).clamp(-epsilon, epsilon)
    return (inputs + scale * offset).to(model.step_size.dtype)


ATTACKS = {"fgsm": fgsm, "pgd": pgd}


def robust_accuracy(model: StableResNet, X, y, sigmas=(0.0, 0.1, 0.2, 0.5, 1.0),
                    epsilons=(0.0, 0.05, 0.1, 0.2, 0.5), pgd_steps: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-member test accuracy under Gaussian noise and under each attack of ``ATTACKS``.

    Parameters
    ----------
    model : StableResNet with M members.
    X, y : (n, in_features) raw test inputs and (n,) class indices.
    sigmas, epsilons : noise levels and attack radii, in standardised input units.
    pgd_steps : PGD iterations.
    seed : seed of the noise draws and PGD's random start.

    Returns
    -------
    dict with "sigma" (S,), "epsilon" (E,), "noise" (M, S), and one (M, E) array per attack.
    """
    net = analysis_copy(model)
    inputs = _as_inputs(net, X)
    labels = _as_labels(net, y, inputs.shape[1])
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=float))
    epsilons = np.atleast_1d(np.asarray(epsilons, dtype=float))
    X = inputs[0]
    result = {"sigma": sigmas, "epsilon": epsilons}
    result["noise"] = np.stack([_accuracy(net, gaussian_noise(net, X, s, seed), labels) for s in sigmas], axis=1)
    options = {"fgsm": {}, "pgd": {"n_steps": pgd_steps, "seed": seed}}
    for name, attack in ATTACKS.items():
        result[name] = np.stack(
            [_accuracy(net, attack(net, X, labels, e, **options[name]), labels) for e in epsilons], axis=1
        )
    return result


def _subsample(X, y, max_samples: int | None, seed: int):
    X, y = np.asarray(X), np.asarray(y)
    if max_samples is None or len(X) <= max_samples:
        return X, y
    rows = np.sort(np.random.default_rng(seed).choice(len(X), size=max_samples, replace=False))
    return X[rows], y[rows]


def member_robustness(model: StableResNet, X_test, y_test, sigma: float = 0.1, epsilon: float = 0.1,
                      growth_epsilon: float = 1e-3, pgd_steps: int = 10, max_samples: int | None = 512,
                      accuracy_samples: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """One row of stability and robustness numbers per member, for a sweep's records.

    Parameters
    ----------
    model : StableResNet with M members (e.g. one per step size).
    X_test, y_test : raw test inputs (n, in_features) and class indices (n,).
    sigma : Gaussian noise level, standardised units.
    epsilon : FGSM / PGD radius, standardised units.
    growth_epsilon : layer-0 perturbation size for the stability constant.
    max_samples : spectra and growth use at most this many test rows (a seeded subset).
    accuracy_samples : the clean, noisy and attacked accuracies use at most this many test rows
        (one seeded subset for all four, so a drop clean − attacked compares the same rows);
        None uses every row.

    Returns
    -------
    dict of (M,) arrays: "step_size", "clean_accuracy", "noise_accuracy", "fgsm_accuracy",
    "pgd_accuracy", "stability_constant" (c of eq. 4), "max_amplification" (largest
    |eig(∂Φ_i/∂y)| of a block map over all layers and samples; max |1 + hλ| for forward Euler),
    "max_real" (largest Re λ of ∂F_i/∂y), "stable_fraction" (fraction of (layer, sample) pairs
    with amplification ≤ 1, Proposition 1 for forward Euler).
    """
    X_sub, _ = _subsample(X_test, y_test, max_samples, seed)
    spectra = layer_spectra(model, X_sub, keep_eigenvalues=False)
    growth = perturbation_growth(model, X_sub, growth_epsilon, seed)
    X_test, y_test = _subsample(X_test, y_test, accuracy_samples, seed)
    accuracy = robust_accuracy(model, X_test, y_test, sigmas=(0.0, sigma), epsilons=(epsilon,),
                               pgd_steps=pgd_steps, seed=seed)
    return {
        "step_size": spectra.step_size,
        "clean_accuracy": accuracy["noise"][:, 0],
        "noise_accuracy": accuracy["noise"][:, 1],
        "fgsm_accuracy": accuracy["fgsm"][:, 0],
        "pgd_accuracy": accuracy["pgd"][:, 0],
        "stability_constant": growth.stability_constant,
        "max_amplification": spectra.max_amplification.max(axis=1),
        "max_real": spectra.max_real.max(axis=1),
        "stable_fraction": spectra.stable_fraction.mean(axis=1),
    }
