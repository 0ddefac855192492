"""The claims atlas: the Keras options of the engine, epoch snapshots, the atlas's files, resume and
refusal, the pair and decision rules on hand-made tables, the report section and the CLI's errors."""

import dataclasses
import inspect
import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F
from typer.testing import CliRunner

from stableresnet import StableResNet, TrainConfig, fit
from stableresnet.cli import app
from stableresnet.experiments import atlas as atlas_module
from stableresnet.experiments.atlas import (
    AXES, STATEMENTS, AtlasConfig, Setup, atlas_config, choose_default, pairs_to_add, paper_distance, parse_setup,
    run_atlas, unmet_statements,
)
from stableresnet.experiments.claims import evaluate_claims
from stableresnet.experiments.propagation import PropagationConfig, run_propagation_seeds
from stableresnet.experiments.reproduce import PropagationKind, load_specs
from stableresnet.experiments.specs import select
from stableresnet.model import ConfigError
from stableresnet.serialization import load_model, save_model
from stableresnet.stats import hold_rate
from stableresnet.experiments.report import build_report

runner = CliRunner()


# --- the engine's framework options ------------------------------------------------------------

def test_the_defaults_are_pytorchs_so_earlier_results_are_unchanged():
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    assert TrainConfig().adam_epsilon == adam.defaults["eps"] == 1e-8
    defaults = inspect.signature(F.batch_norm).parameters
    model = StableResNet(2, 2, depth=1, block="batchnorm")
    assert (model.field.momentum, model.field.eps) == (defaults["momentum"].default, defaults["eps"].default)


@pytest.mark.parametrize("eps", [1e-7, 1e-8])
def test_adam_epsilon_reaches_the_update(eps):
    """One full-batch Adam step from zero moments moves each weight by −lr · g / (|g| + ε), as m̂ = g, √v̂ = |g|."""
    X = torch.tensor([[0.5, -1.0], [1.5, 0.25], [-0.3, 0.8], [0.9, -0.6]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])
    model = StableResNet(2, 2, depth=1, seed=3).double()
    parameters = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in parameters]
    model.train()
    grads = torch.autograd.grad(F.cross_entropy(model(X), y), parameters)
    lr = 1e-2
    fit(model, X, y, TrainConfig(epochs=1, batch_size=4, learning_rate=lr, standardize=False, adam_epsilon=eps))
    other = 1e-8 if eps == 1e-7 else 1e-7
    for p, old, g in zip(parameters, before, grads):
        torch.testing.assert_close(p.detach() - old, -lr * g / (g.abs() + eps), rtol=1e-9, atol=1e-15)
    # The other ε gives a measurably different step (here |g| ~ 0.1: a relative change ~1e-6).
    steps = torch.cat([(p.detach() - old).flatten() for p, old in zip(parameters, before)])
    with_other = torch.cat([(-lr * g / (g.abs() + other)).flatten() for g in grads])
    assert not torch.allclose(steps, with_other, rtol=1e-9, atol=1e-15)


KERAS_NORM = {"batch_norm_momentum": 0.01, "batch_norm_eps": 1e-3}


