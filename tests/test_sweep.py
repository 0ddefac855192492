"""The sweep engine: ensemble = single model, resume after a kill, plots from the table, bad input."""

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from stableresnet import StableResNet, StableResNetClassifier, TrainConfig, evaluate, fit
from stableresnet.train import predict_logits
from stableresnet.cli import app
from stableresnet.cli.common import parse_step_sizes
from stableresnet.data import DataError, load_dataset, load_table
from stableresnet.data.uci import WINE_FEATURES, read_verified
from stableresnet.experiments.sweep import (
    Group, SweepConfig, TrialData, groups, relative_cost, run_group, run_sweep, sweep_store,
    trial_seed,
)
from stableresnet.experiments.runner import ResultStore
from stableresnet.spec import NetworkSpec
from stableresnet.model import ConfigError
from stableresnet.stats import summarize, summarize_comparison
from stableresnet.viz.sweep import plot_sweep
from toy_tables import write_toy_csv

TINY = dict(trials=2, depth=3, epochs=3, step_sizes=(0.1, 1.0))


@pytest.mark.parametrize("block", ["plain", "shrinkage", "batchnorm", "batchnorm-preact"])
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
        assert torch.equal(stacked.select(member_axis, 1), single.select(member_axis, 0)), name
    X_test = torch.tensor(wine.X_test, dtype=torch.float32)
    assert torch.equal(predict_logits(ensemble, X_test)[1], predict_logits(alone, X_test)[0])
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
            "--step-sizes", "0.1,0.5,1", "--depth", "3", "--epochs", "3", "--members-per-group", "3", "--workers", "1",
            "--out", str(out), *extra]


# Runs the CLI's sweep (one group at a time) and sends the process ``signal`` from inside the third
# group's training, after its first epoch: a stop that lands mid-sweep and mid-group whatever the machine's load.
SIGNAL_IN_THIRD_GROUP = """
import os, signal, sys
from stableresnet.cli import main
from stableresnet.experiments import sweep

stop_with, train_group, started = getattr(signal, sys.argv.pop(1)), sweep.run_group, []

def run_group(config, group, data, device="cpu", on_epoch=None, *rest):
    started.append(group)
    if len(started) == 3:
        def on_epoch(epoch, loss):
            if epoch >= 1:
                os.kill(os.getpid(), stop_with)
    return train_group(config, group, data, device, on_epoch, *rest)

sweep.run_group = run_group
main()
"""


def sweep_stopped_in_third_group(out, signal_name, **popen):
    command = sweep_command(out)
    return subprocess.run([sys.executable, "-c", SIGNAL_IN_THIRD_GROUP, signal_name, *command[3:]], **popen)


def test_worker_threads_give_the_table_of_one_group_after_another(tmp_path):
    """Groups trained two at a time, one torch thread each: the same rows, to the bit."""
    config = SweepConfig.from_preset("wine", blocks=("plain", "shrinkage", "batchnorm"), step_sizes=(0.1, 1.0),
                                     trials=2, depth=3, epochs=2, members_per_group=2)
    threads = torch.get_num_threads()
    alone = run_sweep(config, tmp_path / "alone")
    together = run_sweep(config, tmp_path / "workers", workers=2)
    assert torch.get_num_threads() == threads  # given back
    assert len(alone) == 12 and len(list((tmp_path / "workers" / "groups").glob("*.csv"))) == 6
    pd.testing.assert_frame_equal(together.drop(columns="seconds"), alone.drop(columns="seconds"))
    for workers, backend, message in ((0, "local", "--workers must be an integer ≥ 1; got 0"),
                                      (2, "ray", "--workers is for the local backend")):
        with pytest.raises(ConfigError, match=message):
            run_sweep(config, tmp_path / "refused", workers=workers, backend=backend)
    assert not (tmp_path / "refused").exists()


def test_costliest_groups_start_first():
    """Batch-norm groups (twice a plain step) first, then by size; canonical order among equals."""
    config = SweepConfig.from_preset("wine", step_sizes=(0.1, 1.0), trials=3, members_per_group=4)
    ordered = sorted(groups(config), key=relative_cost, reverse=True)
    assert [(g.block, len(g.members)) for g in ordered] == [
        ("batchnorm", 4), ("plain", 4), ("shrinkage", 4), ("batchnorm", 2), ("plain", 2), ("shrinkage", 2)]


