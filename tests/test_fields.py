"""Every vector field's stability claim, checked with exact Jacobian spectra; the smoothness penalty's value."""

import numpy as np
import pytest
import torch

from stableresnet import ConfigError, StableResNet
from stableresnet.blocks import VECTOR_FIELDS, Antisymmetric
from stableresnet.diagnostics import layer_spectra


def _tolerance(eig):
    """Round-off of float64 eigenvalues, relative to the largest |λ|.

    √eps, not eps: a saturated unit (σ' ≈ 0) makes a double eigenvalue near 0 with a
    Jordan block, whose computed eigenvalues move by √(eps ‖J‖) (seen: 2e-9 at ‖J‖ ≈ 12).
    """
    return np.sqrt(np.finfo(np.float64).eps) * max(1.0, np.abs(eig).max())


# The claim each field's docstring makes about the eigenvalues λ of ∂F/∂y (None: no claim).
CLAIMS = {
    "plain": None,
    "batchnorm": None,
    "batchnorm-preact": None,
    "shrinkage": lambda eig: (np.abs(eig.imag) <= _tolerance(eig)).all() and (eig.real <= _tolerance(eig)).all(),
    "antisymmetric": lambda eig: (eig.real <= _tolerance(eig)).all(),
    "hamiltonian": lambda eig: (np.abs(eig.real) <= _tolerance(eig)).all(),
}


def test_every_field_states_its_claim_here():
    assert set(CLAIMS) == set(VECTOR_FIELDS)


def _scrambled(block, activation, seed, width=6):
    """A 3-member, 4-block model with large random weights and biases (so σ' varies)."""
    model = StableResNet(width, 2, depth=4, block=block, activation=activation, step_size=0.5, seed=[seed, seed + 1, seed + 2]).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.field.parameters():
            parameter.copy_(2 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("block", sorted(b for b, claim in CLAIMS.items() if claim is not None))
def test_jacobian_spectrum_claim(block, activation):
    for seed in range(3):
        model = _scrambled(block, activation, seed)
        X = np.random.default_rng(seed).normal(size=(40, 6)) * 2
        eigenvalues = layer_spectra(model, X).eigenvalues
        assert np.isfinite(eigenvalues).all()
        assert CLAIMS[block](eigenvalues), (block, activation, seed)


def test_antisymmetric_linear_part_has_real_part_minus_gamma():
    """eig(K − Kᵀ − γI) = −γ + iω exactly (skew-symmetric plus a shift)."""
    field = _scrambled("antisymmetric", "relu", 0).field
    for layer in field.layers():
        eigenvalues = torch.linalg.eigvals(field.linear_part(layer))
        torch.testing.assert_close(eigenvalues.real, torch.full_like(eigenvalues.real, -Antisymmetric.gamma),
                                   rtol=0, atol=1e-12)


def test_hamiltonian_block_needs_an_even_width():
    with pytest.raises(ConfigError, match="even width"):
        StableResNet(3, 2, depth=2, block="hamiltonian")
    assert StableResNet(3, 2, depth=2, width=4, block="hamiltonian")(torch.zeros(5, 3)).shape == (5, 2)


@pytest.mark.parametrize("block", sorted(VECTOR_FIELDS))
def test_smoothness_is_the_sum_of_squared_layer_differences(block):
    field = _scrambled(block, "relu", 0).field
    expected = np.zeros(3)
    for name in field.weight_names:
        weight = getattr(field, name).detach().numpy()
        for i in range(weight.shape[1] - 1):
            expected += ((weight[:, i + 1] - weight[:, i]) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(field.smoothness().detach().numpy(), expected, rtol=1e-12)
    assert set(field.weight_names) <= {name for name, _ in field.named_parameters()}
