"""StableResNetClassifierCV against an explicit loop of single fits, its selection rules, and `stableresnet tune`."""

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks
from typer.testing import CliRunner

from stableresnet import StableResNetClassifier, StableResNetClassifierCV
from stableresnet.cli import app
from stableresnet.data import load_table
from stableresnet.tuning import select_best, select_one_standard_error

TINY = dict(depth=3, epochs=3, batch_size=16, learning_rate=1e-2)
BLOCKS = ("plain", "shrinkage", "batchnorm")
# h = 1e30 diverges at the first step, so one candidate scores with its initial weights.
STEP_SIZES = (0.1, 1.0, 1e30)


@parametrize_with_checks([StableResNetClassifierCV(blocks=("plain",), step_sizes=(0.1, 1.0), cv=2, depth=3, epochs=30,
                                                  batch_size=16, learning_rate=1e-2, random_state=0)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def search(iris):
    X, y = iris
    return StableResNetClassifierCV(blocks=BLOCKS, step_sizes=STEP_SIZES, cv=4, random_state=0, **TINY).fit(X, y)


def test_every_member_scores_as_a_single_fit_on_its_fold_and_the_choice_matches(iris, search):
    X, y = iris
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(X, y))
    assert {len(train) for train, _ in folds} == {112, 113}  # two training-set sizes: two groups per block
    loop = {}
    for block in BLOCKS:
        for h in STEP_SIZES:
            fits = [StableResNetClassifier(block=block, step_size=h, random_state=0, **TINY).fit(X[train], y[train])
                    for train, _ in folds]
            loop[block, h] = ([clf.score(X[test], y[test]) for clf, (_, test) in zip(fits, folds)],
                              sum(clf.diverged_ for clf in fits))
    results = search.cv_results_
    for i, (block, h) in enumerate(zip(results["param_block"], results["param_step_size"])):
        scores, n_diverged = loop[block, h]
        assert [results[f"split{k}_test_score"][i] for k in range(4)] == scores, (block, h)
        assert results["diverged_folds"][i] == n_diverged
    assert results["diverged_folds"][list(results["param_step_size"]).index(1e30)] == 4
    # The loop's choice, written out: highest mean, then smaller h, then block order.
    means = {key: np.mean(scores) for key, (scores, _) in loop.items()}
    chosen = min(means, key=lambda key: (-round(means[key], 12), key[1], BLOCKS.index(key[0])))
    assert (search.best_block_, search.best_step_size_) == chosen
    assert search.best_score_ == pytest.approx(means[chosen])


def test_summaries_are_those_of_the_fold_scores(search):
    results = search.cv_results_
    splits = np.column_stack([results[f"split{k}_test_score"] for k in range(4)])
    np.testing.assert_allclose(results["mean_test_score"], splits.sum(axis=1) / 4)
    np.testing.assert_allclose(results["std_test_score"], np.sqrt(((splits - splits.mean(1, keepdims=True)) ** 2).mean(1)))
    np.testing.assert_allclose(results["sem_test_score"], splits.std(axis=1, ddof=1) / 2)
    best_mean = results["mean_test_score"].max()
    assert results["rank_test_score"][results["mean_test_score"] == best_mean].tolist() == [1] * int(
        (results["mean_test_score"] == best_mean).sum())


def test_the_refit_is_the_chosen_single_classifier_on_all_rows(iris, search):
    X, y = iris
    alone = StableResNetClassifier(block=search.best_block_, step_size=search.best_step_size_, random_state=0,
                                   **TINY).fit(X, y)
    np.testing.assert_array_equal(search.predict(X), alone.predict(X))
    np.testing.assert_array_equal(search.predict_proba(X), alone.predict_proba(X))
    assert search.score(X, y) == alone.score(X, y)
    np.testing.assert_array_equal(search.classes_, [0, 1, 2])


def test_rules_on_hand_made_scores():
    block = np.array(["plain", "plain", "plain"], dtype=object)
    h = np.array([0.1, 0.5, 0.2])
    mean, std = np.array([0.90, 0.92, 0.91]), np.array([0.01, 0.02, 0.03])
    assert select_best(mean, std, np.array([0.03, 0.03, 0.01]), h, block) == 1
    # Threshold 0.92 − 0.03 = 0.89: all eligible, the smallest h is 0.1.
    assert select_one_standard_error(mean, std, np.array([0.01, 0.03, 0.01]), h, block) == 0
    # Threshold 0.92 − 0.015 = 0.905: h = 0.5 and 0.2 are eligible, 0.2 is smaller.
    assert select_one_standard_error(mean, std, np.array([0.01, 0.015, 0.01]), h, block) == 2


def test_rule_ties():
    blocks = np.array(["shrinkage", "plain", "shrinkage", "plain"], dtype=object)  # block order: shrinkage first
    h = np.array([0.5, 0.5, 0.3, 0.3])
    # Best: four equal means; the smaller h (0.3), then the earlier block (shrinkage).
    mean, std, sem = np.full(4, 0.8), np.array([0.1, 0.1, 0.2, 0.1]), np.full(4, 0.0)
    assert select_best(mean, std, sem, h, blocks) == 2
    # One-SE: both h = 0.3 are eligible; the lower std (plain) wins over the earlier block.
    assert select_one_standard_error(mean, std, sem, h, blocks) == 3


def test_one_se_rule_chooses_within_one_standard_error(iris):
    X, y = iris
    search = StableResNetClassifierCV(blocks=("plain", "batchnorm"), step_sizes=(0.1, 1.0, 10.0), cv=3,
                                      rule="one-se", random_state=0, **TINY).fit(X, y)
    results, best = search.cv_results_, search.best_index_
    top = np.argmax(results["mean_test_score"])
    assert results["mean_test_score"][best] >= results["mean_test_score"][top] - results["sem_test_score"][top] - 1e-12
    eligible = results["mean_test_score"] >= results["mean_test_score"][top] - results["sem_test_score"][top] - 1e-12
    assert search.best_step_size_ == results["param_step_size"][eligible].min()


def test_defaults_follow_the_classifier():
    single = inspect.signature(StableResNetClassifier).parameters
    tuned = inspect.signature(StableResNetClassifierCV).parameters
    for name, parameter in single.items():
        if name not in ("block", "step_size"):
            assert tuned[name].default == parameter.default, name
    assert clone(StableResNetClassifierCV(cv=3, depth=2)).get_params()["depth"] == 2


@pytest.mark.parametrize("params, message", [
    (dict(blocks=("dense",)), "unknown block"), (dict(blocks=()), "at least one block"),
    (dict(step_sizes=(0.1, 0.0)), "h must be a finite number > 0"), (dict(step_sizes=(0.1, 0.1)), "repeat"),
    (dict(cv=1), "cv must be an integer"), (dict(rule="median"), "unknown rule"), (dict(depth=0), "depth"),
])
def test_bad_settings_fail_at_fit(iris, params, message):
    search = StableResNetClassifierCV(**{**TINY, **params})  # __init__ only stores
    with pytest.raises(ValueError, match=message):
        search.fit(*iris)


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_a_class_missing_from_a_training_fold_is_refused(iris):
    X, y = iris
    X, y = X[:101], y[:101]  # class 2 has a single row: one fold's training rows lack it
    with pytest.raises(ValueError, match="no training row of class 2"):
        StableResNetClassifierCV(blocks=("plain",), step_sizes=(0.1,), cv=3, **TINY).fit(X, y)


def test_save_delegates_to_the_best_estimator(iris, search, tmp_path):
    X, _ = iris
    loaded = StableResNetClassifier.load(search.save(tmp_path / "best.safetensors"))
    np.testing.assert_array_equal(loaded.predict(X), search.predict(X))
    assert (loaded.block, loaded.step_size) == (search.best_block_, search.best_step_size_)


runner = CliRunner()


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["colour"] = rng.choice(["red", "blue"], size=90)
    frame["label"] = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


CLI_GRID = ["--blocks", "plain,shrinkage", "--step-sizes", "0.1,1.0", "--cv", "3", "--depth", "2", "--epochs", "2",
            "--lr", "0.01"]


def test_tune_command_reports_writes_and_saves_what_the_library_chooses(csv_file, tmp_path):
    model_path, out = tmp_path / "model.safetensors", tmp_path / "tune"
    result = runner.invoke(app, ["tune", "--data", str(csv_file), "--target", "label", *CLI_GRID,
                                 "--save", str(model_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "cv_results.csv")
    assert len(table) == 4 and table["chosen"].sum() == 1 and (out / "tune.png").stat().st_size > 0

    data = load_table(csv_file, "label", seed=0)
    labels = np.array(data.class_names)
    search = StableResNetClassifierCV(blocks=("plain", "shrinkage"), step_sizes=(0.1, 1.0), cv=3, depth=2, epochs=2,
                                      learning_rate=0.01, random_state=0).fit(data.X_train, labels[data.y_train])
    np.testing.assert_allclose(table["mean_test_score"], search.cv_results_["mean_test_score"])
    chosen = table[table["chosen"]].iloc[0]
    assert (chosen["block"], chosen["step_size"]) == (search.best_block_, search.best_step_size_)
    assert f"test accuracy {search.score(data.X_test, labels[data.y_test]):.4f}" in result.output
    loaded = StableResNetClassifier.load(model_path)
    np.testing.assert_array_equal(loaded.predict(data.X_test), search.predict(data.X_test))
    assert loaded.schema_ is not None and loaded.schema_.feature_names == data.feature_names


@pytest.mark.parametrize("extra, message", [
    (["--save", "{tmp}"], "is a folder"),
    (["--save", "{tmp}/missing/model.safetensors"], "does not exist"),
    (["--rule", "median"], "unknown rule"),
    (["--step-sizes", "0.1,-1"], "h must be a finite number > 0"),
])
def test_tune_mistakes_are_one_line_exit_2_and_nothing_written(csv_file, tmp_path, extra, message):
    out = tmp_path / "tune"
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    result = runner.invoke(app, ["tune", "--data", str(csv_file), "--target", "label", *CLI_GRID, "--out", str(out), *args])
    assert result.exit_code == 2
    output = result.stdout + (result.stderr or "")
    assert message in output and len(output.strip().splitlines()) == 1, output
    assert not out.exists()


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_tune_refuses_a_class_too_rare_for_the_folds_in_one_line(tmp_path):
    path = tmp_path / "rare.csv"
    labels = ["a"] * 15 + ["b"] * 13 + ["c"] * 2  # a half/half split leaves one training row of "c"
    pd.DataFrame({"x": np.arange(30.0), "label": labels}).to_csv(path, index=False)
    result = runner.invoke(app, ["tune", "--data", str(path), "--target", "label", "--test-size", "0.5", *CLI_GRID,
                                 "--out", str(tmp_path / "o")])
    output = result.stdout + (result.stderr or "")
    assert result.exit_code == 2 and "no training row of class 'c'" in output, output
