"""Time-evolving data: transactions schema, synthetic-btc drift, Elec2, temporal split and per-period accuracy."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from stableresnet.cli import app
from stableresnet.data import DataError
from stableresnet.data.elec2 import load_elec2
from stableresnet.data.transactions import (
    ENTITIES, load_transactions, read_transactions, synthetic_btc, synthetic_btc_dataset,
)
from stableresnet.experiments.runner import ResultStore
from stableresnet.experiments.drift import (
    DriftConfig, load_drift_data, run_block, run_drift, save_drift, temporal_split,
)
from stableresnet.model import ConfigError
from stableresnet.train import predict_logits
from stableresnet.stats import summarize_drift
from stableresnet.viz.drift import plot_drift

GOOD_CSV = (
    "timestamp,n_inputs,n_outputs,volume_btc,entity,extra\n"
    "2012-01-05T10:00:00Z,1,2,0.5,exchange,x\n"
    "2012-02-01T00:00:00+01:00,3,1,12.25,mining_pool,y\n"  # 2012-01-31T23:00Z: still January in UTC
    "2012-03-09T08:30:00Z,2,2,0.001,gambling,z\n"
)


@pytest.fixture(scope="module")
def btc():
    return synthetic_btc_dataset(20_000, seed=3)


@pytest.fixture(scope="module")
def elec2():
    return load_elec2()


def test_a_good_csv_is_read_in_utc_with_extra_columns_ignored(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text(GOOD_CSV)
    table = read_transactions(path)
    assert list(table.columns) == ["timestamp", "n_inputs", "n_outputs", "volume_btc", "entity"]
    assert str(table["timestamp"].iloc[1]) == "2012-01-31 23:00:00+00:00"
    data = load_transactions(path)
    assert data.period_labels == ("2012-01", "2012-02", "2012-03") and data.period.tolist() == [0, 0, 2]
    np.testing.assert_allclose(data.X[1], np.log1p([3, 1, 12.25]), rtol=1e-6)
    assert [data.class_names[k] for k in data.y] == ["exchange", "mining_pool", "gambling"]
    assert load_transactions(path, time_feature=True).feature_names[-1] == "months"


@pytest.mark.parametrize("column, value, message", [
    ("entity", "casino", r"column 'entity', data row 2: expected one of \['exchange'.*found 'casino'"),
    ("n_inputs", "-1", r"column 'n_inputs', data row 2: expected a value ≥ 0 .*found '?-1"),
    ("volume_btc", "-0.5", r"column 'volume_btc', data row 2: expected a value ≥ 0"),
    ("n_outputs", "1.5", r"column 'n_outputs', data row 2: expected a whole number"),
    ("n_outputs", "many", r"column 'n_outputs', data row 2: expected a finite number, found 'many'"),
    ("timestamp", "yesterday", r"column 'timestamp', data row 2: expected an ISO 8601 time.*'yesterday'"),
])
def test_schema_violations_name_the_file_column_row_and_value(tmp_path, column, value, message):
    table = pd.read_csv(pd.io.common.StringIO(GOOD_CSV), dtype=str)
    table.loc[1, column] = value
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"bad.{suffix}"
        table.to_csv(path, index=False) if suffix == "csv" else table.to_parquet(path)
        with pytest.raises(DataError, match=message) as error:
            read_transactions(path)
        assert str(path) in str(error.value)


def test_missing_column_empty_file_and_wrong_extension_are_refused(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text(GOOD_CSV.replace("volume_btc", "volume"))
    with pytest.raises(DataError, match=r"tx.csv: missing column\(s\) \['volume_btc'\]"):
        read_transactions(path)
    path.write_text("")
    with pytest.raises(DataError, match="tx.csv: the file is empty"):
        read_transactions(path)
    other = tmp_path / "tx.xlsx"
    other.write_text("x")
    with pytest.raises(DataError, match="unsupported extension '.xlsx'"):
        read_transactions(other)


def test_parquet_timestamps_and_unix_seconds_round_trip(tmp_path):
    table = synthetic_btc(500, seed=1)
    table.to_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(read_transactions(tmp_path / "a.parquet"), table, check_dtype=False)
    seconds = table.assign(timestamp=table["timestamp"].astype("int64") // 10**9)
    seconds.to_csv(tmp_path / "b.csv", index=False)
    back = read_transactions(tmp_path / "b.csv")
    assert (back["timestamp"] == table["timestamp"].dt.floor("s")).all()


def test_synthetic_btc_is_seeded_and_sorted():
    a, b = synthetic_btc(5_000, seed=7), synthetic_btc(5_000, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(synthetic_btc(5_000, seed=8))
    assert a["timestamp"].is_monotonic_increasing
    assert str(a["timestamp"].min())[:7] == "2012-01" and str(a["timestamp"].max())[:7] == "2018-05"
    assert set(a["entity"].unique()) == set(ENTITIES)


def test_synthetic_btc_drifts_by_more_than_noise():
    data = synthetic_btc_dataset(200_000, seed=0)
    exchange = data.y == 0
    early = data.X[exchange & (data.period < 6), 2]  # log1p volume, first half-year
    late = data.X[exchange & (data.period >= 71), 2]  # last half-year
    standard_error = np.sqrt(early.var() / early.size + late.var() / late.size)
    assert abs(early.mean() - late.mean()) > 10 * standard_error
    # Class shares drift too.
    share = lambda rows: np.bincount(data.y[rows], minlength=4) / rows.sum()  # noqa: E731
    assert np.abs(share(data.period < 6) - share(data.period >= 71)).max() > 0.1


def test_elec2_is_the_verified_file_in_row_order(elec2, tmp_path):
    assert elec2.X.shape == (45312, 7) and elec2.class_names == ("UP", "DOWN")
    assert np.bincount(elec2.y).tolist() == [19237, 26075]  # PROVENANCE.md's class counts
    assert elec2.n_periods == 34 and np.bincount(elec2.period).tolist() == [1344] * 33 + [960]
    assert load_elec2(period_days=7).n_periods == 135
    damaged = tmp_path / "elec2"
    shutil.copytree(load_elec2.__globals__["BUNDLED_ROOT"], damaged)
    with open(damaged / "elecNormNew.arff", "r+b") as file:
        file.seek(2000)
        file.write(b"9")
    with pytest.raises(DataError, match="elecNormNew.arff: sha256 .* does not match"):
        load_elec2(root=damaged)


@pytest.mark.parametrize("train_until", ["2014-01-15", "2014-01", "9"])
def test_temporal_split_never_leaks_a_test_period_into_training(btc, train_until):
    split = temporal_split(btc, train_until)
    train_time = btc.time[: split.n_train]
    for start, stop in split.test_bounds:
        assert train_time.max() < btc.time[start:stop].min()
    assert split.n_train + split.n_test == len(btc.y)
    if train_until == "2014-01-15":  # the cut falls inside January: its rest is period +0
        cut = np.datetime64("2014-01-15", "ns").astype(np.int64)
        assert train_time.max() < cut <= btc.time[split.test_bounds[0][0]]
        assert split.test_periods[0] == split.last_train_period == btc.period_labels.index("2014-01")
    else:
        expected = "2012-10" if train_until == "9" else "2014-01"
        assert btc.period_labels[split.test_periods[0]] == expected and split.test_periods[0] == split.last_train_period + 1


def test_elec2_split_by_period_index_and_bad_cuts(elec2):
    split = temporal_split(elec2, "12")
    assert split.n_train == 12 * 1344 and split.test_periods == tuple(range(12, 34))
    assert elec2.time[: split.n_train].max() < min(elec2.time[a] for a, _ in split.test_bounds)
    with pytest.raises(ConfigError, match="elec2 has no time stamps"):
        temporal_split(elec2, "1997-01")
    with pytest.raises(ConfigError, match=r"period index must be in 1\.\.33"):
        temporal_split(elec2, "34")
    with pytest.raises(ConfigError, match="cannot read --train-until 'soon'"):
        temporal_split(elec2, "soon")


def test_per_period_accuracy_equals_a_direct_prediction_on_that_period(elec2):
    config = DriftConfig("elec2", "30", blocks=("shrinkage",), step_sizes=(0.1, 1.0), trials=2, depth=3, width=8,
                         epochs=2, batch_size=2048)
    split = temporal_split(elec2, config.train_until)
    periods, sweep, model = run_block(config, "shrinkage", elec2, split)
    assert len(periods) == 4 * len(split.test_periods) and len(sweep) == 4
    for period, (start, stop) in zip(split.test_periods, split.test_bounds):
        logits = predict_logits(model, torch.from_numpy(elec2.X[start:stop]))  # (M, n, C)
        direct = (logits.argmax(-1).numpy() == elec2.y[start:stop]).mean(axis=1)
        table = periods[periods["period"] == period].sort_values(["trial", "h"])
        np.testing.assert_allclose(table["accuracy"].to_numpy(), direct, rtol=0, atol=1e-6)
        assert (table["n_rows"] == stop - start).all()
    pooled = periods.assign(correct=periods["accuracy"] * periods["n_rows"]).groupby(["trial", "h"])["correct"].sum()
    np.testing.assert_allclose(sweep.set_index(["trial", "h"])["test_accuracy"], pooled / split.n_test, rtol=1e-6)


def test_paper_depth_and_batch_run_batched_on_cpu_at_reduced_size(tmp_path):
    config = DriftConfig("synthetic-btc", "2017-10", blocks=("plain", "shrinkage", "batchnorm"),
                         step_sizes=(0.1, 1.0), trials=2, depth=128, width=8, epochs=1, batch_size=100_000, rows=2000)
    result = run_drift(config)
    n_members = 2 * 2
    assert len(result.sweep) == 3 * n_members
    assert len(result.periods) == 3 * n_members * len(result.split.test_periods)
    assert result.periods["accuracy"].between(0, 1).all() and not result.sweep["diverged"].any()
    paths = save_drift(tmp_path, config, result)
    assert json.loads((tmp_path / "config.json").read_text())["depth"] == 128
    pd.testing.assert_frame_equal(pd.read_csv(paths[1]), result.periods, check_dtype=False)
    summary = summarize_drift(result.periods)
    assert (summary["trials"] == 2).all() and summary["periods_after"].min() == 1
    figure = plot_drift(result.periods, step_sizes=[0.1])
    assert len(figure.axes[0].lines) == 3


def test_cli_drift_writes_tables_and_figures_and_refuses_mistakes(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["drift", "--data", "elec2", "--train-until", "31", "--blocks", "plain", "--step-sizes", "0.1,1",
            "--trials", "2", "--depth", "2", "--width", "4", "--epochs", "1", "--batch-size", "4096",
            "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("config.json", "periods.csv", "sweep.csv", "drift.png", "sweep.png"):
        assert (out / name).is_file()
    assert len(pd.read_csv(out / "periods.csv")) == 4 * 3
    assert not pd.read_csv(out / "sweep.csv")["compiled"].any()
    for bad, message in ((["--train-until", "1997-01"], "has no time stamps"),
                         (["--blocks", "fancy"], "unknown block 'fancy'"),
                         (["--data", "missing.parquet"], "no such file")):
        changed = list(args)
        for option, value in zip(bad[::2], bad[1::2]):
            changed[changed.index(option) + 1] = value
        result = runner.invoke(app, changed)
        assert result.exit_code == 2 and message in result.output.replace("\n", " ")


def test_cli_drift_compile_trains_through_torch_compile(tmp_path, monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "compile", lambda function, **options: calls.append(options) or function)
    result = CliRunner().invoke(app, ["drift", "--data", "elec2", "--train-until", "31", "--blocks", "plain,shrinkage",
                                      "--step-sizes", "1", "--trials", "1", "--depth", "2", "--width", "4",
                                      "--epochs", "1", "--batch-size", "4096", "--compile", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(calls) == 2 and pd.read_csv(tmp_path / "sweep.csv")["compiled"].all()  # one per block


def test_load_drift_data_reads_a_transactions_file(tmp_path):
    path = tmp_path / "tx.parquet"
    synthetic_btc(2_000, seed=0).to_parquet(path)
    data = load_drift_data(DriftConfig(str(path), "2015-01", period="week"))
    assert data.name == "tx" and data.period_labels[0].startswith("week of 2012-01")


def test_a_killed_drift_run_resumes_with_the_finished_blocks_and_ends_with_the_same_tables(elec2, tmp_path):
    config = DriftConfig("elec2", "30", blocks=("plain", "shrinkage"), step_sizes=(0.1, 1.0), trials=1, depth=2,
                         width=4, epochs=1, batch_size=4096)
    started = []

    def stop_at_second_block(unit, index, n_blocks):
        started.append(unit.name)
        if unit.name == "shrinkage":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_drift(config, progress=stop_at_second_block, data=elec2, directory=tmp_path / "run", workers=1)
    started.clear()
    resumed = run_drift(config, progress=lambda unit, i, n: started.append(unit.name), data=elec2,
                        directory=tmp_path / "run", workers=1)
    assert started == ["shrinkage"]  # plain was not trained again
    whole = run_drift(config, data=elec2, directory=tmp_path / "whole")
    for name in ("periods", "sweep"):
        pd.testing.assert_frame_equal(getattr(resumed, name).drop(columns="seconds", errors="ignore"),
                                      getattr(whole, name).drop(columns="seconds", errors="ignore"))
    with pytest.raises(ConfigError, match="holds a drift run with another config .*epochs: 1 there, 2 here"):
        run_drift(DriftConfig(**{**config.__dict__, "epochs": 2}), data=elec2, directory=tmp_path / "run")


def test_a_block_cut_off_mid_way_resumes_from_its_saved_epoch(elec2, tmp_path, monkeypatch):
    monkeypatch.setattr(ResultStore, "checkpoint_seconds", 0.0)
    config = DriftConfig("elec2", "30", blocks=("plain",), step_sizes=(0.1, 1.0), trials=1, depth=2,
                         width=4, epochs=3, batch_size=4096)
    epochs = []

    def killed_in_epoch_2(block, index, n):
        def on_epoch(epoch, loss):
            epochs.append(epoch)
            if epoch == 1:
                raise KeyboardInterrupt
        return on_epoch

    with pytest.raises(KeyboardInterrupt):
        run_drift(config, progress=killed_in_epoch_2, data=elec2, directory=tmp_path / "run")
    assert (tmp_path / "run" / "blocks" / "plain.checkpoint").is_file()
    epochs.clear()
    resumed = run_drift(config, progress=lambda block, i, n: lambda epoch, loss: epochs.append(epoch), data=elec2,
                        directory=tmp_path / "run")
    assert epochs == [2]
    whole = run_drift(config, data=elec2, directory=tmp_path / "whole")
    for name in ("periods", "sweep"):
        pd.testing.assert_frame_equal(getattr(resumed, name).drop(columns="seconds", errors="ignore"),
                                      getattr(whole, name).drop(columns="seconds", errors="ignore"))
    assert not list((tmp_path / "run").rglob("*.checkpoint"))


def test_elec2_as_a_dataset_trains_on_the_first_756_days_and_tests_on_the_rest(elec2):
    from stableresnet.data import load_dataset

    data = load_dataset("elec2")
    assert (len(data.y_train), len(data.y_test)) == (756 * 48, 188 * 48)
    np.testing.assert_array_equal(data.X_test, elec2.X[756 * 48:].astype(np.float64))
    np.testing.assert_array_equal(np.concatenate([data.y_train, data.y_test]), elec2.y)
    with pytest.raises(DataError, match="does not take test_size"):
        load_dataset("elec2", test_size=0.3)


def test_cli_trains_and_diagnoses_elec2_without_a_paper_preset(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--dataset", "elec2", "--depth", "3", "--epochs", "1", "--batch-size", "512"])
    assert result.exit_code == 0, result.output
    assert "elec2: plain block" in " ".join(result.output.split())
    result = runner.invoke(app, ["diagnose", "--dataset", "elec2", "--depth", "2", "--epochs", "1", "--batch-size", "1024",
                                 "--samples", "16", "--sigma", "0", "--epsilon", "0", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
