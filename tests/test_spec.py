"""The specs: every surface's hyper-parameters are the specs', checked once, and build_network builds
the network the two-step path (final network, then its coarsest level) built."""

import inspect

import pytest
import torch

from stableresnet import StableResNet, StableResNetClassifier
from stableresnet.errors import ConfigError
from stableresnet.multilevel import coarsest_model
from stableresnet.spec import (
    NETWORK_SETTINGS, TRAINING_SETTINGS, NetworkSpec, TrainingSpec, build_network, check_step_size_grid, defaults,
    help_text,
)
from stableresnet.tuning import StableResNetClassifierCV


def parameters(estimator) -> dict:
    return {name: p.default for name, p in inspect.signature(estimator).parameters.items()}


def test_the_estimators_parameters_and_defaults_are_the_specs():
    settings = set(NETWORK_SETTINGS) | set(TRAINING_SETTINGS)
    single = parameters(StableResNetClassifier)
    assert set(single) == settings | {"random_state", "device"}
    assert {name: single[name] for name in settings} == defaults()
    search = parameters(StableResNetClassifierCV)
    assert set(search) == (settings - {"block", "step_size"}) | {"blocks", "step_sizes", "cv", "rule", "random_state",
                                                                 "device"}
    assert {name: search[name] for name in settings - {"block", "step_size"}} == defaults(
        [name for name in settings if name not in ("block", "step_size")])
    assert StableResNetClassifier(depth=3).specs() == (NetworkSpec(depth=3), TrainingSpec())
    assert all(help_text(name) for name in settings)


@pytest.mark.parametrize("levels, block, policy", [(1, "plain", "fixed"), (2, "batchnorm", "learnable"),
                                                   (3, "shrinkage", "adaptive")])
def test_build_network_is_the_coarsest_level_of_the_final_network_to_the_bit(levels, block, policy):
    spec = NetworkSpec(depth=8, width=6, block=block, step_size=0.3, step_size_policy=policy, levels=levels,
                       init="uniform:0.05")
    built = build_network(spec, 4, 3, [5, 6], step_sizes=[0.1, 0.7])
    final = StableResNet(4, 3, 8, 6, block, [0.1, 0.7], seed=[5, 6], step_size_policy=policy, init="uniform:0.05")
    reference = coarsest_model(final, levels)
    assert built.config() == reference.config() and built.depth == 8 // 2 ** (levels - 1)
    for (name, a), (_, b) in zip(built.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("settings, message", [
    ({"step_size": 0.0}, "step_size h must be a finite number > 0; got 0.0"),
    ({"block": "dense"}, "unknown block 'dense'"),
    ({"depth": 6, "levels": 3}, "depth 6 cannot be built in 3 levels"),
    ({"init": "orthogonal"}, "orthogonal"),
    ({"step_size_policy": "learnable", "max_step_size": 0.05}, "max_step_size must exceed step_size"),
    ({"width": 0}, "width must be an integer ≥ 1; got 0"),
])
def test_a_bad_network_setting_is_refused_by_the_spec_with_the_models_message(settings, message):
    with pytest.raises(ConfigError, match=message):
        NetworkSpec(**settings)


def test_a_bad_training_setting_and_a_bad_grid_are_refused():
    with pytest.raises(ConfigError, match="learning_rate must be a finite number > 0"):
        TrainingSpec(learning_rate=-1.0)
    with pytest.raises(ConfigError, match="unknown optimizer 'lbfgs'"):
        TrainingSpec(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="the list of step sizes h is empty"):
        check_step_size_grid(())
    with pytest.raises(ConfigError, match=r"step size h must be a finite number > 0; got nan"):
        check_step_size_grid((0.1, float("nan")))
    assert TrainingSpec(epochs=3).train_config(compile=True).compile


def test_every_command_line_option_of_a_setting_says_what_the_spec_says():
    """The command line derives its options of spec settings from the specs: help text (then a
    bracketed note on where its default comes from) and, unless a preset rules, the default."""
    import typer.main

    from stableresnet.cli import app

    settings = set(NETWORK_SETTINGS) | set(TRAINING_SETTINGS)
    seen = 0
    for name, command in typer.main.get_command(app).commands.items():
        for param in command.params:
            if param.name in settings and not param.hidden:
                assert param.help.startswith(help_text(param.name).rstrip(".")), (name, param.name, param.help)
                seen += 1
    assert seen >= 40  # train, tune, sweep, diagnose, propagate and drift expose most settings