def test_a_sweep_on_worker_threads_stops_on_sigterm_and_resumes(tmp_path):
    whole = tmp_path / "whole"
    subprocess.run(sweep_command(whole), check=True, capture_output=True)
    out = tmp_path / "run"
    stopped = subprocess.run([sys.executable, "-c", SIGNAL_IN_THIRD_GROUP, "SIGTERM",
                              *sweep_command(out, ["--workers", "2"])[3:]], capture_output=True, text=True)
    assert stopped.returncode == 130, stopped.stderr
    assert "stopped: no file was left half-written" in " ".join(stopped.stderr.split())
    assert "Traceback" not in stopped.stderr
    assert 1 <= len(list((out / "groups").glob("*.csv"))) <= 3 and not (out / "results.csv").exists()
    assert not list(out.rglob(".*.partial-*"))
    subprocess.run(sweep_command(out, ["--workers", "2"]), check=True, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv").drop(columns="seconds"),
                                  pd.read_csv(whole / "results.csv").drop(columns="seconds"))


def test_a_killed_sweep_resumes_and_ends_with_the_uninterrupted_table(tmp_path):
    whole = tmp_path / "whole"
    subprocess.run(sweep_command(whole), check=True, capture_output=True)
    resumed = tmp_path / "resumed"
    killed = sweep_stopped_in_third_group(resumed, "SIGKILL", capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    finished = sorted(p.name for p in (resumed / "groups").glob("*.csv"))
    assert len(finished) == 2
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


def test_sigterm_stops_a_sweep_like_ctrl_c_with_one_line_and_it_resumes(tmp_path):
    out = tmp_path / "run"
    stopped = sweep_stopped_in_third_group(out, "SIGTERM", capture_output=True, text=True)
    assert stopped.returncode == 130, stopped.stderr
    assert "stopped: no file was left half-written" in " ".join(stopped.stderr.split())
    assert "Traceback" not in stopped.stderr
    assert len(list((out / "groups").glob("*.csv"))) == 2
    assert not list(out.rglob(".*.partial-*"))
    subprocess.run(sweep_command(out), check=True, capture_output=True)
    assert len(pd.read_csv(out / "results.csv")) == 18


def test_a_group_cut_off_mid_way_resumes_from_its_saved_epoch(tmp_path, monkeypatch):
    """A group's training saves its state between epochs (here after every one): a rerun trains
    only the epochs not saved and ends with the uninterrupted table; no checkpoint is left."""
    monkeypatch.setattr(ResultStore, "checkpoint_seconds", 0.0)
    config = SweepConfig.from_preset("wine", blocks=("batchnorm",), trials=2, depth=3, epochs=4, step_sizes=(0.1, 1.0))
    whole = run_sweep(config, tmp_path / "whole")
    epochs = []

    class Killed(Exception):
        pass

    def killed_in_epoch_3(group, index, n):
        def on_epoch(epoch, loss):
            epochs.append(epoch)
            if epoch == 2:
                raise Killed
        return on_epoch

    with pytest.raises(Killed):
        run_sweep(config, tmp_path / "resumed", progress=killed_in_epoch_3)
    group, = groups(config)
    saved = sweep_store(tmp_path / "resumed", config).checkpoint(group).path
    assert list((tmp_path / "resumed" / "groups").iterdir()) == [saved]
    epochs.clear()
    resumed = run_sweep(config, tmp_path / "resumed",
                        progress=lambda group, index, n: lambda epoch, loss: epochs.append(epoch))
    assert epochs == [3]  # epochs 0-2 were saved before the kill (epoch 2's save precedes its callback)
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), whole.drop(columns="seconds"))
    assert not list((tmp_path / "resumed").rglob("*.checkpoint"))


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


# ------------------------------------------------------------------------------------------------
# Sweeps on a user file (--data FILE --target COLUMN)

USER_TINY = {"trials": 2, "depth": 2, "epochs": 2, "step_sizes": (0.1, 1.0), "blocks": ("plain", "shrinkage")}


def write_wine_csv(path):
    """The bundled wine file as a user would hold it: a header row, the class column named 'cultivar'."""
    raw, _ = read_verified(None, "wine/wine.data")
    path.write_text(",".join(["cultivar", *WINE_FEATURES]) + "\n" + raw.decode())
    return path


def test_a_sweep_on_a_user_csv_equals_the_bundled_sweep_of_the_same_table(tmp_path):
    csv = write_wine_csv(tmp_path / "cellar.csv")
    settings = {**USER_TINY, "width": 13, "batch_size": 10, "learning_rate": 1e-3, "optimizer": "adam",
                "activation": "relu"}
    user = run_sweep(SweepConfig.from_table(csv, "cultivar", **settings), tmp_path / "user")
    bundled = run_sweep(SweepConfig.from_preset("wine", **settings), tmp_path / "bundled")
    assert len(user) == 8 and (user["dataset"] == "cellar").all()
    pd.testing.assert_frame_equal(user.drop(columns=["dataset", "seconds"]),
                                  bundled.drop(columns=["dataset", "seconds"]))


