"""Stable ResNets beside what a tabular practitioner picks instead, on the same folds, in one run.

    .venv/bin/python benchmarks/bench_tabular.py            # 8 data sets × 5 models × 5 folds
    .venv/bin/python benchmarks/bench_tabular.py --quick    # smoke run: 2 folds, wine and breast_cancer, 5 epochs
    .venv/bin/python benchmarks/bench_tabular.py --datasets abalone,digits --models resnet,hist-gb

It answers "when should a tabular practitioner use a stable ResNet?". StableResNetClassifier() with
its defaults and StableResNetClassifierCV (block and h chosen by inner cross-validation) stand beside
HistGradientBoostingClassifier, an MLPClassifier and LogisticRegressionCV, the last two after a
StandardScaler (the stable ResNets standardise their inputs themselves); every model has its
defaults and random_state=0 where it takes one. On each data set every model gets the same folds,
StratifiedKFold(5, shuffle=True, random_state=0), and a fresh fit per fold.

Data sets: the five bundled UCI sets (their seed-0 train and test splits joined into one X, y; Autism
without its `result` column, which gives the label away) and
scikit-learn's wine, breast cancer and digits. Adult is a stratified subsample of ADULT_ROWS of its
48 842 rows (seed 0): all of it × 5 folds × the CV grid would take hours. scikit-learn's wine holds
the same 178 rows as the UCI wine file in another order, so the two differ only in their folds.

StableResNetClassifierCV searches CV_GRID, 3 blocks × 4 h × 2 inner folds, not its default
3 blocks × 10 h × 5 inner folds: timed on one torch thread (AMD EPYC), one outer fold of abalone
takes 85 s with CV_GRID and 530 s with the default grid, which puts the whole run at about
27 minutes instead of about 2.5 hours. The run prints the grid it used.

Per fold it records test accuracy and the fit and predict wall seconds (time.perf_counter). torch
and the other models' native thread pools (threadpoolctl) get --threads threads; run it alone on the
machine, or with --threads 1 on a busy one: on a 2-core machine busy with other work, 2 threads
thrash (a wine fit took 17 times as long as on 1 thread). It prints a table
(mean ± std accuracy over folds, mean fit seconds) and keeps every fold, the command, date, machine
and settings as JSON (``record.save``) in --out; the documentation's "When to use it" page is
generated from ``benchmarks/results/bench_tabular.json``, so a --quick run writes to the temporary
folder unless --out is given.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from record import default_path, save
from stableresnet import ConfigError, StableResNetClassifier, StableResNetClassifierCV
from stableresnet.data import load_dataset
from stableresnet.files import check_output_folder

SEED = 0  # of the folds, the adult subsample and every model
FOLDS = 5
ADULT_ROWS = 5000
# StableResNetClassifierCV's default blocks, every third of its default h (0.1, 0.2, ..., 1.0), 2 inner folds.
CV_GRID = {"blocks": ("plain", "shrinkage", "batchnorm"), "step_sizes": (0.1, 0.4, 0.7, 1.0), "cv": 2}
QUICK_FOLDS = 2
QUICK_DATASETS = ("wine", "breast_cancer")
QUICK_EPOCHS = 5
QUICK_CV_GRID = {"blocks": ("plain", "shrinkage"), "step_sizes": (0.1, 0.5), "cv": 2}
QUICK_OUT = Path(tempfile.gettempdir()) / "bench_tabular-quick.json"


def uci(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A bundled UCI set's seed-0 train and test splits joined into one X, y."""
    data = load_dataset(name, seed=SEED)
    return np.concatenate([data.X_train, data.X_test]), np.concatenate([data.y_train, data.y_test])


def adult_subsample() -> tuple[np.ndarray, np.ndarray]:
    """ADULT_ROWS rows of adult, drawn stratified by class with seed SEED."""
    X, y = uci("adult")
    X, _, y, _ = train_test_split(X, y, train_size=ADULT_ROWS, stratify=y, random_state=SEED)
    return X, y


