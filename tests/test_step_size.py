"""Step-size policies: fixed is the paper, learnable h stays in (0, h_max], adaptive h meets Proposition 1."""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from stableresnet import STEP_SIZE_POLICIES, ConfigError, StableResNet, TrainConfig, fit, load_model, save_model
from stableresnet.diagnostics import STABILITY_TOLERANCE, field_jacobian
from stableresnet.step_size import Learnable


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=120, noise=0.1, random_state=0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def test_fixed_policy_uses_h_in_every_block():
    model = StableResNet(2, 2, depth=5, step_size=[0.1, 0.7], seed=[0, 1])
    np.testing.assert_allclose(model.block_step_sizes().numpy(), [[0.1] * 5, [0.7] * 5], rtol=1e-6)
    assert not any(name.startswith("step_policy") for name in model.state_dict())  # nothing new in saved files


def test_learnable_starts_at_h_and_is_reported_after_training(moons):
    model = StableResNet(2, 2, depth=4, width=4, step_size=[0.3, 0.6], seed=[0, 1], step_size_policy="learnable",
                         max_step_size=1.0).double()
    np.testing.assert_allclose(model.block_step_sizes().numpy(), [[0.3] * 4, [0.6] * 4], rtol=1e-6)  # built in float32
    result = fit(model, *moons, TrainConfig(epochs=5, batch_size=16, learning_rate=5e-2))
    assert result.step_sizes.shape == (2, 4)
    assert not np.allclose(result.step_sizes, [[0.3] * 4, [0.6] * 4])  # it learned
    assert ((result.step_sizes > 0) & (result.step_sizes <= 1.0)).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("theta", [-1e30, -1e4, -100.0, 0.0, 100.0, 1e4, 1e30, float("inf"), float("-inf")])
def test_learnable_h_stays_in_range_for_any_parameter(theta, dtype):
    model = StableResNet(2, 2, depth=3, step_size=0.5, step_size_policy="learnable", max_step_size=1.0).to(dtype)
    with torch.no_grad():
        model.step_policy.theta.fill_(theta)
    h = model.block_step_sizes()
    assert (h > 0).all() and (h <= 1.0).all()
    # h_max − (h_max − h_min) rounds to h_min within a few ulps of h_max.
    assert (h >= Learnable.min_fraction * 1.0 - 4 * torch.finfo(dtype).eps).all()


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_learnable_h_stays_in_range_under_huge_gradients(moons, direction):
    """SGD with an absurd learning rate pushes θ to ±1e20 and beyond; h never leaves (0, h_max]."""
    model = StableResNet(2, 2, depth=3, step_size=0.5, step_size_policy="learnable", max_step_size=1.0)
    optimizer = torch.optim.SGD([model.step_policy.theta], lr=1e20)
    X, _ = moons
    for _ in range(20):
        optimizer.zero_grad()
        (direction * 1e10 * model(X).sum()).backward()
        optimizer.step()
        h = model.block_step_sizes()
        assert (h > 0).all() and (h <= 1.0).all()