def test_a_user_sweep_member_equals_one_network_trained_alone_on_the_trials_split(tmp_path):
    csv = write_toy_csv(tmp_path / "toy.csv")
    config = SweepConfig.from_table(csv, "label", one_hot=True, **USER_TINY)
    table = run_sweep(config, tmp_path / "out").set_index(["block", "trial", "h"])
    seed = trial_seed(config.seed, 1)
    split = load_table(csv, "label", seed=seed, one_hot=True)  # the public loader, as `train --data` uses it
    assert split.n_features == 5  # x1, x2 and one 0/1 column per colour
    alone = StableResNet(split.n_features, split.n_classes, depth=2, width=config.width, block="shrinkage",
                         step_size=1.0, activation=config.activation, seed=seed)
    fit(alone, torch.tensor(split.X_train, dtype=torch.float32), torch.tensor(split.y_train),
        TrainConfig(epochs=2, batch_size=config.batch_size, learning_rate=config.learning_rate,
                    optimizer=config.optimizer))
    for name, X, y in (("train", split.X_train, split.y_train), ("test", split.X_test, split.y_test)):
        metrics = evaluate(alone, torch.tensor(X, dtype=torch.float32), torch.tensor(y))
        row = table.loc[("shrinkage", 1, 1.0)]
        assert row[f"{name}_accuracy"] == pytest.approx(metrics["accuracy"][0])
        assert row[f"{name}_loss"] == pytest.approx(metrics["loss"][0], rel=1e-4)
    assert row["width"] == alone.width and row["seed"] == seed


def test_without_a_preset_the_defaults_are_the_estimators_read_when_the_sweep_is_made(tmp_path, monkeypatch):
    csv = write_toy_csv(tmp_path / "toy.csv")
    params = StableResNetClassifier().get_params()
    config = SweepConfig.from_table(csv, "label")
    for name in ("depth", "width", "epochs", "batch_size", "learning_rate", "optimizer", "activation"):
        assert getattr(config, name) == params[name], name
    assert config.step_sizes == parse_step_sizes("0.1:1.0:0.1") and config.trials == 10
    assert SweepConfig.for_dataset("elec2").depth == params["depth"]  # a bundled set without a paper preset
    assert SweepConfig.for_dataset("wine") == SweepConfig.from_preset("wine")
    # Change the default depth where it is declared (the network spec): the next config follows it,
    # so no number was copied.
    depth_field, = (f for f in dataclasses.fields(NetworkSpec) if f.name == "depth")
    monkeypatch.setattr(depth_field, "default", params["depth"] + 7)
    assert SweepConfig.from_table(csv, "label").depth == params["depth"] + 7


def test_a_user_sweep_resumes_after_a_lost_group_file_and_refuses_a_changed_file(tmp_path):
    csv = write_toy_csv(tmp_path / "toy.csv")
    out = tmp_path / "out"
    config = SweepConfig.from_table(csv, "label", members_per_group=2, **USER_TINY)
    whole = run_sweep(config, out)
    stored = json.loads((out / "config.json").read_text())
    assert stored["data_file"] == str(csv.resolve()) and stored["target"] == "label"
    assert stored["data_sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    lost, *kept = [store_path for store_path in sorted((out / "groups").glob("*.csv"))]
    assert len(kept) == len(groups(config)) - 1 == 3
    lost.unlink()
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    resumed = run_sweep(SweepConfig.from_table(csv, "label", members_per_group=2, **USER_TINY), out)
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), whole.drop(columns="seconds"))
    assert lost.exists() and all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())

    write_toy_csv(csv, seed=1)  # same columns, other rows
    with pytest.raises(ConfigError, match=r"toy.csv has changed since the sweep in .* began \(SHA-256"):
        run_sweep(SweepConfig.from_table(csv, "label", members_per_group=2, **USER_TINY), out)
    with pytest.raises(DataError, match="has changed since the sweep was set up"):
        TrialData(config)  # a config made before the change: its workers refuse the file too
    result = CliRunner().invoke(app, ["sweep", "--data", str(csv), "--target", "label", "--trials", "2", "--depth", "2",
                                      "--epochs", "2", "--step-sizes", "0.1,1", "--blocks", "plain,shrinkage",
                                      "--members-per-group", "2", "--out", str(out)])
    assert result.exit_code == 2 and "has changed since the sweep" in " ".join(result.output.split())
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())


