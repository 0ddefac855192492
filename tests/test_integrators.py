"""Integrators against exact answers: stability polynomials of linear fields, leapfrog's energy, the engine."""

import pytest
import torch
from sklearn.datasets import make_moons

from stableresnet import ConfigError, StableResNet, TrainConfig, fit
from stableresnet.blocks import INTEGRATORS, VECTOR_FIELDS

I2 = torch.eye(2, dtype=torch.float64)


def _leapfrog_matrix(Z):
    """Kick–drift–kick for Z = h[[0, B], [C, 0]] on (p, q): [[I, B/2],[0, I]] [[I, 0],[C, I]] [[I, B/2],[0, I]]."""
    n = Z.shape[0] // 2
    kick, drift = torch.eye(2 * n, dtype=Z.dtype), torch.eye(2 * n, dtype=Z.dtype)
    kick[:n, n:] = Z[:n, n:] / 2
    drift[n:, :n] = Z[n:, :n]
    return kick @ drift @ kick


# One step of each integrator on F(y) = A y is the matrix R(hA): its stability polynomial.
ONE_STEP = {
    "euler": lambda Z: torch.eye(len(Z), dtype=Z.dtype) + Z,
    "heun": lambda Z: torch.eye(len(Z), dtype=Z.dtype) + Z + Z @ Z / 2,
    "midpoint": lambda Z: torch.eye(len(Z), dtype=Z.dtype) + Z + Z @ Z / 2,
    "rk4": lambda Z: sum(torch.linalg.matrix_power(Z, k) / [1, 1, 2, 6, 24][k] for k in range(5)),
    "leapfrog": _leapfrog_matrix,
}


class Linear(torch.nn.Module):
    def __init__(self, A):
        super().__init__()
        self.A = A

    def forward(self, y):
        return y @ self.A.T


def test_every_integrator_has_an_exact_answer():
    assert set(ONE_STEP) == set(INTEGRATORS)


def _n_steps(name, A, y0, h, n):
    y = y0
    for _ in range(n):
        y = INTEGRATORS[name]().step(Linear(A), y, h)
    return y


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_linear_field_gives_the_stability_polynomial_to_the_power_n(name):
    """Two-stream A = [[0, B], [C, 0]] (so leapfrog applies too), n = 25 steps, float64."""
    generator = torch.Generator().manual_seed(0)
    A = torch.zeros(4, 4, dtype=torch.float64)
    A[:2, 2:] = torch.randn(2, 2, generator=generator, dtype=torch.float64)
    A[2:, :2] = torch.randn(2, 2, generator=generator, dtype=torch.float64)
    y0 = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    h, n = 0.1, 25
    expected = y0 @ torch.linalg.matrix_power(ONE_STEP[name](h * A), n).T
    torch.testing.assert_close(_n_steps(name, A, y0, h, n), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n, cls in INTEGRATORS.items() if not cls.needs_separable_streams))
def test_general_linear_field_with_a_member_axis(name):
    """Any A, and an (M, 1, 1) step size: member m follows R(h_m A)^n."""
    A = torch.tensor([[-1.0, 2.0], [-0.5, -0.3]], dtype=torch.float64)
    y0 = torch.tensor([[[1.0, -2.0]], [[0.5, 0.25]]], dtype=torch.float64)  # (M=2, B=1, 2)
    h = torch.tensor([0.1, 0.4], dtype=torch.float64).view(2, 1, 1)
    y = _n_steps(name, A, y0, h, 30)
    for m in range(2):
        expected = y0[m] @ torch.linalg.matrix_power(ONE_STEP[name](h[m, 0, 0] * A), 30).T
        torch.testing.assert_close(y[m], expected, rtol=1e-12, atol=1e-12)


def test_leapfrog_conserves_the_discrete_energy_of_a_linear_hamiltonian_system():
    """dp/dt = −K q, dq/dt = p, K SPD: H̃ = ½|p|² + ½ qᵀ(K − h²K²/4) q is exactly invariant."""
    generator = torch.Generator().manual_seed(1)
    root = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    K = root @ root.T + 0.5 * torch.eye(3, dtype=torch.float64)
    A = torch.zeros(6, 6, dtype=torch.float64)
    A[:3, 3:] = -K
    A[3:, :3] = torch.eye(3, dtype=torch.float64)
    h = 0.9 / torch.linalg.eigvalsh(K).max().sqrt()  # h ω_max < 2: inside leapfrog's stability interval
    modified = K - h**2 * K @ K / 4

    def energy(y):
        p, q = y[..., :3], y[..., 3:]
        return 0.5 * (p * p).sum(-1) + 0.5 * ((q @ modified) * q).sum(-1)

    y = torch.randn(5, 6, generator=generator, dtype=torch.float64)
    start, energies = energy(y), []
    for _ in range(2000):
        y = INTEGRATORS["leapfrog"]().step(Linear(A), y, h)
        energies.append(energy(y))
    drift = (torch.stack(energies) - start).abs().max() / start.abs().min()
    assert drift < 1e-12
    # Forward Euler on the same system gains energy every step (|1 + hλ| > 1 for imaginary λ).
    z = y
    for _ in range(50):
        z = INTEGRATORS["euler"]().step(Linear(A), z, h)
    assert (energy(z) > energy(y)).all()


def _block_for(name):
    return "hamiltonian" if INTEGRATORS[name].needs_separable_streams else "shrinkage"


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_model_forward_is_the_integrators_steps(name):
    model = StableResNet(4, 2, depth=3, block=_block_for(name), step_size=[0.3, 0.7], integrator=name, seed=[1, 2]).double()
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    _, trajectory = model(x, return_trajectory=True)
    y = x
    for index, layer in enumerate(model.field.layers()):
        y = INTEGRATORS[name]().step(lambda z: model.field(z, layer, index), y, model.step_size)
        torch.testing.assert_close(trajectory[index + 1], y, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_ensemble_members_train_as_they_would_alone(name):
    X, y = make_moons(n_samples=80, noise=0.1, random_state=0)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=1e-2)
    block = _block_for(name)
    ensemble = StableResNet(2, 2, depth=4, width=4, block=block, step_size=[0.2, 0.5], integrator=name, seed=[3, 4])
    fit(ensemble, X, y, config)
    alone = StableResNet(2, 2, depth=4, width=4, block=block, step_size=0.5, integrator=name, seed=4)
    fit(alone, X, y, config)
    torch.testing.assert_close(ensemble.field.K1[1], alone.field.K1[0])


@pytest.mark.parametrize("name", sorted(n for n, cls in INTEGRATORS.items() if cls.needs_separable_streams))
def test_two_stream_integrators_refuse_other_fields(name):
    for block, field in VECTOR_FIELDS.items():
        if not field.separable_streams:
            with pytest.raises(ConfigError, match="two-stream"):
                StableResNet(4, 2, depth=2, block=block, integrator=name)


def test_unknown_integrator_is_refused():
    with pytest.raises(ConfigError, match="unknown integrator 'rk45'"):
        StableResNet(4, 2, depth=2, integrator="rk45")
