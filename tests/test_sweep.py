"""The sweep engine: ensemble = single model, resume after a kill, plots from the table, bad input."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from stableresnet import StableResNet, TrainConfig, evaluate, fit
from stableresnet.train import predict_logits
from stableresnet.cli import app
from stableresnet.data import load_dataset
from stableresnet.experiments.sweep import (
    Group, SweepConfig, TrialData, parse_step_sizes, run_group, run_sweep, trial_seed,
)
from stableresnet.model import ConfigError
from stableresnet.viz.sweep import plot_sweep, summarize

TINY = dict(trials=2, depth=3, epochs=3, step_sizes=(0.1, 1.0))


@pytest.mark.parametrize("block", ["plain", "shrinkage", "batchnorm"])
def test_a_member_trained_in_an_ensemble_equals_the_same_network_trained_alone(block):
    config = SweepConfig.from_preset("wine", blocks=(block,), trials=2, depth=4, epochs=4, step_sizes=(0.1, 0.5, 1.0))
    members = ((0, 0.1), (1, 0.5), (0, 1.0), (1, 1.0))
    group = Group(block, members)
    data = TrialData(config)
    table = run_group(config, group, data)

    trial, h = members[1]
    seed = trial_seed(config.seed, trial)
    wine = load_dataset("wine", seed=seed)  # the trial's own split, through the public loader
    alone = StableResNet(13, 3, depth=4, width=13, block=block, step_size=h, seed=seed)
    fit(alone, torch.tensor(wine.X_train, dtype=torch.float32), torch.tensor(wine.y_train),
        TrainConfig(epochs=4, batch_size=config.batch_size))
    accuracy = evaluate(alone, torch.tensor(wine.X_test, dtype=torch.float32), torch.tensor(wine.y_test))["accuracy"][0]

    ensemble = StableResNet(13, 3, depth=4, width=13, block=block, step_size=[h for _, h in members],
                            seed=[trial_seed(config.seed, t) for t, _ in members])
    fit(ensemble, data.X, data.y, TrainConfig(epochs=4, batch_size=config.batch_size), train_index=data.rows(group, "train"))
    for (name, stacked), (_, single) in zip(ensemble.state_dict().items(), alone.state_dict().items()):
        member_axis = 1 if "running" in name else 0
        torch.testing.assert_close(stacked.select(member_axis, 1), single.select(member_axis, 0),
                                   rtol=1e-4, atol=1e-5, msg=name)
    X_test = torch.tensor(wine.X_test, dtype=torch.float32)
    torch.testing.assert_close(predict_logits(ensemble, X_test)[1], predict_logits(alone, X_test)[0],
                               rtol=1e-4, atol=1e-4)
    assert table.loc[1, "test_accuracy"] == pytest.approx(accuracy)


def test_paired_design_shares_seed_and_split_across_blocks_and_step_sizes():
    config = SweepConfig.from_preset("wine", **TINY)
    table = run_group(config, Group("plain", ((0, 0.1), (0, 1.0), (1, 0.1))), TrialData(config))
    assert table.loc[0, "seed"] == table.loc[1, "seed"] != table.loc[2, "seed"]
    data = TrialData(config)
    assert not torch.equal(data.train_rows[0], data.train_rows[1]) or data.X.shape[0] == 178
    assert data.X.shape[0] == 2 * 178  # one copy per distinct split, never one per member


def sweep_command(out, extra=()):
    return [sys.executable, "-m", "stableresnet.cli", "sweep", "--dataset", "wine", "--trials", "2",
            "--step-sizes", "0.1,0.5,1", "--depth", "3", "--epochs", "3", "--members-per-group", "3",
            "--out", str(out), *extra]


def test_a_killed_sweep_resumes_and_ends_with_the_uninterrupted_table(tmp_path):
    whole = tmp_path / "whole"
    subprocess.run(sweep_command(whole), check=True, capture_output=True)
    resumed = tmp_path / "resumed"
    process = subprocess.Popen(sweep_command(resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((resumed / "groups").glob("*.csv"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in (resumed / "groups").glob("*.csv"))
    assert 2 <= len(finished) < 6, "the kill should land mid-sweep"
    assert not (resumed / "results.csv").exists()
    stamps = {name: os.stat(resumed / "groups" / name).st_mtime_ns for name in finished}
    subprocess.run(sweep_command(resumed), check=True, capture_output=True)
    # Nothing finished was recomputed ...
    assert all(os.stat(resumed / "groups" / name).st_mtime_ns == stamp for name, stamp in stamps.items())
    # ... and the table equals the uninterrupted run's, wall-clock seconds aside.
    a = pd.read_csv(whole / "results.csv").drop(columns="seconds")
    b = pd.read_csv(resumed / "results.csv").drop(columns="seconds")
    assert len(a) == 18
    pd.testing.assert_frame_equal(a, b)
    assert not list(resumed.rglob(".*.partial-*"))


def test_plot_and_summary_from_a_small_table(tmp_path):
    table = pd.DataFrame({
        "dataset": "toy", "block": ["plain"] * 4 + ["shrinkage"] * 4,
        "h": [0.1, 0.1, 1.0, 1.0] * 2, "test_accuracy": [0.9, 1.0, 0.5, 0.7, 0.8, 0.8, 0.6, 0.6],
        "diverged": [False, False, True, False] + [False] * 4,
    })
    summary = summarize(table).set_index(["block", "h"])
    assert summary.loc[("plain", 0.1), "mean"] == pytest.approx(0.95)
    assert summary.loc[("plain", 1.0), "std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary.loc[("plain", 1.0), "diverged"] == 1
    assert summary.loc[("shrinkage", 1.0), "max"] == pytest.approx(0.6)
    figure = plot_sweep(table)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["residual block", "shrinkage block"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.95, 0.6])
    directory = tmp_path / "sweep"
    directory.mkdir()
    table.to_csv(directory / "results.csv", index=False)
    result = CliRunner().invoke(app, ["plot-sweep", str(directory)])
    assert result.exit_code == 0, result.output
    assert (directory / "sweep.png").stat().st_size > 0 and (directory / "sweep.svg").exists()
    assert len(pd.read_csv(directory / "summary.csv")) == 4


def test_step_size_grids_are_parsed():
    assert parse_step_sizes("0.1:1.0:0.1") == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert parse_step_sizes("0.5,1") == (0.5, 1.0)
    with pytest.raises(ConfigError, match="cannot read step sizes"):
        parse_step_sizes("0.1:x:0.1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--step-sizes", ","], "the list of step sizes h is empty"),
        (["--step-sizes", "0,1"], "step size h must be a finite number > 0"),
        (["--trials", "0"], "trials must be an integer ≥ 1"),
        (["--blocks", "plain,dense"], "unknown block 'dense'"),
        (["--dataset", "iris"], "no paper preset for 'iris'"),
    ],
)
def test_bad_sweep_input_is_refused(tmp_path, args, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", "--dataset", "wine", "--out", str(out), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_a_folder_holding_another_config_is_refused(tmp_path):
    run_sweep(SweepConfig.from_preset("wine", **{**TINY, "trials": 1}), tmp_path)
    with pytest.raises(ConfigError, match="another config .*trials: 1 there, 2 here"):
        run_sweep(SweepConfig.from_preset("wine", **TINY), tmp_path)


def test_an_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root); permissions cannot be tested")
        with pytest.raises(ConfigError, match="cannot write results"):
            run_sweep(SweepConfig.from_preset("wine", **TINY), locked / "out")
    finally:
        locked.chmod(0o700)
    file_in_the_way = tmp_path / "file"
    file_in_the_way.write_text("")
    with pytest.raises(ConfigError, match="cannot write results"):
        run_sweep(SweepConfig.from_preset("wine", **TINY), file_in_the_way / "out")


def test_robustness_adds_stability_and_attack_columns_per_member():
    config = SweepConfig.from_preset("wine", **{**TINY, "trials": 2, "robustness": True})
    assert "robustness" in config.to_json()
    table = run_group(config, Group("shrinkage", ((0, 0.1), (1, 1.0))), TrialData(config))
    for column in ("stability_constant", "max_amplification", "noise_accuracy", "fgsm_accuracy", "pgd_accuracy"):
        assert table[column].notna().all(), column
    assert (table["stability_constant"] >= 1 - 1e-9).all()  # layer 0's ratio is exactly 1
    accuracies = table[["noise_accuracy", "fgsm_accuracy", "pgd_accuracy"]].to_numpy()
    assert ((accuracies >= 0) & (accuracies <= 1)).all()
    # PGD (10 steps) is at least as strong as FGSM started from the same point, up to its random start.
    assert (table["pgd_accuracy"] <= table["fgsm_accuracy"] + 0.1).all()


@pytest.mark.parametrize("policy", ["fixed", "learnable"])
def test_records_name_integrator_and_policy_and_the_trained_block_step_sizes(policy):
    config = SweepConfig.from_preset("wine", **{**TINY, "integrator": "heun", "step_size_policy": policy,
                                                "learning_rate": 0.05})
    table = run_group(config, Group("plain", ((0, 0.1), (1, 0.5))), TrialData(config))
    assert (table["integrator"] == "heun").all() and (table["step_size_policy"] == policy).all()
    assert (table["block_h_min"] <= table["block_h_mean"]).all()
    if policy == "fixed":
        np.testing.assert_allclose(table["block_h_mean"], table["h"], rtol=1e-6)
    else:  # trained inside (0, 2h]
        assert not np.allclose(table["block_h_mean"], table["h"])
        assert ((table["block_h_min"] > 0) & (table["block_h_mean"] <= 2 * table["h"] + 1e-6)).all()


def test_multilevel_sweep_members_end_at_the_given_depth_and_h():
    config = SweepConfig.from_preset("wine", **{**TINY, "depth": 4, "levels": 2, "learning_rate": 0.01})
    assert config.to_json()["levels"] == 2
    table = run_group(config, Group("shrinkage", ((0, 0.1), (1, 0.5))), TrialData(config))
    assert (table["depth"] == 4).all()
    np.testing.assert_allclose(table["block_h_mean"], table["h"], rtol=1e-6)  # the finest level's h
    assert (table["test_accuracy"] > 0.5).all()
    with pytest.raises(ConfigError, match="depth 4 cannot be built in 4 levels"):
        SweepConfig.from_preset("wine", **{**TINY, "depth": 4, "levels": 4})
