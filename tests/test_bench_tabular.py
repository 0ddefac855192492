"""benchmarks/bench_tabular.py: its quick run keeps the documented JSON, and its folds are sklearn's."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stableresnet.data import load_dataset

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_tabular():
    """The script as a module (benchmarks/ is not a package; the script imports its sibling record.py).

    torch's thread count, which the script sets, is restored afterwards.
    """
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location("bench_tabular", BENCHMARKS / "bench_tabular.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    torch.set_num_threads(threads)


def run_script(bench_tabular, monkeypatch, *options):
    """``main()`` as ``python benchmarks/bench_tabular.py OPTIONS`` would run it."""
    monkeypatch.setattr(sys, "argv", ["benchmarks/bench_tabular.py", *options])
    bench_tabular.main()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # LogisticRegressionCV announcing its next defaults
def test_quick_run_keeps_every_fold_and_logreg_matches_cross_val_score(bench_tabular, monkeypatch, tmp_path):
    out = tmp_path / "results" / "bench.json"
    run_script(bench_tabular, monkeypatch, "--quick", "--datasets", "wine", "--models", "resnet,logreg-cv",
               "--out", str(out), "--threads", "1")
    record = json.loads(out.read_text())

    assert {"benchmark", "command", "date", "machine", "settings", "rows", "notes"} <= set(record)
    assert record["benchmark"] == "bench_tabular"
    assert record["command"].endswith(f"benchmarks/bench_tabular.py --quick --datasets wine --models resnet,logreg-cv "
                                      f"--out {out} --threads 1")
    assert {"cpu", "logical cores", "torch threads", "python", "torch", "scikit-learn", "numpy",
            "platform"} <= set(record["machine"])
    assert record["settings"]["folds"] == bench_tabular.QUICK_FOLDS
    rows = record["rows"]
    assert [(row["dataset"], row["model"]) for row in rows] == [("wine", "StableResNetClassifier"),
                                                                ("wine", "LogisticRegressionCV")]
    for row in rows:
        assert (row["source"], row["n_rows"], row["n_features"], row["n_classes"]) == ("uci bundled", 178, 13, 3)
        for key in ("fold_accuracy", "fold_fit_seconds", "fold_predict_seconds"):
            assert len(row[key]) == bench_tabular.QUICK_FOLDS
        assert all(0.0 <= accuracy <= 1.0 for accuracy in row["fold_accuracy"])
        assert all(seconds > 0 for seconds in row["fold_fit_seconds"] + row["fold_predict_seconds"])

    # Independently of the script: the same rows, sklearn's own fold loop.
    wine = load_dataset("wine", seed=0)
    X, y = np.concatenate([wine.X_train, wine.X_test]), np.concatenate([wine.y_train, wine.y_test])
    expected = cross_val_score(make_pipeline(StandardScaler(), LogisticRegressionCV(max_iter=2000)), X, y,
                               cv=StratifiedKFold(bench_tabular.QUICK_FOLDS, shuffle=True, random_state=0))
    assert rows[1]["fold_accuracy"] == expected.tolist()


@pytest.mark.parametrize("option, value, named", [
    ("--datasets", "wine,iris", "iris"),
    ("--models", "resnet,xgboost", "xgboost"),
    ("--threads", "0", "'0'"),
])
def test_bad_option_values_are_refused_by_name(bench_tabular, monkeypatch, tmp_path, capsys, option, value, named):
    with pytest.raises(SystemExit):
        run_script(bench_tabular, monkeypatch, option, value, "--out", str(tmp_path / "bench.json"))
    message = capsys.readouterr().err
    assert option in message and named in message


def test_an_out_that_is_a_folder_is_refused_before_any_fit(bench_tabular, monkeypatch, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_script(bench_tabular, monkeypatch, "--out", str(tmp_path))
    assert "is a folder" in capsys.readouterr().err