DATASETS = {  # name -> (source, loader returning X, y)
    "wine": ("uci bundled", lambda: uci("wine")),
    "abalone": ("uci bundled", lambda: uci("abalone")),
    "absenteeism": ("uci bundled", lambda: uci("absenteeism")),
    # Autism without its `result` column, which is the label's own formula (the sum of A1-A10 ≥ 7).
    "autism-noleak": ("uci bundled", lambda: uci("autism-noleak")),
    "adult": ("uci bundled", adult_subsample),
    "sklearn_wine": ("scikit-learn", lambda: load_wine(return_X_y=True)),
    "breast_cancer": ("scikit-learn", lambda: load_breast_cancer(return_X_y=True)),
    "digits": ("scikit-learn", lambda: load_digits(return_X_y=True)),
}


def resnet_epochs(quick: bool) -> int:
    """Epochs of both stable ResNets: the classifier's default, or QUICK_EPOCHS."""
    return QUICK_EPOCHS if quick else StableResNetClassifier().epochs


def cv_grid(quick: bool) -> dict:
    """StableResNetClassifierCV's blocks, step sizes and inner folds for this run."""
    return QUICK_CV_GRID if quick else CV_GRID


MODELS = {  # short name (--models) -> factory of a fresh model, given the quick flag
    "resnet": lambda quick: StableResNetClassifier(epochs=resnet_epochs(quick), random_state=SEED),
    "resnet-cv": lambda quick: StableResNetClassifierCV(**cv_grid(quick), epochs=resnet_epochs(quick),
                                                        random_state=SEED),
    "hist-gb": lambda quick: HistGradientBoostingClassifier(random_state=SEED),
    "mlp": lambda quick: make_pipeline(StandardScaler(), MLPClassifier(random_state=SEED, max_iter=500)),
    "logreg-cv": lambda quick: make_pipeline(StandardScaler(), LogisticRegressionCV(max_iter=2000)),
}


def class_name(model) -> str:
    """The model's name in the JSON: its class, or for a pipeline its last step's class."""
    return type(model[-1] if isinstance(model, Pipeline) else model).__name__


def names_in(registry: dict):
    """An argparse type: a comma list of keys of ``registry``, refusing any other name."""
    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
        unknown = [name for name in names if name not in registry]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown name(s) {unknown} in {text!r}; expected a comma list of {', '.join(registry)}")
        return names
    return parse


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return int(text)


def cross_validate(make_model, X: np.ndarray, y: np.ndarray, folds: list) -> dict:
    """Test accuracy, fit seconds and predict seconds of a fresh model on each fold."""
    record = {"fold_accuracy": [], "fold_fit_seconds": [], "fold_predict_seconds": []}
    for train, test in folds:
        model = make_model()
        started = time.perf_counter()
        model.fit(X[train], y[train])
        fitted = time.perf_counter()
        predicted = model.predict(X[test])
        record["fold_predict_seconds"].append(time.perf_counter() - fitted)
        record["fold_fit_seconds"].append(fitted - started)
        record["fold_accuracy"].append(float(accuracy_score(y[test], predicted)))
    return record


