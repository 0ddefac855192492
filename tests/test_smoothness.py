"""The inter-layer smoothness penalty λ Σ‖K_{i+1} − K_i‖²: it smooths, keeps members independent, is validated."""

import pytest
import torch
from sklearn.datasets import make_moons

from stableresnet import ConfigError, StableResNet, TrainConfig, fit


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=120, noise=0.1, random_state=0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def test_penalty_makes_neighbouring_layers_closer(moons):
    roughness = {}
    for smoothness in (0.0, 1.0):
        model = StableResNet(2, 2, depth=6, width=4, block="plain", step_size=0.5, seed=0)
        fit(model, *moons, TrainConfig(epochs=10, batch_size=16, learning_rate=1e-2, smoothness=smoothness))
        roughness[smoothness] = model.field.smoothness().item()
    assert roughness[1.0] < 0.5 * roughness[0.0]


def test_penalised_members_train_as_they_would_alone(moons):
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=1e-2, smoothness=0.5)
    ensemble = StableResNet(2, 2, depth=4, width=4, step_size=[0.2, 0.5], seed=[3, 4])
    fit(ensemble, *moons, config)
    alone = StableResNet(2, 2, depth=4, width=4, step_size=0.5, seed=4)
    fit(alone, *moons, config)
    torch.testing.assert_close(ensemble.field.K2[1], alone.field.K2[0])


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_smoothness_is_refused(value):
    with pytest.raises(ConfigError, match="smoothness"):
        TrainConfig(smoothness=value)