@pytest.mark.parametrize("options, momentum, eps", [({}, 0.1, 1e-5), (KERAS_NORM, 0.01, 1e-3)])
def test_batch_norm_momentum_and_eps_by_hand(options, momentum, eps):
    """Training-mode BN: (z − mean)/sqrt(biased var + ε); running r ← (1 − m)·r + m·(mean, unbiased var)."""
    model = StableResNet(2, 2, depth=1, block="batchnorm", seed=1, **options).double()
    X = torch.tensor([[0.5, -1.0], [1.5, 0.25], [-0.3, 0.8], [0.9, -0.6], [0.1, 0.2]], dtype=torch.float64)
    field = model.field
    field.train()
    with torch.no_grad():
        out = field(X[None], field.layers()[0], 0)[0].numpy()
    x = X.numpy()
    K1, K2 = field.K1[0, 0].detach().numpy(), field.K2[0, 0].detach().numpy()

    def norm(z):
        return (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + eps)

    z1 = x @ K1.T
    np.testing.assert_allclose(out, norm(np.maximum(norm(z1), 0) @ K2.T), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(field.norm1_running_mean[0, 0].numpy(), momentum * z1.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(field.norm1_running_var[0, 0].numpy(),
                               (1 - momentum) * 1.0 + momentum * z1.var(axis=0, ddof=1), rtol=1e-12)


def test_keras_settings_survive_saving_and_old_files_load_with_pytorchs(tmp_path):
    model = StableResNet(2, 2, depth=2, block="batchnorm", batch_norm_momentum=0.01, batch_norm_eps=1e-3)
    save_model(tmp_path / "m.safetensors", model, classes=["a", "b"])
    loaded = load_model(tmp_path / "m.safetensors")[0]
    assert (loaded.field.momentum, loaded.field.eps) == (0.01, 1e-3)
    old = {k: v for k, v in model.config().items() if not k.startswith("batch_norm")}  # a file from before
    assert StableResNet(**old).field.eps == 1e-5
    with pytest.raises(ConfigError, match="batch_norm_momentum must be in"):
        StableResNet(2, 2, depth=1, block="batchnorm", batch_norm_momentum=0.99 + 1)
    with pytest.raises(ConfigError, match="adam_epsilon"):
        TrainConfig(adam_epsilon=0.0)


def test_an_epoch_snapshot_is_the_run_of_that_many_epochs():
    config = PropagationConfig(block="batchnorm", step_size=0.5, depth=3, n_samples=30, epochs=3, batch_size=8, seeds=2)
    long = run_propagation_seeds(config, snapshot_epochs=[1], probe=False)
    short = run_propagation_seeds(dataclasses.replace(config, epochs=1), probe=False)
    for taken, alone in zip(long.snapshots[1], short.members):
        np.testing.assert_array_equal(taken.trajectory, alone.trajectory)
        assert taken.test_accuracy == alone.test_accuracy
    assert np.isnan(long.members[0].probe_accuracy).all()
    with pytest.raises(ConfigError, match="snapshot epochs"):
        run_propagation_seeds(config, snapshot_epochs=[3])


# --- the atlas on a tiny config ------------------------------------------------------------------

def tiny_config(seeds=2) -> AtlasConfig:
    figures = {f"fig{n}": {"figure": n, "seeds": seeds, "epochs": 2, "depth": 2 if n % 2 == 0 else 3,
                           "n_samples": 24, "batch_size": 8} for n in range(2, 8)}
    figures["fig5"]["compare_depth"] = 2
    axes = {"data": {"circles-0.1": AXES["data"]["circles-0.1"]}, "inputs": {"standardised": {"standardize": True}},
            "optimiser": {"adam-1e-3": AXES["optimiser"]["adam-1e-3"]}, "framework": AXES["framework"]}
    return AtlasConfig(figures, axes=axes, epoch_factors=(1.0, 2.0))


def test_paper_distance_counts_the_stated_axes_off_the_paper():
    config = tiny_config()
    assert paper_distance(config, Setup()) == 1  # today's set-up is PyTorch; the paper used Keras
    assert paper_distance(config, parse_setup(config, "framework=keras")) == 0
    assert paper_distance(atlas_config("quick"), parse_setup(atlas_config("quick"), "data=moons")) == 2


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas")
    return out, run_atlas(tiny_config(), out)


def test_the_atlas_writes_its_table_heatmaps_and_choice(uninterrupted):
    out, result = uninterrupted
    table = pd.read_csv(out / "atlas.csv")
    assert list(dict.fromkeys(table["setup"])) == ["base", "epochs=x2", "framework=keras"] + result.pairs
    assert len(table) == len(table["setup"].unique()) * len(STATEMENTS)
    assert set(table["n"]) == {2} and ((table["k"] >= 0) & (table["k"] <= 2)).all()
    assert np.allclose(table["hold_rate"], table["k"] / table["n"])
    ids = [sid for sid, _ in STATEMENTS]
    assert ids == ["fig2.1", "fig2.2", "fig3.1", "fig4.1", "fig4.2", "fig5.1", "fig5.2", "fig6.1", "fig7.1"]
    for sid in ids:
        assert (out / f"heatmap-{sid.replace('.', '-')}.png").stat().st_size > 0
    choice = json.loads((out / "choice.json").read_text())
    assert choice["chosen"]["setup"] == result.choice.setup and choice["seconds"] > 0
    # The x2 set-up was trained once, its base read off the epoch-2 snapshot (and costs nothing more).
    base = json.loads((out / "setups" / "base" / "fig3.json").read_text())
    assert base["trained_in"] == "epochs=x2" and base["seconds"] == 0.0 and base["settings"]["epochs"] == 2
    keras = json.loads((out / "setups" / "framework=keras" / "fig7.json").read_text())["settings"]
    assert (keras["adam_epsilon"], keras["batch_norm_momentum"], keras["batch_norm_eps"]) == (1e-7, 0.01, 1e-3)


def test_a_killed_atlas_resumes_to_the_same_table(uninterrupted, tmp_path, monkeypatch):
    calls = []
    real = atlas_module._run_figure

    def dies_after_the_first_setup(*args, **kwargs):
        if len(calls) == 6:
            raise KeyboardInterrupt
        calls.append(args[1].key)
        return real(*args, **kwargs)

    monkeypatch.setattr(atlas_module, "_run_figure", dies_after_the_first_setup)
    with pytest.raises(KeyboardInterrupt):
        run_atlas(tiny_config(), tmp_path, workers=1)
    assert not (tmp_path / "atlas.csv").exists()
    monkeypatch.setattr(atlas_module, "_run_figure", lambda *a, **k: calls.append(a[1].key) or real(*a, **k))
    resumed = run_atlas(tiny_config(), tmp_path, workers=1)
    assert calls.count(calls[0]) == 6  # the finished set-up was not trained again
    pd.testing.assert_frame_equal(resumed.table.drop(columns="seconds"),
                                  uninterrupted[1].table.drop(columns="seconds"))


def test_two_worker_processes_give_the_same_table(uninterrupted, tmp_path):
    """Every (set-up, figure) unit is seeded: where it trains does not change its numbers."""
    parallel = run_atlas(tiny_config(), tmp_path, workers=2)
    pd.testing.assert_frame_equal(parallel.table.drop(columns="seconds"),
                                  uninterrupted[1].table.drop(columns="seconds"))


def test_compile_reaches_every_picture_the_atlas_trains(uninterrupted, tmp_path, monkeypatch):
    """``compile`` trains each figure (and Figure 5's twin depth) through ``torch.compile``; here a
    recorder returning the eager function, so the numbers are those of the eager atlas."""
    import torch

    calls = []
    monkeypatch.setattr(torch, "compile", lambda function, **options: calls.append(options) or function)
    result = run_atlas(tiny_config(), tmp_path, setups=[], compile=True)
    assert len(calls) == 7  # figures 2-7 and fig5 at its compare depth, base set-up only
    units = [json.loads(path.read_text()) for path in (tmp_path / "setups" / "base").glob("*.json")]
    assert len(units) == 6 and all(unit["compiled"] for unit in units)
    assert not json.loads((uninterrupted[0] / "setups" / "base" / "fig2.json").read_text())["compiled"]
    base = uninterrupted[1].table.query("setup == 'base'").reset_index(drop=True)
    pd.testing.assert_frame_equal(result.table.drop(columns="seconds"), base.drop(columns="seconds"))


def test_a_folder_holding_another_config_is_refused(uninterrupted):
    out, _ = uninterrupted
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ConfigError, match="holds an atlas with another config"):
        run_atlas(tiny_config(seeds=3), out)
    assert sorted(p.name for p in out.rglob("*")) == before


def test_the_report_shows_the_atlas_next_to_its_choice(uninterrupted):
    out, result = uninterrupted
    record = {"figure": "atlas", "title": "Claims atlas", "kind": "atlas", "settings": {}, "seconds": 1.0,
              "files": [p.name for p in result.files], "table": "atlas.csv",
              "atlas": json.loads((out / "choice.json").read_text())}
    (out / "atlas").mkdir(exist_ok=True)
    page = build_report(out, [record], evaluate_claims([], out), "quick", "cpu").read_text()
    assert f"<b>{result.choice.setup}</b>" in page
    for row in result.unmet.itertuples():
        assert f"at best {row.k}/{row.n} seeds" in page


# --- the rules, on hand-made tables --------------------------------------------------------------

def hand_table(setups: dict, nonfinite: dict | None = None, distance: dict | None = None) -> pd.DataFrame:
    """{setup: (changes, axis, [k per statement])}, N = 5 seeds, three statements s1-s3; ``nonfinite``:
    {setup: networks with non-finite features}, of 15; ``distance``: {setup: paper distance}, else 1."""
    rows = []
    for setup, (changes, axis, held) in setups.items():
        for index, k in enumerate(held):
            rate = hold_rate([True] * k + [False] * (5 - k))
            rows.append({"setup": setup, "axis": axis, "changes": changes,
                         "paper_distance": (distance or {}).get(setup, 1), "statement": f"s{index + 1}",
                         "paper": f"statement {index + 1}", "k": k, "n": 5, "hold_rate": k / 5,
                         "verdict": rate.verdict, "nonfinite": (nonfinite or {}).get(setup, 0), "networks": 15})
    return pd.DataFrame(rows)


def test_the_most_statements_holding_wins_even_far_from_the_paper_unless_its_networks_overflow():
    table = hand_table({"base": (0, "today", [5, 0, 0]), "data=moons": (1, "data", [5, 5, 0]),
                        "data=moons+framework=keras": (2, "pair", [5, 5, 5])})
    assert (choose_default(table).setup, choose_default(table).holds) == ("data=moons+framework=keras", 3)
    overflowing = hand_table({"base": (0, "today", [5, 0, 0]), "data=moons": (1, "data", [5, 5, 0]),
                              "data=moons+framework=keras": (2, "pair", [5, 5, 5])},
                             nonfinite={"data=moons+framework=keras": 4})
    choice = choose_default(overflowing)
    assert (choice.setup, choice.holds) == ("data=moons", 2)
    assert "left out, some networks overflow: data=moons+framework=keras" in choice.reason
    everywhere = hand_table({"base": (0, "today", [5, 0, 0]), "data=moons": (1, "data", [5, 5, 0])},
                            nonfinite={"base": 1, "data=moons": 4})
    choice = choose_default(everywhere)  # nothing is sound: all compete, with a caution
    assert choice.setup == "data=moons" and "4 of 15 of its networks overflow" in choice.reason


def test_ties_go_to_the_set_up_closest_to_the_paper_then_to_more_seeds():
    tied = hand_table({"base": (0, "today", [5, 5, 0]), "data=moons": (1, "data", [5, 5, 4])},
                      distance={"data=moons": 2})
    choice = choose_default(tied)
    assert choice.setup == "base" and "closest to what the paper states" in choice.reason
    # Keras is what the paper used: one axis moved from today, but on the paper's level.
    keras = hand_table({"base": (0, "today", [5, 5, 0]), "framework=keras": (1, "framework", [5, 5, 0])},
                       distance={"framework=keras": 0})
    assert choose_default(keras).setup == "framework=keras"
    singles = hand_table({"base": (0, "today", [0, 0, 0]), "data=moons": (1, "data", [5, 1, 0]),
                          "framework=keras": (1, "framework", [5, 3, 0]),
                          "data=moons+framework=keras": (2, "pair", [5, 4, 4])})
    choice = choose_default(singles)
    assert choice.setup == "framework=keras" and "summed hold-rate" in choice.reason


def test_pairs_combine_the_single_changes_that_raise_the_most_statements():
    table = hand_table({"base": (0, "today", [1, 1, 1]), "data=moons": (1, "data", [3, 2, 1]),
                        "data=spirals": (1, "data", [4, 4, 4]), "inputs=raw": (1, "inputs", [0, 0, 0]),
                        "optimiser=sgd-1e-1": (1, "optimiser", [2, 1, 1]),
                        "framework=keras": (1, "framework", [2, 2, 1])})
    # spirals raises 3, then moons and keras 2 each (moons sums more, but shares spirals' axis), sgd 1.
    pairs, reason = pairs_to_add(table, 2)
    assert pairs == ["data=spirals+framework=keras"] and "data=spirals raises 3" in reason
    pairs, _ = pairs_to_add(table, 3)
    assert pairs == ["data=spirals+framework=keras", "data=spirals+optimiser=sgd-1e-1",
                     "optimiser=sgd-1e-1+framework=keras"]
    nothing = hand_table({"base": (0, "today", [3, 3, 3]), "data=moons": (1, "data", [1, 1, 1])})
    assert pairs_to_add(nothing, 2)[0] == []
    broken = hand_table({"base": (0, "today", [1, 1, 1]), "data=spirals": (1, "data", [4, 4, 4]),
                         "optimiser=sgd-1e-1": (1, "optimiser", [2, 1, 1]),
                         "framework=keras": (1, "framework", [2, 2, 1])}, nonfinite={"data=spirals": 3})
    assert pairs_to_add(broken, 2)[0] == ["optimiser=sgd-1e-1+framework=keras"]  # spirals overflows: left out


def test_statements_that_hold_in_most_seeds_nowhere_are_listed_with_the_best_count():
    table = hand_table({"base": (0, "today", [3, 2, 0]), "data=moons": (1, "data", [1, 1, 2])})
    unmet = unmet_statements(table)
    assert unmet["statement"].tolist() == ["s2", "s3"]  # s1 holds in 3 of 5 seeds at base
    assert unmet[["best_setup", "k", "n"]].values.tolist() == [["base", 2, 5], ["data=moons", 2, 5]]


# --- reproduce and the command line ---------------------------------------------------------------

def test_reproduce_runs_the_atlas_only_when_named():
    experiments = load_specs("quick")
    assert "atlas" not in [e.figure for e in select(experiments, None)]
    assert [e.settings["scale"] for e in select(experiments, "atlas")] == ["quick"]
    assert [e.settings["scale"] for e in select(load_specs("paper"), "atlas")] == ["paper"]


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds must be an integer ≥ 1"),
    (["--setups", "data=mars"], "unknown set-up key 'data=mars'"),
    (["--setups", "data=moons+data=spirals"], "moves an axis twice"),
    (["--scale", "huge"], "unknown scale 'huge'"),
    (["--setups", "base", "--workers", "0"], "--workers must be an integer ≥ 1; got 0"),
    (["--setups", "reader=head-val-1"], "unknown set-up key 'reader=head-val-1'"),
    (["--setups", "bn-placement=after-sum"], "unknown set-up key 'bn-placement=after-sum'"),
    (["--setups", "init=orthogonal"], "unknown set-up key 'init=orthogonal'"),
])
def test_cli_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, message):
    out = tmp_path / "atlas"
    result = runner.invoke(app, ["atlas", *args, "--out", str(out)])
    text = result.stdout + (result.stderr or "")
    assert result.exit_code == 2, text
    assert message in " ".join(text.split()) and len(text.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_refuses_a_folder_holding_another_config(tmp_path):
    out = tmp_path / "atlas"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"scale": "paper", "pair_from": 3}))
    result = runner.invoke(app, ["atlas", "--scale", "quick", "--setups", "base", "--out", str(out)])
    text = result.stdout + (result.stderr or "")
    assert result.exit_code == 2 and "holds an atlas with another config" in " ".join(text.split())
    assert len(text.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["config.json"]


# --- the chosen set-up in reproduce --------------------------------------------------------------

def test_a_setup_key_moves_a_pictures_settings_to_that_atlas_set_up():
    fig3 = {"figure": 3, "seeds": 2, "epochs": 100}
    keras = PropagationKind.config({**fig3, "setup": "framework=keras"})
    assert (keras.adam_epsilon, keras.batch_norm_momentum, keras.batch_norm_eps) == (1e-7, 0.01, 1e-3)
    assert dataclasses.replace(keras, adam_epsilon=1e-8, batch_norm_momentum=0.1, batch_norm_eps=1e-5) == \
        PropagationKind.config(fig3)
    moved = PropagationKind.config({**fig3, "setup": "data=moons+optimiser=sgd-1e-2+epochs=x0.1"})
    assert (moved.data, moved.optimizer, moved.learning_rate, moved.epochs) == ("moons", "sgd", 1e-2, 10)
    assert PropagationKind.config({**fig3, "setup": "base"}) == PropagationKind.config(fig3)
    with pytest.raises(ConfigError, match="unknown set-up key 'framework=jax'"):
        PropagationKind.config({**fig3, "setup": "framework=jax"})


def test_the_atlas_varies_around_the_settings_before_the_chosen_set_up():
    for scale in ("quick", "paper"):
        specs = {e.figure: e.settings for e in load_specs(scale)}
        for figure, settings in atlas_config(scale).figures.items():
            assert "setup" not in settings
            assert settings == {k: v for k, v in specs[figure].items() if k not in ("frames", "setup")}


def test_the_paper_pictures_use_the_set_up_the_rule_picks_from_the_shipped_atlas():
    """Part 4 of issue 14: the paper-scale picture default is `choose_default` of the paper-scale
    atlas table (shipped in the package), not a hand choice; the quick scale keeps today's set-up."""
    table, choices = atlas_module.shipped_atlas()
    assert set(table["n"]) == {10} and table["statement"].nunique() == len(STATEMENTS)
    assert set(parse_setup(atlas_config("paper"), key).key for key in table["setup"].unique()) == \
        set(table["setup"].unique())  # every row is a set-up of today's paper atlas
    paper = {e.figure: e.settings for e in load_specs("paper")}
    quick = {e.figure: e.settings for e in load_specs("quick")}
    for figure in atlas_module.FIGURES:
        assert paper[figure]["setup"] == choices[figure].setup
        assert "setup" not in quick[figure]


def test_the_report_shows_the_shipped_atlas_once_beside_the_pictures_in_its_set_up(tmp_path):
    table, choices = atlas_module.shipped_atlas()
    choice = choices["fig2"]
    records = [{"figure": figure, "title": figure, "kind": "propagation", "seconds": 1.0, "files": [],
                "settings": {"figure": int(figure[3:]), "setup": choice.setup}} for figure in ("fig2", "fig3")]
    page = build_report(tmp_path, records, evaluate_claims([], tmp_path), "paper", "cpu").read_text()
    assert page.count(f"claims-atlas set-up <b>{choice.setup}</b>") == 2
    assert page.count("The whole atlas (seeds where each statement holds)") == 1
    first = table.iloc[0]
    assert f"{first['k']}/{first['n']}" in page


# --- initialisation, readers and how networks start ----------------------------------------------

def init_reader_config() -> AtlasConfig:
    config = tiny_config()
    axes = {**config.axes, "init": {level: AXES["init"][level] for level in ("glorot", "uniform-0.05", "keras-family")},
            "reader": {level: AXES["reader"][level] for level in ("head-test-1", "probe-train-0.995")}}
    return dataclasses.replace(config, axes=axes, epoch_factors=(1.0,))


def test_an_init_per_block_family_is_resolved_figure_by_figure():
    config = init_reader_config()
    keras = parse_setup(config, "init=keras-family")
    inits = {figure: atlas_module.figure_settings(config, keras, figure)["init"] for figure in atlas_module.FIGURES}
    assert inits == {"fig2": "glorot", "fig3": "glorot", "fig4": "uniform:0.05", "fig5": "uniform:0.05",
                     "fig6": "glorot", "fig7": "glorot"}
    assert parse_setup(config, "init=glorot") == Setup()  # today's level
    placed = parse_setup(atlas_config("quick"), "bn-placement=pre-activation")
    blocks = {figure: PropagationKind.config(atlas_module.figure_settings(atlas_config("quick"), placed, figure)).block
              for figure in atlas_module.FIGURES}
    assert blocks == {"fig2": "plain", "fig3": "plain", "fig4": "shrinkage", "fig5": "shrinkage",
                      "fig6": "batchnorm-preact", "fig7": "batchnorm-preact"}
    assert parse_setup(atlas_config("quick"), "bn-placement=branch-end") == Setup()
    assert [s.key for s in atlas_module.one_axis_setups(config)] == [
        "base", "framework=keras", "init=uniform-0.05", "init=keras-family", "reader=probe-train-0.995"]


@pytest.fixture(scope="module")
def init_atlas(tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas-init")
    return out, run_atlas(init_reader_config(), out, setups=["init=uniform-0.05", "reader=probe-train-0.995"])


def test_a_reader_costs_no_training_and_reads_the_probe_of_the_same_run(init_atlas):
    out, result = init_atlas
    read = json.loads((out / "setups" / "reader=probe-train-0.995" / "fig3.json").read_text())
    base = json.loads((out / "setups" / "base" / "fig3.json").read_text())
    assert read["trained_in"] == "base" and read["seconds"] == 0.0 and base["seconds"] > 0
    assert [m["reader"] for m in read["members"]] == ["probe-train-0.995"] * 2
    assert [m["test_accuracy"] for m in read["members"]] == [m["test_accuracy"] for m in base["members"]]
    assert set(result.table["setup"]) == {"base", "init=uniform-0.05", "reader=probe-train-0.995"}


def test_the_table_marks_set_ups_whose_networks_start_collapsed(init_atlas):
    """At width 2 Glorot's shrinkage blocks contract hard even at depth 2-3; U(±0.05) leaves them near 1."""
    out, result = init_atlas
    records = {key: [json.loads((out / "setups" / key / f"{f}.json").read_text()) for f in atlas_module.FIGURES]
               for key in ("base", "init=uniform-0.05")}
    for key, figures in records.items():
        state = atlas_module.initial_state(figures)
        row = result.table[result.table["setup"] == key].iloc[0]
        assert (row["collapsed"], row["exploded"], row["start"] if row["start"] == row["start"] else "") == \
            (state["collapsed"], state["exploded"], state["start"])
        for record in figures:
            assert all(0 < m["init_scale_ratio"] for m in record["members"])
    uniform = {r["figure"]: r for r in records["init=uniform-0.05"]}
    assert all(0.5 < m["init_scale_ratio"] <= 1.0 for m in uniform["fig5"]["members"])


def test_initial_state_counts_figures_by_their_median_network():
    def figure(name, ratios):
        return {"figure": name, "members": [{"init_scale_ratio": r} for r in ratios]}

    state = atlas_module.initial_state([figure("fig2", [2e3, 5e3, 1.0]), figure("fig4", [1e-9, 1e-8, 0.5]),
                                        figure("fig5", [1e-11, 1e-12, 1e-10]), figure("fig6", [1.0, float("inf"), 1e4]),
                                        figure("fig7", [None, None])])
    assert (state["collapsed"], state["exploded"]) == (2, 2)
    assert state["start"] == ("fig2 exploded (2e+03); fig4 collapsed (1e-08); fig5 collapsed (1e-11); "
                              "fig6 exploded (1e+04)")


def test_a_set_up_whose_networks_start_collapsed_is_not_chosen():
    table = hand_table({"base": (0, "today", [5, 5, 0]), "init=uniform-0.05": (1, "init", [5, 0, 0]),
                        "inputs=raw": (1, "inputs", [5, 5, 5])})
    table["collapsed"] = table["setup"].map({"base": 2, "init=uniform-0.05": 0, "inputs=raw": 2})
    table["exploded"] = 0
    choice = choose_default(table)
    assert choice.setup == "init=uniform-0.05"
    assert "networks start collapsed or exploded: base, inputs=raw" in choice.reason
    table["collapsed"] = 1  # nothing is sound: those that do not overflow compete, with a caution
    choice = choose_default(table)
    assert choice.setup == "inputs=raw" and "no set-up is sound" in choice.reason


def test_block_families_take_their_own_set_ups_only_when_that_makes_more_statements_hold():
    """Statements s1-s3 of fig2 (plain) and fig4 (shrinkage) here; each family is judged on its own figures."""
    def rows(setup, changes, axis, held, starts):
        table = []
        for figure, ks in held.items():
            for index, k in enumerate(ks):
                rate = hold_rate([True] * k + [False] * (5 - k))
                table.append({"setup": setup, "axis": axis, "changes": changes, "paper_distance": 1,
                              "statement": f"{figure}.{index + 1}", "figure": figure, "paper": "", "k": k, "n": 5,
                              "hold_rate": k / 5, "verdict": rate.verdict, "nonfinite": 0, "networks": 30,
                              "collapsed": sum(s == "collapsed" for s in starts.values()), "exploded": 0,
                              "figure_nonfinite": 0, "figure_start": starts[figure]})
        return table

    fig = {"fig2": "ok", "fig4": "ok", "fig6": "ok"}
    table = pd.DataFrame(
        rows("base", 0, "today", {"fig2": [5, 5], "fig4": [0, 0], "fig6": [5]}, {**fig, "fig4": "collapsed"})
        + rows("init=uniform-0.05", 1, "init", {"fig2": [0, 0], "fig4": [5, 5], "fig6": [0]}, fig))
    choices = atlas_module.choose_by_family(table)
    # The single choice must be sound (uniform: 2 hold); per family, plain and batch norm keep base
    # (whose own figures start fine) and shrinkage takes uniform: 5 hold in all.
    assert choose_default(table).setup == "init=uniform-0.05"
    assert {figure: choices[figure].setup for figure in ("fig2", "fig4", "fig6")} == \
        {"fig2": "base", "fig4": "init=uniform-0.05", "fig6": "base"}
    same = pd.DataFrame(rows("base", 0, "today", {"fig2": [5, 5], "fig4": [5, 5], "fig6": [5]}, fig))
    assert {choice.setup for choice in atlas_module.choose_by_family(same).values()} == {"base"}


def test_a_tie_on_every_rule_is_said_to_be_broken_by_atlas_order():
    table = hand_table({"base": (0, "today", [0, 0, 0, 0]), "init=uniform-0.05": (1, "init", [5, 5, 5, 1]),
                        "init=glorot-x0.1": (1, "init", [5, 5, 5, 2]), "init=depth-scaled": (1, "init", [5, 5, 5, 2])})
    choice = choose_default(table)
    assert choice.setup == "init=glorot-x0.1"
    assert "chosen by the largest summed hold-rate (3.40)" in choice.reason
    assert "equal to init=depth-scaled on every rule, chosen by atlas order" in choice.reason


def test_a_folder_grows_new_axes_and_keeps_its_finished_set_ups(tmp_path, monkeypatch):
    """Axes added since a folder was written leave its set-ups' meaning alone: it resumes, reusing them."""
    small = tiny_config()
    run_atlas(small, tmp_path, setups=[])
    calls = []
    real = atlas_module._run_figure
    monkeypatch.setattr(atlas_module, "_run_figure", lambda *a, **k: calls.append(a[1].key) or real(*a, **k))
    grown = dataclasses.replace(small, axes={**small.axes, "init": {"glorot": AXES["init"]["glorot"],
                                                                   "uniform-0.05": AXES["init"]["uniform-0.05"]}})
    result = run_atlas(grown, tmp_path, setups=["init=uniform-0.05"])
    assert set(calls) == {"init=uniform-0.05"}  # base was not trained again
    assert set(result.table["setup"]) == {"base", "init=uniform-0.05"}
    changed = dataclasses.replace(small, axes={**small.axes, "framework": {"keras": {"adam_epsilon": 1e-6}}})
    with pytest.raises(ConfigError, match="holds an atlas with another config"):
        run_atlas(changed, tmp_path, setups=[])  # a level that means something else is refused