def run(datasets: list[str], models: list[str], n_folds: int, quick: bool) -> list[dict]:
    """One row per (data set, model) with every fold's test accuracy, fit and predict seconds."""
    # PyTorch's first calls pay one-off set-up costs; no timed fit should hold them.
    for block in cv_grid(quick)["blocks"]:
        StableResNetClassifier(block=block, depth=2, epochs=1, random_state=SEED).fit(np.eye(4), [0, 1, 0, 1])
    rows = []
    for dataset in datasets:
        source, load = DATASETS[dataset]
        X, y = load()
        folds = list(StratifiedKFold(n_folds, shuffle=True, random_state=SEED).split(X, y))
        for model in models:
            record = cross_validate(lambda: MODELS[model](quick), X, y, folds)
            rows.append({"dataset": dataset, "source": source, "n_rows": len(y), "n_features": X.shape[1],
                         "n_classes": len(np.unique(y)), "model": class_name(MODELS[model](quick)), **record})
            print(f"  {dataset:14}{model:10} accuracy {np.mean(record['fold_accuracy']):.3f}, "
                  f"fit {np.mean(record['fold_fit_seconds']):.1f} s per fold", flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    """Data set × model: mean ± std test accuracy over folds, and the mean fit seconds."""
    datasets, models = (list(dict.fromkeys(row[key] for row in rows)) for key in ("dataset", "model"))
    widths = [max(24, len(model) + 2) for model in models]
    cell = {(row["dataset"], row["model"]): row for row in rows}
    print(f"\nTest accuracy, mean ± std over folds (mean fit seconds)\n{'':14}"
          + "".join(f"{model:>{width}}" for model, width in zip(models, widths)))
    for dataset in datasets:
        line = f"{dataset:14}"
        for model, width in zip(models, widths):
            accuracy, fit_seconds = cell[dataset, model]["fold_accuracy"], cell[dataset, model]["fold_fit_seconds"]
            line += f"{f'{np.mean(accuracy):.3f} ± {np.std(accuracy):.3f} {np.mean(fit_seconds):6.1f} s':>{width}}"
        print(line)


def notes(datasets: list[str], models: list[str], quick: bool) -> str:
    """What a reader of the numbers must know about this run's data and models."""
    grid, default = cv_grid(quick), StableResNetClassifierCV().get_params()
    sentences = [f"Models: {'; '.join(f'{name} = {MODELS[name](quick)!r}' for name in models)}."]
    if "adult" in datasets:
        sentences.append(f"adult is a stratified subsample of {ADULT_ROWS} of its 48 842 rows (seed {SEED}).")
    if "resnet-cv" in models:
        sentences.append(f"StableResNetClassifierCV searches {len(grid['blocks'])} blocks {grid['blocks']} × "
                     f"{len(grid['step_sizes'])} h {grid['step_sizes']} × {grid['cv']} inner folds, not its default "
                     f"{len(default['blocks'])} × {len(default['step_sizes'])} × {default['cv']}, "
                     "to keep the run short.")
    if {"wine", "sklearn_wine"} <= set(datasets):
        sentences.append("wine and sklearn_wine hold the same 178 rows in another order: only their folds differ.")
    return " ".join(" ".join(sentence.split()) for sentence in sentences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=names_in(DATASETS),
                        help=f"comma list of {', '.join(DATASETS)} (default: all; with --quick: "
                             f"{', '.join(QUICK_DATASETS)})")
    parser.add_argument("--models", type=names_in(MODELS), default=list(MODELS),
                        help=f"comma list of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--out", type=Path, help=f"JSON file of every fold (default: {default_path(__file__)}; "
                                                 f"with --quick: {QUICK_OUT})")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch and native threads (default: 2)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_FOLDS} folds, {QUICK_EPOCHS} epochs, a tiny CV grid")
    args = parser.parse_args()
    out = args.out or (QUICK_OUT if args.quick else default_path(__file__))
    # Refuse an unwritable --out now rather than after the run.
    if out.is_dir():
        parser.error(f"--out {str(out)!r} is a folder; give a JSON file name, e.g. {str(out / QUICK_OUT.name)!r}")
    try:
        check_output_folder(out.parent, "the folder of --out")
    except ConfigError as error:
        parser.error(str(error))
    datasets = args.datasets or list(QUICK_DATASETS if args.quick else DATASETS)
    n_folds = QUICK_FOLDS if args.quick else FOLDS
    grid = cv_grid(args.quick)
    settings = {"folds": n_folds, "seed": SEED, "adult rows": ADULT_ROWS, "resnet epochs": resnet_epochs(args.quick),
                "resnet-cv grid": {"blocks": list(grid["blocks"]), "step_sizes": list(grid["step_sizes"]),
                                   "inner folds": grid["cv"]},
                "threads": args.threads, "quick": args.quick}
    about = notes(datasets, args.models, args.quick)
    print(f"{len(datasets)} data set(s) × {len(args.models)} model(s) × StratifiedKFold({n_folds}, shuffle=True, "
          f"random_state={SEED}); {args.threads} thread(s); stable ResNets {settings['resnet epochs']} epochs\n{about}")

    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads), warnings.catch_warnings():
        # LogisticRegressionCV warns on every fit of defaults changing in later releases; the JSON records the version.
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn.linear_model")
        rows = run(datasets, args.models, n_folds, args.quick)

    print_table(rows)
    save(out, f"Stable ResNets beside scikit-learn's tabular models: {len(datasets)} data sets, {n_folds} folds",
         rows, settings, about)


if __name__ == "__main__":
    main()