def test_learnable_needs_room_above_h():
    with pytest.raises(ConfigError, match="max_step_size must exceed"):
        StableResNet(2, 2, depth=2, step_size=0.5, step_size_policy="learnable", max_step_size=0.5)
    with pytest.raises(ConfigError, match="unknown step_size_policy 'random'"):
        StableResNet(2, 2, depth=2, step_size_policy="random")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adaptive_h_meets_proposition_1_on_its_batch(dtype):
    """Shrinkage blocks (real λ ≤ 0) with large weights, so that h = 1 would violate |1 + hλ| ≤ 1.

    Block by block in training mode: the policy picks h_i from the batch y_i (its
    finite-difference products in the training dtype), and the exact eigenvalues of every
    sample's Jacobian there (``diagnostics.field_jacobian``, float64) satisfy max |1 + h_i λ| ≤ 1.
    """
    model = StableResNet(6, 2, depth=6, block="shrinkage", step_size=[1.0, 0.05], seed=[0, 1],
                         step_size_policy="adaptive").to(dtype)
    with torch.no_grad():
        model.field.K1.mul_(3.0)
    model.train()
    exact = copy.deepcopy(model).double()
    y = torch.randn(2, 64, 6, dtype=dtype, generator=torch.Generator().manual_seed(0))
    bound_active = 0
    for index, layer in enumerate(model.field.layers()):
        def field(z, layer=layer, index=index):
            return model.field(z, layer, index)

        h = model.step_policy(field, y, index, model.step_size)
        assert not h.requires_grad
        eigenvalues = torch.linalg.eigvals(field_jacobian(exact, index, y.detach().double()))  # (M, B, d)
        amplification = (1 + h.view(-1, 1, 1) * eigenvalues).abs().amax(dim=(1, 2))
        assert (amplification <= 1 + STABILITY_TOLERANCE).all(), (index, amplification)
        bound_active += int((h.view(-1) < model.step_size.view(-1)).sum())
        # With the given h alone, member 0 (h = 1) would break Proposition 1 here.
        assert (1 + eigenvalues[0]).abs().max() > 1
        y = model.step_rule.step(field, y, h).detach()
    assert bound_active >= model.depth  # member 0's h was cut in every block
    assert (model.block_step_sizes() <= model.step_size.view(-1, 1)).all()  # h is only ever cut


def test_adaptive_predictions_do_not_depend_on_the_batch(moons):
    X, y = moons
    model = StableResNet(2, 2, depth=4, width=4, block="shrinkage", step_size=1.0, step_size_policy="adaptive")
    fit(model, X, y, TrainConfig(epochs=2, batch_size=16))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(X)[:7], model(X[:7]))


@pytest.mark.parametrize("policy", sorted(STEP_SIZE_POLICIES))
def test_ensemble_members_train_as_they_would_alone(moons, policy):
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=1e-2)
    ensemble = StableResNet(2, 2, depth=4, width=4, block="shrinkage", step_size=[0.2, 0.5], seed=[3, 4],
                            step_size_policy=policy)
    result = fit(ensemble, *moons, config)
    alone = StableResNet(2, 2, depth=4, width=4, block="shrinkage", step_size=0.5, seed=4, step_size_policy=policy)
    single = fit(alone, *moons, config)
    torch.testing.assert_close(ensemble.field.K1[1], alone.field.K1[0])
    np.testing.assert_allclose(result.step_sizes[1], single.step_sizes[0], rtol=1e-5)


@pytest.mark.parametrize("policy", sorted(STEP_SIZE_POLICIES))
def test_saved_model_keeps_its_step_sizes(moons, policy, tmp_path):
    model = StableResNet(2, 2, depth=3, width=4, block="shrinkage", step_size=0.5, step_size_policy=policy)
    fit(model, *moons, TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2))
    loaded, _, _ = load_model(save_model(tmp_path / "m.safetensors", model))
    assert loaded.config() == model.config()
    torch.testing.assert_close(loaded.block_step_sizes(), model.block_step_sizes())
    with torch.no_grad():
        torch.testing.assert_close(loaded(moons[0]), model.eval()(moons[0]))


def test_adaptive_probes_leave_batch_norm_running_statistics_alone():
    """With h small enough that the bound never binds, adaptive h = fixed h, so one training pass
    must leave exactly the fixed model's running statistics (one momentum update per stage)."""
    X = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    models = [StableResNet(4, 2, depth=3, block="batchnorm", step_size=0.01, seed=0, step_size_policy=policy)
              for policy in ("fixed", "adaptive")]
    for model in models:
        model.train()(X)
    fixed, adaptive = (dict(model.field.named_buffers()) for model in models)
    assert not torch.equal(fixed["norm1_running_mean"], torch.zeros_like(fixed["norm1_running_mean"]))
    for name in fixed:
        torch.testing.assert_close(adaptive[name], fixed[name], rtol=0, atol=0)
    np.testing.assert_allclose(models[1].block_step_sizes().numpy(), 0.01, rtol=1e-6)
