"""Blocks against hand computations, the h-affinity of the update, and Proposition 2."""

import numpy as np
import pytest
import torch

from stableresnet.blocks import VECTOR_FIELDS, Euler

WIDTH = 4  # even: the two-stream hamiltonian field splits the width in halves


class Block:
    """One layer of a one-member field with random parameters, advanced by forward Euler."""

    def __init__(self, name, activation="relu", seed=0):
        self.field = VECTOR_FIELDS[name](1, 1, WIDTH, activation).double()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in self.field.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
        self.params = {k: v[:, 0].detach().numpy() for k, v in self.field.named_parameters()}

    def F(self, y):
        return self.field(y, self.field.layers()[0], 0)

    def __call__(self, y, h):
        return Euler().step(self.F, y, h)

    def eval(self):
        self.field.eval()
        return self


make_block = Block


def by_hand(name, params, y, h, activation):
    """The column-vector formulas (eqs. 7, 8, He et al.'s batch-norm block, Haber & Ruthotto, Chang et al.) in numpy."""
    sigma = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh}[activation]
    K1, b1 = params["K1"][0], params["b1"][0, 0]
    if name == "plain":
        F = (params["K2"][0] @ sigma(K1 @ y.T + b1[:, None]) + params["b2"][0, 0][:, None]).T
    elif name == "shrinkage":
        F = -(K1.T @ sigma(K1 @ y.T + b1[:, None]) + params["b2"][0, 0][:, None]).T
    elif name == "antisymmetric":
        F = sigma((K1 - K1.T - 0.01 * np.eye(len(K1))) @ y.T + b1[:, None]).T
    elif name == "hamiltonian":
        half = len(K1) // 2
        A, B = K1[:, :half], K1[:, half:]
        p, q = y[:, :half].T, y[:, half:].T
        dp = B.T @ sigma(B @ q + b1[:, None])
        dq = -A.T @ sigma(A @ p + params["b2"][0, 0][:, None])
        F = np.concatenate([dp, dq]).T
    else:
        def bn(z, prefix):  # training mode: batch mean, biased batch variance, eps 1e-5
            normed = (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)
            return normed * params[f"{prefix}_weight"][0] + params[f"{prefix}_bias"][0]
        if name == "batchnorm":
            hidden = sigma(bn(y @ K1.T + b1, "norm1"))
            F = bn(hidden @ params["K2"][0].T + params["b2"][0, 0], "norm2")
        else:  # pre-activation: K2 σ(BN2(K1 σ(BN1(y)) + b1)) + b2
            hidden = sigma(bn(sigma(bn(y, "norm1")) @ K1.T + b1, "norm2"))
            F = hidden @ params["K2"][0].T + params["b2"][0, 0]
    return y + h * F


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("name", sorted(VECTOR_FIELDS))
def test_update_matches_hand_computation(name, activation):
    block = make_block(name, activation)
    y = torch.randn(1, 5, WIDTH, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = 0.3
    expected = by_hand(name, block.params, y[0].numpy(), h, activation)
    got = block(y, torch.tensor(h, dtype=torch.float64))[0].detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(VECTOR_FIELDS))
def test_update_is_affine_in_step_size(name):
    block = make_block(name).eval()  # eval: batch norm uses fixed statistics, so F does not change
    y = torch.randn(1, 7, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    unit = block(y, torch.tensor(1.0, dtype=torch.float64)) - y
    for h in (0.1, 0.5, 2.0):
        step = block(y, torch.tensor(h, dtype=torch.float64)) - y
        torch.testing.assert_close(step, h * unit, rtol=0, atol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_shrinkage_jacobian_eigenvalues_are_real_and_non_positive(activation):
    """Proposition 2: ∂F/∂y = -K1ᵀ diag(σ') K1 has real eigenvalues ≤ 0, for any parameters."""
    for seed in range(20):
        block = make_block("shrinkage", activation, seed=seed)
        y0 = torch.randn(1, 1, WIDTH, dtype=torch.float64, generator=torch.Generator().manual_seed(100 + seed))
        jacobian = torch.autograd.functional.jacobian(lambda y: block.F(y.view(1, 1, WIDTH)).view(WIDTH), y0.view(WIDTH))
        eigenvalues = torch.linalg.eigvals(jacobian)
        assert eigenvalues.imag.abs().max() <= 1e-6
        assert eigenvalues.real.max() <= 1e-6


def test_shrinkage_second_weight_is_tied_to_the_first():
    """Eq. 8 has one weight matrix: K1 and its transpose, not a second free copy."""
    field = make_block("shrinkage").field
    assert sorted(name for name, _ in field.named_parameters()) == ["K1", "b1", "b2"]


def test_gradients_pass_gradcheck():
    for name in sorted(VECTOR_FIELDS):
        block = make_block(name)
        y = torch.randn(1, 4, WIDTH, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda y: block(y, torch.tensor(0.5, dtype=torch.float64)), (y,))
