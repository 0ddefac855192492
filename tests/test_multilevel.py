"""Multi-level depth: prolongation keeps the function up to O(N h²), exactly for constant fields."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from stableresnet import ConfigError, StableResNet, TrainConfig, fit
from stableresnet.blocks import INTEGRATORS
from stableresnet.multilevel import coarsen, fit_multilevel, prolongate


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=96, noise=0.1, random_state=0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def _inputs(n=50, width=3):
    return torch.randn(n, width, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _randomise(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.5)
    return model


def test_blocks_2i_and_2i_plus_1_copy_block_i_at_half_the_step_size():
    model = _randomise(StableResNet(3, 2, depth=4, block="batchnorm", step_size=[0.2, 0.4], seed=[0, 1]).double())
    model.field.norm1_running_mean.normal_()  # (depth, M, width): depth is the first axis here
    finer = prolongate(model)
    assert finer.depth == 8
    np.testing.assert_allclose(finer.step_size.flatten().numpy(), [0.1, 0.2])
    for name, tensor in model.field.state_dict().items():
        axis = 0 if "running" in name else 1
        fine = finer.field.state_dict()[name]
        for i in range(4):
            for copy in (2 * i, 2 * i + 1):
                torch.testing.assert_close(fine.select(axis, copy), tensor.select(axis, i), rtol=0, atol=0)
    torch.testing.assert_close(finer.head.weight, model.head.weight, rtol=0, atol=0)
    assert model.depth == 4  # the coarse model is left as it was


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_a_constant_field_gives_exactly_the_same_function(integrator):
    """K1 = 0 makes F_i(y) = K2 σ(b1) + b2 constant: two half steps are exactly one full step."""
    model = _randomise(StableResNet(3, 2, depth=5, block="plain", step_size=0.3, integrator=integrator).double())
    with torch.no_grad():
        model.field.K1.zero_()
    X = _inputs()
    torch.testing.assert_close(prolongate(model).eval()(X), model.eval()(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("integrator", sorted(set(INTEGRATORS) - {"leapfrog"}))
def test_change_after_prolongation_is_second_order_in_h(integrator):
    """At fixed depth N the change is ≈ N (h²/4) J F: halving h divides it by about 4."""
    def change(h):
        model = _randomise(StableResNet(3, 2, depth=6, step_size=h, activation="tanh", integrator=integrator).double())
        X = _inputs()
        return (prolongate(model).eval()(X) - model.eval()(X)).abs().max().item()

    changes = [change(h) for h in (0.04, 0.02, 0.01)]
    assert 0 < changes[-1] < 1e-3
    for coarse, fine in zip(changes, changes[1:]):
        # Euler's local error is O(h²); RK2/RK4 are higher order, so they shrink faster.
        assert coarse / fine > 3.5


def test_leapfrog_prolongation_is_second_order_too():
    def change(h):
        model = _randomise(StableResNet(4, 2, depth=6, block="hamiltonian", integrator="leapfrog", step_size=h,
                                        activation="tanh").double())
        X = _inputs(width=4)
        return (prolongate(model).eval()(X) - model.eval()(X)).abs().max().item()

    assert change(0.04) / change(0.02) > 3.5


def test_learnable_and_adaptive_block_step_sizes_are_halved():
    learnable = StableResNet(2, 2, depth=3, step_size=0.2, step_size_policy="learnable", max_step_size=1.0).double()
    with torch.no_grad():
        learnable.step_policy.theta.copy_(torch.tensor([[-1.0, 0.5, 2.0]]))
    adaptive = StableResNet(2, 2, depth=3, step_size=0.2, step_size_policy="adaptive").double()
    with torch.no_grad():
        adaptive.step_policy.average_step_size.copy_(torch.tensor([[0.05, 0.1, 0.2]]))
    for model in (learnable, adaptive):
        coarse = model.block_step_sizes()[0]
        expected = coarse.repeat_interleave(2) / 2
        torch.testing.assert_close(prolongate(model).block_step_sizes()[0], expected, rtol=1e-12, atol=0)


def test_coarsen_scales_depth_and_step_sizes_and_rejects_bad_levels():
    config = StableResNet(2, 2, depth=12, step_size=[0.1, 0.5], seed=[0, 1]).config()
    coarse = coarsen(config, levels=3)
    assert coarse["depth"] == 3
    np.testing.assert_allclose(coarse["step_size"], [0.4, 2.0])
    np.testing.assert_allclose(coarse["max_step_size"], [0.8, 4.0])
    assert coarsen(config, 1) == config
    with pytest.raises(ConfigError, match="multiple of 2\\^\\(levels−1\\) = 8"):
        coarsen(config, levels=4)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="levels must be an integer"):
            coarsen(config, bad)


def test_one_level_is_plain_fit(moons):
    config = TrainConfig(epochs=3, batch_size=16)
    direct = StableResNet(2, 2, depth=4, width=4, step_size=0.2, seed=0)
    leveled = StableResNet(2, 2, depth=4, width=4, step_size=0.2, seed=0)
    expected = fit(direct, *moons, config)
    final, result = fit_multilevel(leveled, *moons, config, levels=1)
    assert final is leveled
    np.testing.assert_array_equal(result.loss_history, expected.loss_history)


def test_three_levels_end_at_the_final_depth_and_report_every_epoch(moons):
    config = TrainConfig(epochs=2, batch_size=16)
    coarse = StableResNet(**coarsen(StableResNet(2, 2, depth=8, width=4, step_size=0.1, seed=[0, 1]).config(), 3))
    assert (coarse.depth, coarse.step_size.flatten().tolist()) == (2, pytest.approx([0.4, 0.4]))
    seen = []
    final, result = fit_multilevel(coarse, *moons, config, levels=3, on_epoch=lambda epoch, loss: seen.append(epoch))
    assert final.depth == 8 and final.n_members == 2
    np.testing.assert_allclose(final.block_step_sizes().numpy(), 0.1, rtol=1e-6)
    assert seen == list(range(6)) and result.loss_history.shape == (6, 2)
    assert not result.diverged.any() and result.step_sizes.shape == (2, 8)
    # The last level starts from the prolongated second level, so training continues, not restarts.
    assert (result.loss_history[4] < result.loss_history[0]).all()  # per member