# config.json of a bundled-set sweep as written before sweeps took user files: such folders must still resume.
BUNDLED_CONFIG_JSON = """{
  "dataset": "wine",
  "blocks": [
    "plain",
    "shrinkage",
    "batchnorm"
  ],
  "step_sizes": [
    0.1,
    1.0
  ],
  "trials": 2,
  "depth": 3,
  "width": 13,
  "epochs": 3,
  "batch_size": 10,
  "learning_rate": 0.001,
  "optimizer": "adam",
  "activation": "relu",
  "seed": 0,
  "members_per_group": 100
}
"""


def test_a_bundled_sweeps_config_json_is_unchanged_so_old_folders_resume(tmp_path):
    sweep_store(tmp_path / "new", SweepConfig.from_preset("wine", **TINY))
    assert (tmp_path / "new" / "config.json").read_text() == BUNDLED_CONFIG_JSON
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(BUNDLED_CONFIG_JSON)
    sweep_store(tmp_path / "old", SweepConfig.from_preset("wine", **TINY))  # accepted, not "another config"


def test_sweep_and_plot_sweep_commands_on_a_user_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_toy_csv(tmp_path / "toy.csv")
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", "--data", "toy.csv", "--target", "label", "--one-hot", "--test-size", "0.25",
                                 "--trials", "2", "--depth", "2", "--epochs", "2", "--step-sizes", "0.1,1",
                                 "--blocks", "plain,batchnorm"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "results" / "sweep-toy"
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 8 and (table["dataset"] == "toy").all()
    assert (table["width"] == StableResNetClassifier().get_params()["width"]).all()  # no preset: the estimator's
    config = json.loads((out / "config.json").read_text())
    assert config["one_hot"] is True and config["test_size"] == 0.25
    split = load_table("toy.csv", "label", seed=trial_seed(0, 0), test_size=0.25, one_hot=True)
    assert len(split.y_test) == 30  # 0.25 of 120 rows
    assert split.n_features == 5  # x1, x2 and one column per colour

    result = runner.invoke(app, ["plot-sweep", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "sweep.png").stat().st_size > 0 and (out / "sweep.svg").exists()
    summary = pd.read_csv(out / "summary.csv").set_index(["block", "h"])
    by_hand = table.groupby(["block", "h"])["test_accuracy"]
    assert (summary["dataset"] == "toy").all()
    np.testing.assert_allclose(summary["mean"], by_hand.mean().loc[summary.index])
    np.testing.assert_allclose(summary["std"], by_hand.std(ddof=1).loc[summary.index])
    assert plot_sweep(table).axes[0].get_title().startswith("Different h on toy:")


def write_bad_csv(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give exactly one of --data FILE (with --target COLUMN) or --dataset NAME"),
        (["--data", "TOY", "--target", "label", "--dataset", "wine"], "give exactly one of --data FILE"),
        (["--data", "TOY"], "--data needs --target COLUMN"),
        (["--data", "missing.csv", "--target", "label"], "missing.csv: file not found"),
        (["--data", "TOY", "--target", "nope"], "no target column 'nope'"),
        (["--data", "GAP", "--target", "label"], "column 'x1' has 1 missing values"),
        (["--data", "MIXED", "--target", "label"], "column 'x1' mixes numbers and text"),
        (["--data", "TOY", "--target", "label", "--test-size", "1.5"], "test_size must be a fraction in (0, 1)"),
        (["--data", "TOY", "--target", "label", "--trials", "0"], "trials must be an integer ≥ 1"),
    ],
)
def test_bad_user_data_for_a_sweep_is_refused_before_anything_is_written(tmp_path, args, message):
    files = {
        "TOY": str(write_toy_csv(tmp_path / "toy.csv")),
        "GAP": write_bad_csv(tmp_path / "gap.csv", "x1,label\n1,a\n,b\n3,a\n4,b\n"),
        "MIXED": write_bad_csv(tmp_path / "mixed.csv", "x1,label\n1,a\ntwo,b\n3,a\n4,b\n"),
    }
    out = tmp_path / "out"
    args = [files.get(a, a) for a in args]
    result = CliRunner().invoke(app, ["sweep", *args, "--depth", "2", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_user_sweep_on_ray_workers_gives_the_local_table(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'stableresnet[ray]'")
    write_toy_csv(tmp_path / "toy.csv")
    monkeypatch.chdir(tmp_path)  # a relative path: the config carries it absolute to the workers
    config = SweepConfig.from_table("toy.csv", "label", members_per_group=4, **USER_TINY)
    local = run_sweep(config, tmp_path / "local")
    on_ray = run_sweep(config, tmp_path / "ray", backend="ray")
    pd.testing.assert_frame_equal(on_ray.drop(columns="seconds"), local.drop(columns="seconds"),
                                  check_exact=False, rtol=1e-5)


def test_sweep_compile_trains_every_group_through_torch_compile(tmp_path, monkeypatch):
    """``sweep --compile`` reaches each group's TrainConfig (its numerics are tested in test_train)."""
    from stableresnet.experiments import sweep as sweep_module

    seen = []

    def recording(model, X, y, config, levels, **kwargs):
        seen.append(config.compile)
        return fit_multilevel(model, X, y, dataclasses.replace(config, compile=False), levels, **kwargs)

    fit_multilevel = sweep_module.fit_multilevel
    monkeypatch.setattr(sweep_module, "fit_multilevel", recording)
    write_toy_csv(tmp_path / "toy.csv")
    args = ["sweep", "--data", str(tmp_path / "toy.csv"), "--target", "label", "--trials", "1", "--depth", "2",
            "--epochs", "1", "--step-sizes", "0.1,1", "--blocks", "plain,shrinkage"]
    result = CliRunner().invoke(app, [*args, "--compile", "--out", str(tmp_path / "compiled")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "auto")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, [*args, "--no-compile", "--out", str(tmp_path / "eager")])
    assert result.exit_code == 0, result.output
    assert seen == [True, True, "auto", "auto", False, False]


def test_a_comparison_pairs_each_variant_with_the_first_trial_by_trial():
    """Hand-made members: the counts, Wilson intervals (9/10: 0.596-0.982) and mean differences by hand."""
    seeds = np.arange(10)
    rows = []

    def add(variant, h, accuracies):
        rows.extend({"dataset": "wine", "variant": variant, "block": "plain", "h": h, "seed": seed,
                     "test_accuracy": accuracy, "diverged": False, "block_h_mean": h}
                    for seed, accuracy in zip(seeds, accuracies))

    fixed_at_1 = 0.5 + 0.01 * seeds
    add("fixed", 0.1, np.full(10, 0.9))
    add("fixed", 1.0, fixed_at_1)
    add("adaptive", 0.1, np.where(seeds == 3, np.nan, 0.9))  # ties, and one member with no accuracy
    add("adaptive", 1.0, np.where(seeds < 9, fixed_at_1 + 0.05, fixed_at_1 - 0.05))
    add("rk4", 0.4, np.full(10, 0.8))  # as many step sizes as fixed: paired by rank, 0.4 with 0.1
    add("rk4", 4.0, fixed_at_1)
    add("one h", 1.0, fixed_at_1)  # one step size against two: paired at the same h
    order = ["fixed", "adaptive", "rk4", "one h"]
    summary = summarize_comparison(pd.DataFrame(rows), order=order).set_index(["variant", "h"])

    assert pd.isna(summary.loc[("fixed", 0.1), "pairs"]) and summary.loc[("fixed", 0.1), "verdict"] == "reference"
    ties = summary.loc[("adaptive", 0.1)]
    assert (ties["pairs"], ties["better"], ties["worse"], ties["verdict"]) == (9, 0, 0, "no clear difference")
    assert ties["better_ci"] == "0.00-0.30"  # Wilson 0/9: [0, 0.299]
    better = summary.loc[("adaptive", 1.0)]
    assert (better["pairs"], better["better"], better["worse"], better["first_h"]) == (10, 9, 1, 1.0)
    assert (better["better_ci"], better["worse_ci"], better["verdict"]) == ("0.60-0.98", "0.02-0.40", "better")
    assert better["mean_difference"] == pytest.approx((9 * 0.05 - 0.05) / 10)
    worse = summary.loc[("rk4", 0.4)]
    assert (worse["first_h"], worse["worse"], worse["worse_ci"], worse["verdict"]) == (0.1, 10, "0.72-1.00", "worse")
    assert worse["mean_difference"] == pytest.approx(-0.1)
    assert summary.loc[("rk4", 4.0), "first_h"] == 1.0
    same = summary.loc[("one h", 1.0)]
    assert (same["first_h"], same["pairs"], same["better"], same["worse"]) == (1.0, 10, 0, 0)
    assert list(summary.index.get_level_values("variant").unique()) == order
