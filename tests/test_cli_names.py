"""One name and one grid syntax per concept on the command line; old spellings work as hidden, noted aliases."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from stableresnet.cli import app
from stableresnet.cli.common import parse_step_sizes
from stableresnet.errors import ConfigError

runner = CliRunner()

TINY = ["--dataset", "wine", "--depth", "2", "--epochs", "1", "--samples", "8", "--sigma", "0", "--epsilon", "0",
        "--pgd-steps", "1"]
TABLES = ("spectra", "eigenvalues", "growth", "robustness")


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.stdout, result.stderr or ""


@pytest.mark.parametrize("text, grid", [
    ("0.1:0.5:0.1", (0.1, 0.2, 0.3, 0.4, 0.5)),  # stop included
    ("1:2:0.5", (1.0, 1.5, 2.0)),
    ("0.1:0.35:0.1", (0.1, 0.2, 0.3)),  # a stop off the grid is not passed
    ("0.1,0.5,1", (0.1, 0.5, 1.0)),
    ("1", (1.0,)),
])
def test_the_grid_parser_reads_ranges_and_lists(text, grid):
    assert parse_step_sizes(text) == grid


@pytest.mark.parametrize("text", ["0.1:x:0.1", "0.1,abc", "1:0.1:0.1", "0.1:1:0", "0.1:1"])
def test_a_bad_grid_is_refused_naming_the_value(text):
    with pytest.raises(ConfigError, match="cannot read step sizes") as error:
        parse_step_sizes(text)
    assert repr(text) in str(error.value) and "start:stop:step" in str(error.value)


def test_diagnose_with_step_sizes_equals_the_deprecated_repeated_options(tmp_path):
    new, new_out, new_err = run("diagnose", *TINY, "--blocks", "plain,shrinkage", "--step-sizes", "0.1,1",
                                "--out", tmp_path / "new")
    old, old_out, old_err = run("diagnose", *TINY, "--block", "plain", "--block", "shrinkage", "-h", 0.1,
                                "--step-size", 1, "--out", tmp_path / "old")
    assert new.exit_code == 0 and old.exit_code == 0, new_out + new_err + old_out + old_err
    assert "deprecated" not in new_err
    assert "note: -h/--step-size (repeated) is deprecated; use --step-sizes 0.1,1.0" in old_err
    assert "note: --block (repeated) is deprecated; use --blocks plain,shrinkage" in old_err
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "new" / f"{name}.csv"),
                                      pd.read_csv(tmp_path / "old" / f"{name}.csv"))
    assert (json.loads((tmp_path / "new" / "summary.json").read_text())["summary"]
            == json.loads((tmp_path / "old" / "summary.json").read_text())["summary"])
    assert new_out.split("wrote records")[0] == old_out.split("wrote records")[0]


def test_diagnose_takes_a_range_of_step_sizes(tmp_path):
    result, out, err = run("diagnose", *TINY, "--step-sizes", "0.5:1.5:0.5", "--out", tmp_path / "d")
    assert result.exit_code == 0, out + err
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())["summary"]
    assert [row["step_size"] for row in summary] == [0.5, 1.0, 1.5]


@pytest.mark.parametrize("args, message", [
    (["--step-sizes", "0.1", "-h", "0.5"], "give --step-sizes or its deprecated spelling -h/--step-size"),
    (["--step-sizes", "0.1:x"], "cannot read step sizes '0.1:x'"),
    (["--blocks", "plain,plain"], "must be distinct"),
])
def test_diagnose_option_mistakes_give_exit_2(tmp_path, args, message):
    result, out, err = run("diagnose", *TINY, *args, "--out", tmp_path / "never")
    assert result.exit_code == 2, out + err
    assert message in " ".join(err.split())
    assert not (tmp_path / "never").exists()


def test_drift_and_propagate_old_spellings_are_noted_aliases(tmp_path):
    result, out, err = run("drift", "--data", "elec2", "--train-until", "31", "--plot-step-sizes", "0.1",
                           "--plot-h", "1", "--out", tmp_path / "never")
    assert result.exit_code == 2 and "give --plot-step-sizes or its deprecated spelling --plot-h" in err
    result, out, err = run("propagate", "--data", "wine", "--epochs", "1", "--out", tmp_path / "never")
    assert "note: --data is deprecated; use --dataset wine" in err
    assert result.exit_code == 2 and "need 2-D synthetic data" in " ".join(err.split())


def help_text(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    return result.stdout


@pytest.mark.parametrize("command", ["diagnose", "sweep", "tune", "drift"])
def test_every_h_grid_is_step_sizes_in_the_grid_syntax(command):
    text = help_text(command)
    assert "--step-sizes" in text and "start:stop:step (stop included)" in text
    assert "--step-size " not in text and " -h " not in text


@pytest.mark.parametrize("command", ["train", "propagate"])
def test_one_h_is_step_size_with_its_short_alias(command):
    text = help_text(command)
    assert "--step-size " in text and "-h" in text and "--step-sizes" not in text


@pytest.mark.parametrize("command, shown, hidden", [
    ("diagnose", "--blocks", "--block "),
    ("drift", "--plot-step-sizes", "--plot-h"),
    ("propagate", "--dataset", "--data "),
])
def test_help_shows_the_one_name_not_the_deprecated_one(command, shown, hidden):
    text = help_text(command)
    assert shown in text and hidden not in text
