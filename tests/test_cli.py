"""The command line: training on user CSVs and bundled data, and clear errors without tracebacks."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from stableresnet.cli import app
from stableresnet.serialization import load_model

runner = CliRunner()


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["colour"] = rng.choice(["red", "blue"], size=120)
    frame["label"] = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.stdout + (result.stderr or "")


def test_train_on_a_user_csv_prints_accuracy_and_saves(csv_file, tmp_path):
    model_path = tmp_path / "m.safetensors"
    result, out = run("train", "--data", csv_file, "--target", "label", "--depth", 3, "--epochs", 30,
                      "--lr", 0.01, "--save", model_path)
    assert result.exit_code == 0, out
    assert "train" in out and "test" in out
    test_accuracy = float(out.split("│ test")[1].split("│")[2])
    assert test_accuracy >= 0.8
    model, classes, extra = load_model(model_path)
    assert classes == ["no", "yes"] and model.depth == 3
    assert extra["feature_names"][:3] == ["a", "b", "c"]


def test_train_on_bundled_wine_with_the_paper_preset():
    result, out = run("train", "--dataset", "wine", "--block", "plain", "--step-size", 0.1)
    assert result.exit_code == 0, out
    assert "depth 20, width 13" in " ".join(out.split())
    assert float(out.split("│ test")[1].split("│")[2]) >= 0.9


def test_train_multilevel_saves_the_finest_network(tmp_path):
    model_path = tmp_path / "m.safetensors"
    result, out = run("train", "--dataset", "wine", "--depth", 8, "--levels", 2, "--epochs", 10,
                      "--step-size-policy", "learnable", "--save", model_path)
    assert result.exit_code == 0, out
    words = " ".join(out.split())
    assert "learnable h, 2 levels" in words and "block step sizes h_i after training: mean" in words
    model, _, extra = load_model(model_path)
    assert model.depth == 8 and extra["params"]["levels"] == 2 and model.step_size_policy == "learnable"
    assert float(out.split("│ test")[1].split("│")[2]) >= 0.9


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "wine", "--levels", "0"], "levels must be an integer ≥ 1"),
        (["--dataset", "wine", "--step-size", "0"], "step_size h must be a finite number > 0"),
        (["--dataset", "wine", "--depth", "0"], "depth must be an integer"),
        (["--dataset", "wine", "--block", "dense"], "unknown block 'dense'"),
        (["--dataset", "wine", "--activation", "gelu"], "unknown activation 'gelu'"),
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        ([], "give exactly one of --data"),
    ],
)
def test_user_mistakes_give_one_clear_line_and_exit_2(args, message):
    result, out = run("train", *args)
    assert result.exit_code == 2
    assert message in " ".join(out.split())
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "content, target, message",
    [
        ("", "label", "empty"),
        ("a,b,label\n", "label", "no data rows"),
        ("a;b;label\n1;2;x\n3;4;y\n", "label", "label"),
        ("a,b,label\n1,2,x\n3,4,x\n", "label", "class"),
        ("a,b,label\n1,2,x\n3,4,y\n", "target", "no target column 'target'; columns are ['a', 'b', 'label']"),
    ],
)
def test_broken_csv_files_are_refused_clearly(tmp_path, content, target, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    out_model = tmp_path / "never.safetensors"
    result, out = run("train", "--data", path, "--target", target, "--save", out_model)
    assert result.exit_code == 2, out
    assert message in " ".join(out.split())
    assert "Traceback" not in out
    assert not out_model.exists()


def test_datasets_lists_every_bundled_dataset_with_counts():
    result, out = run("datasets")
    assert result.exit_code == 0
    for name, rows in [("wine", "178"), ("abalone", "4177"), ("absenteeism", "740"), ("autism", "704"),
                       ("adult", "48842")]:
        line = next(line for line in out.splitlines() if f" {name} " in line)
        assert rows in line


def test_diagnose_trains_with_the_chosen_integrator_and_step_size_policy(tmp_path):
    out = tmp_path / "diag"
    result, text = run("diagnose", "--dataset", "wine", "--integrator", "rk4", "--step-size-policy", "learnable",
                       "--step-sizes", 0.1, "--depth", 2, "--epochs", 1, "--samples", 8, "--sigma", 0,
                       "--epsilon", 0, "--pgd-steps", 1, "--out", out)
    assert result.exit_code == 0, text
    record = json.loads((out / "summary.json").read_text())
    assert [(m["integrator"], m["step_size_policy"]) for m in record["models"]] == [("rk4", "learnable")]
    assert [row["integrator"] for row in record["summary"]] == ["rk4"]
    spectra = pd.read_csv(out / "spectra.csv")
    # One epoch of Adam moves every trained h_i off h, inside the learnable policy's (0, 2h].
    assert ((spectra["block_step_size"] != 0.1) & (spectra["block_step_size"] > 0)
            & (spectra["block_step_size"] <= 0.2)).all()


def test_settings_fall_back_to_the_paper_preset_else_the_estimators_defaults(csv_file, tmp_path):
    from stableresnet import StableResNetClassifier

    estimator = StableResNetClassifier().get_params()
    for source, expected in (
        (("--data", csv_file, "--target", "label"), {name: estimator[name] for name in
                                                     ("depth", "width", "batch_size", "learning_rate")}),
        (("--dataset", "wine"), {"depth": 20, "width": 13, "batch_size": 10, "learning_rate": 1e-3}),  # paper: Wine
    ):
        path = tmp_path / "m.safetensors"
        result, out = run("train", *source, "--epochs", 1, "--save", path)
        assert result.exit_code == 0, out
        params = load_model(path)[2]["params"]
        assert {name: params[name] for name in expected} == expected


def test_tune_takes_the_same_fallbacks_as_train(csv_file, tmp_path):
    from stableresnet import StableResNetClassifier

    estimator = StableResNetClassifier().get_params()
    for source, expected in (
        (("--data", csv_file, "--target", "label"), {"width": estimator["width"],
                                                     "learning_rate": estimator["learning_rate"]}),
        (("--dataset", "wine"), {"depth": 20, "width": 13, "batch_size": 10, "learning_rate": 1e-3}),
    ):
        path = tmp_path / "tuned.safetensors"
        result, out = run("tune", *source, "--blocks", "plain", "--step-sizes", 1, "--cv", 2, "--depth", 2,
                          "--epochs", 1, "--save", path, "--out", tmp_path / "tune")
        assert result.exit_code == 0, out
        params = load_model(path)[2]["params"]
        expected = {**expected, "depth": 2}  # given on the command line, it wins over both
        assert {name: params[name] for name in expected} == expected


def test_reproduce_lists_only_the_statements_of_the_figures_it_ran(tmp_path):
    """Figure 1 is the data alone: the paper states nothing there, so no table of 27 "not run" rows."""
    result, out = run("reproduce", "--only", "fig1", "--out", tmp_path / "run")
    assert result.exit_code == 0, out
    assert "No statement of the paper is in these figures" in out
    assert "not run" not in out and "paper vs. here" not in out
    assert "1 figures in" in out
