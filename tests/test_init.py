"""Initialisers of the blocks' weights: their distributions, member by member draws, the paired design,
the model file and the errors; every surface that trains takes ``init``."""

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stableresnet import INITIALIZERS, StableResNet, StableResNetClassifier
from stableresnet.cli import app
from stableresnet.init import parse_init
from stableresnet.model import ConfigError, member_generator
from stableresnet.serialization import load_model, save_model

WIDTH, DEPTH, MEMBERS = 40, 5, 3
GLOROT = math.sqrt(6 / (WIDTH + WIDTH))

# spec -> (bound or None, variance, fourth moment) of one entry; a uniform U(-a, a) has variance a²/3 and
# E x⁴ = a⁴/5, a normal N(0, σ²) σ² and 3σ⁴.
EXPECTED = {
    "glorot": (GLOROT, GLOROT**2 / 3, GLOROT**4 / 5),
    "glorot:0.25": (GLOROT / 4, (GLOROT / 4) ** 2 / 3, (GLOROT / 4) ** 4 / 5),
    "uniform": (0.05, 0.05**2 / 3, 0.05**4 / 5),
    "uniform:0.3": (0.3, 0.3**2 / 3, 0.3**4 / 5),
    "normal": (None, 0.05**2, 3 * 0.05**4),
    "normal:0.2": (None, 0.2**2, 3 * 0.2**4),
    "depth-scaled": (GLOROT / math.sqrt(DEPTH), GLOROT**2 / 3 / DEPTH, GLOROT**4 / 5 / DEPTH**2),
}


@pytest.mark.parametrize("spec", EXPECTED)
def test_each_initialiser_draws_from_its_distribution(spec):
    """Bound, mean 0 and variance within 5 standard errors of the sample moments (24 000 entries each)."""
    bound, variance, fourth = EXPECTED[spec]
    field = StableResNet(WIDTH, 2, DEPTH, block="plain", seed=[0, 1, 2], init=spec).field
    for weight in (field.K1, field.K2):
        values = weight.detach().double().flatten()
        n = values.numel()
        if bound is not None:
            assert values.abs().max() <= bound * (1 + 1e-6)
            assert values.abs().max() > 0.99 * bound  # the bound is reached, not a smaller one
        assert abs(values.mean()) < 5 * math.sqrt(variance / n)
        assert abs(values.pow(2).mean() - variance) < 5 * math.sqrt((fourth - variance**2) / n)


def test_glorot_is_todays_draw_bit_for_bit():
    """The default draws (2u − 1)·√(6/(fan_in + fan_out)) from the member's K1 and K2 streams: earlier results stand."""
    model = StableResNet(3, 2, depth=4, width=6, block="plain", seed=[11, 12])
    for m, seed in enumerate((11, 12)):
        for name in ("K1", "K2"):
            draw = torch.rand((4, 6, 6), generator=member_generator(seed, name), dtype=torch.float64)
            expected = ((2 * draw - 1) * math.sqrt(6 / 12)).float()
            assert torch.equal(getattr(model.field, name)[m].detach(), expected)


@pytest.mark.parametrize("spec", ["uniform", "normal:0.1", "glorot:0.5", "depth-scaled"])
def test_a_member_draws_what_a_single_model_of_its_seed_draws(spec):
    ensemble = StableResNet(3, 2, depth=3, width=5, step_size=[0.1, 0.5, 1.0], seed=[7, 8, 9], init=spec)
    single = StableResNet(3, 2, depth=3, width=5, step_size=0.5, seed=8, init=spec)
    for (name, stacked), (_, alone) in zip(ensemble.named_parameters(), single.named_parameters()):
        assert torch.equal(stacked[1], alone[0]), name


@pytest.mark.parametrize("spec", ["uniform", "normal"])
def test_one_seed_gives_every_block_type_the_same_k1(spec):
    """The paired design holds for every initialiser: K1 comes from the same stream whatever the block."""
    k1 = {block: StableResNet(4, 2, depth=2, block=block, seed=5, init=spec).field.K1
          for block in ("plain", "shrinkage", "batchnorm")}
    assert torch.equal(k1["plain"], k1["shrinkage"]) and torch.equal(k1["plain"], k1["batchnorm"])


def test_only_the_blocks_follow_the_initialiser():
    """Lift and head stay Glorot: the same draws whichever init the blocks take."""
    glorot = StableResNet(3, 2, depth=2, width=6, seed=4)
    uniform = StableResNet(3, 2, depth=2, width=6, seed=4, init="uniform")
    assert torch.equal(glorot.lift.weight, uniform.lift.weight) and torch.equal(glorot.head.weight, uniform.head.weight)
    assert uniform.field.K1.abs().max() <= 0.05 < glorot.field.K1.abs().max()


def test_the_init_survives_saving_and_old_files_load_as_glorot(tmp_path):
    model = StableResNet(3, 2, depth=2, block="shrinkage", seed=1, init="uniform:0.1")
    save_model(tmp_path / "m.safetensors", model, classes=["a", "b"])
    loaded = load_model(tmp_path / "m.safetensors")[0]
    assert loaded.init == "uniform:0.1" and torch.equal(loaded.field.K1, model.field.K1)
    old = {k: v for k, v in model.config().items() if k != "init"}  # a file written before the option
    assert StableResNet(**old).init == "glorot"


@pytest.mark.parametrize("spec, message", [
    ("orthogonal", "unknown init 'orthogonal'"),
    ("uniform:0", "must be a finite number > 0"),
    ("uniform:-0.1", "must be a finite number > 0"),
    ("normal:inf", "must be a finite number > 0"),
    ("glorot:x", "must be a number"),
    (0.05, "must be a string"),
])
def test_a_bad_init_is_refused_with_its_value(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_init(spec)
    with pytest.raises(ConfigError, match=message):
        StableResNet(2, 2, depth=1, init=spec)


def test_the_registry_names_every_initialiser():
    assert sorted(INITIALIZERS) == ["depth-scaled", "glorot", "normal", "uniform"]
    for name, kind in INITIALIZERS.items():
        assert parse_init(name).scale == kind.default_scale > 0


def test_the_classifier_takes_init_and_refits_identically():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = StableResNetClassifier(depth=3, epochs=2, init="uniform", random_state=0).fit(X, y)
    assert clf.model_.init == "uniform" and clf.model_.field.K1.abs().max() < 1  # trained from U(±0.05)
    again = StableResNetClassifier(depth=3, epochs=2, init="uniform", random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))


runner = CliRunner()


@pytest.mark.parametrize("command", [
    ["train", "--dataset", "wine", "--save", "{out}/m.safetensors"],
    ["sweep", "--dataset", "wine", "--out", "{out}/sweep"],
    ["tune", "--dataset", "wine", "--out", "{out}/tune"],
    ["drift", "--data", "elec2", "--train-until", "12", "--out", "{out}/drift"],
    ["propagate", "--figure", "5", "--out", "{out}/propagation"],
    ["diagnose", "--dataset", "wine", "--out", "{out}/diagnostics"],
])
@pytest.mark.parametrize("init, message", [("bogus", "unknown init 'bogus'"), ("uniform:0", "> 0")])
def test_every_training_command_refuses_a_bad_init_in_one_line_writing_nothing(tmp_path, command, init, message):
    result = runner.invoke(app, [part.format(out=tmp_path) for part in command] + ["--init", init])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
