"""Model shape, trajectory, initialisation and configuration errors."""

import math

import pytest
import torch

from stableresnet import ConfigError, StableResNet


def test_trajectory_is_the_sequence_of_block_updates():
    model = StableResNet(in_features=2, n_classes=2, depth=4, step_size=0.5, seed=3).double()
    x = torch.randn(6, 2, dtype=torch.float64)
    logits, trajectory = model(x, return_trajectory=True)
    assert trajectory.shape == (5, 6, 2)
    torch.testing.assert_close(trajectory[0], x)  # layer 0 is the (standardised, here identity) input
    for i, layer in enumerate(model.field.layers()):
        expected = trajectory[i] + 0.5 * model.field(trajectory[i].unsqueeze(0), layer, i)[0]
        torch.testing.assert_close(trajectory[i + 1], expected)
    torch.testing.assert_close(logits, model.head(trajectory[-1].unsqueeze(0))[0])


def test_lift_only_when_width_differs():
    assert StableResNet(4, 3, depth=2).lift is None
    model = StableResNet(4, 3, depth=2, width=8)
    assert model.lift.weight.shape == (1, 8, 4)
    assert model(torch.zeros(5, 4)).shape == (5, 3)


def test_glorot_uniform_initialisation_and_zero_biases():
    model = StableResNet(in_features=30, n_classes=2, depth=3, width=50, seed=0)
    K1 = model.field.K1[:, 0]
    bound = math.sqrt(6 / (50 + 50))
    assert K1.abs().max() <= bound
    # Uniform on [-a, a] has variance a²/3.
    assert abs(K1.var().item() - bound**2 / 3) < 0.1 * bound**2 / 3
    assert all(torch.count_nonzero(p) == 0 for name, p in model.named_parameters() if name.endswith(("b1", "b2", "bias")))


def test_members_with_the_same_seed_share_k1_across_block_types():
    fields = {b: StableResNet(3, 2, depth=2, block=b, seed=5).field for b in ("plain", "shrinkage", "batchnorm")}
    torch.testing.assert_close(fields["plain"].K1, fields["shrinkage"].K1)
    torch.testing.assert_close(fields["plain"].K1, fields["batchnorm"].K1)
    other_seed = StableResNet(3, 2, depth=2, seed=6).field.K1
    assert not torch.equal(other_seed, fields["plain"].K1)


def test_ensemble_member_initialisation_equals_the_single_model():
    ensemble = StableResNet(3, 2, depth=2, step_size=[0.1, 0.5, 1.0], seed=[7, 8, 9])
    single = StableResNet(3, 2, depth=2, step_size=0.5, seed=8)
    for (name, stacked), (_, alone) in zip(ensemble.named_parameters(), single.named_parameters()):
        torch.testing.assert_close(stacked[1], alone[0], msg=name)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(step_size=0.0), "step_size"),
        (dict(step_size=-0.1), "step_size"),
        (dict(step_size=float("nan")), "step_size"),
        (dict(depth=0), "depth"),
        (dict(block="resnext"), "unknown block 'resnext'"),
        (dict(activation="gelu"), "unknown activation 'gelu'"),
        (dict(width=0), "width"),
        (dict(step_size=[0.1, 0.2], seed=[1, 2, 3]), "seeds"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        StableResNet(**{"in_features": 3, "n_classes": 2, "depth": 2, **kwargs})


@pytest.mark.parametrize("block", ["plain", "shrinkage", "batchnorm"])
@pytest.mark.parametrize("policy", ["fixed", "learnable", "adaptive"])
def test_select_members_keeps_exactly_those_networks(block, policy):
    from stableresnet import TrainConfig, fit

    X = torch.randn(40, 5, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    model = StableResNet(5, 2, 3, 6, block, step_size=[0.1, 0.5, 1.0, 0.3], seed=[0, 1, 2, 3],
                         step_size_policy=policy)
    fit(model, X, y, TrainConfig(epochs=2, batch_size=8))  # moves every parameter and running statistic
    model.eval()
    subset = model.select_members([3, 1])
    assert subset.n_members == 2 and not subset.training
    assert subset.config()["seed"] == [3, 1] and subset.config()["step_size"] == pytest.approx([0.3, 0.5])
    with torch.no_grad():
        assert torch.equal(subset(X), model(X)[[3, 1]])
    with pytest.raises(ConfigError, match=r"indices in \[0, 3\]"):
        model.select_members([4])
