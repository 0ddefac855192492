"""Training: determinism, learning, divergence as a result, ensemble independence, bad input."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from stableresnet import ConfigError, StableResNet, TrainConfig, evaluate, fit


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def trained(X, y, **kwargs):
    model = StableResNet(2, 2, depth=kwargs.pop("depth", 5), width=8, seed=kwargs.pop("seed", 0), **kwargs)
    result = fit(model, X, y, TrainConfig(epochs=15, batch_size=16, learning_rate=1e-2))
    return model, result


def test_same_seed_gives_bit_identical_weights_and_predictions(moons):
    X, y = moons
    first, _ = trained(X, y, seed=11, block="batchnorm")
    second, _ = trained(X, y, seed=11, block="batchnorm")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(first(X), second(X))
    third, _ = trained(X, y, seed=12, block="batchnorm")
    assert not torch.equal(first.field.K1, third.field.K1)


@pytest.mark.parametrize("block", ["plain", "shrinkage", "batchnorm"])
def test_each_block_learns_the_moons(moons, block):
    X, y = moons
    model, result = trained(X, y, block=block, step_size=0.5)
    assert not result.diverged[0]
    assert result.loss_history[-1, 0] < result.loss_history[0, 0]
    assert evaluate(model, X, y)["accuracy"][0] >= 0.85


def test_standardisation_is_fitted_on_the_training_rows_only(moons):
    X, y = moons
    X = X * 100 + 7
    model = StableResNet(2, 2, depth=1, seed=0)
    train_rows = torch.arange(0, 100).unsqueeze(0)
    fit(model, X, y, TrainConfig(epochs=1), train_index=train_rows)
    torch.testing.assert_close(model.input_mean[0, 0], X[:100].mean(0))
    torch.testing.assert_close(model.input_scale[0, 0], X[:100].std(0, unbiased=False))


def test_deep_plain_resnet_on_unscaled_data_is_reported_not_crashed():
    """100 plain blocks at h = 1 on raw, large-valued features: diverged or finite, never an exception."""
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(300, 4, generator=generator) * 1e4
    y = (X[:, 0] > X[:, 1]).long()
    config = TrainConfig(epochs=3, batch_size=30, standardize=False)
    vanilla = StableResNet(4, 2, depth=100, step_size=1.0, seed=0)
    result = fit(vanilla, X, y, config)
    metrics = evaluate(vanilla, X, y)
    if result.diverged[0]:
        assert 0 <= result.diverged_epoch[0] < 3
        assert all(torch.isfinite(p).all() for p in vanilla.parameters())  # frozen at last finite weights
    else:
        assert np.isfinite(result.loss_history).all()
    assert 0.0 <= metrics["accuracy"][0] <= 1.0
    # The same data at h = 0.1 (standardised by the trainer, its default) trains well.
    small_h = StableResNet(4, 2, depth=100, step_size=0.1, seed=0)
    result = fit(small_h, X, y, TrainConfig(epochs=10, batch_size=30, learning_rate=1e-2))
    assert not result.diverged[0]
    assert evaluate(small_h, X, y)["accuracy"][0] > 0.9


def test_a_diverged_member_is_frozen_and_the_others_carry_on(moons):
    """Member 1 gets an absurd step size and blows up; member 0 trains exactly as it would alone."""
    X, y = moons
    config = TrainConfig(epochs=4, batch_size=20, learning_rate=1e-2)
    ensemble = StableResNet(2, 2, depth=30, step_size=[0.3, 1e30], seed=[4, 4])
    result = fit(ensemble, X, y, config)
    assert result.diverged.tolist() == [False, True]
    assert result.diverged_epoch[1] == 0
    initial = StableResNet(2, 2, depth=30, step_size=1e30, seed=4)
    # Frozen at the weights it had when its loss first went non-finite (here: the very first step).
    torch.testing.assert_close(ensemble.field.K1[1], initial.field.K1[0])
    alone = StableResNet(2, 2, depth=30, step_size=0.3, seed=4)
    fit(alone, X, y, config)
    torch.testing.assert_close(ensemble.field.K1[0], alone.field.K1[0])
    np.testing.assert_allclose(evaluate(ensemble, X, y)["accuracy"][0], evaluate(alone, X, y)["accuracy"][0])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda X, y: (X.clone().fill_(float("nan")), y), "NaN or infinite"),
        (lambda X, y: (torch.where(X > 0, float("inf"), X), y), "NaN or infinite"),
        (lambda X, y: (X, y[:-1]), "to match X"),
        (lambda X, y: (X[:, :1], y), "shape"),
        (lambda X, y: (X, y + 5), "class indices"),
    ],
)
def test_bad_training_data_is_refused(moons, mutate, message):
    X, y = mutate(*moons)
    with pytest.raises(ConfigError, match=message):
        fit(StableResNet(2, 2, depth=2), X, y, TrainConfig(epochs=1))


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"), (dict(learning_rate=-1.0), "learning_rate"),
     (dict(optimizer="lbfgs"), "unknown optimizer")],
)
def test_bad_training_config_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)
