"""StableResNetClassifierCV against GridSearchCV over StableResNetClassifier, side by side on one grid.

    .venv/bin/python benchmarks/bench_tune.py                 # Wine, 3 blocks × 10 h × 5 folds, 10 epochs
    .venv/bin/python benchmarks/bench_tune.py --epochs 50     # the paper's epochs (~5× longer)

Both search the same grid on Wine's training split (the paper's depth 20, width 13, batch 10) with
the same folds, StratifiedKFold(5, shuffle=True, random_state=seed), and refit the chosen (block, h)
on all training rows. GridSearchCV trains the 150 fold networks one after another;
StableResNetClassifierCV trains them as batched ensembles, one per block type and training-set size.
Both run on the same number of threads (default 1: on a shared 2-core machine, 2 threads per process
thrash), and CPU time is printed beside wall time: on a shared machine it depends less on what
else runs. The printout gives both times, the ratio, both choices and how far their CV scores differ.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from record import default_path, save
from stableresnet import StableResNetClassifier, StableResNetClassifierCV
from stableresnet.data import load_dataset, paper_preset
from stableresnet.cli.common import parse_step_sizes
from stableresnet.tuning import select_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--blocks", default="plain,shrinkage,batchnorm")
    parser.add_argument("--step-sizes", default="0.1:1.0:0.1")
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=default_path(__file__), help="where the table is kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    preset = paper_preset("wine")
    wine = load_dataset("wine", seed=args.seed)
    X, y = wine.X_train, wine.y_train
    blocks, step_sizes = tuple(args.blocks.split(",")), parse_step_sizes(args.step_sizes)
    network = dict(depth=preset.depth, width=preset.width, batch_size=preset.batch_size, epochs=args.epochs,
                   random_state=args.seed)
    print(f"wine: {len(y)} training rows; {len(blocks)} blocks × {len(step_sizes)} h × {args.cv} folds "
          f"= {len(blocks) * len(step_sizes) * args.cv} networks + 1 refit; depth {preset.depth}, "
          f"width {preset.width}, batch {preset.batch_size}, {args.epochs} epochs, {args.threads} thread(s)")

    # PyTorch's first calls pay one-off set-up costs (seconds); neither clock should hold them.
    for block in blocks:
        StableResNetClassifier(**{**network, "block": block, "depth": 2, "epochs": 1}).fit(X, y)

    started, cpu_started = time.perf_counter(), time.process_time()
    search = StableResNetClassifierCV(blocks=blocks, step_sizes=step_sizes, cv=args.cv, **network).fit(X, y)
    batched_seconds, batched_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"StableResNetClassifierCV: {batched_seconds:7.1f} s wall, {batched_cpu:7.1f} s CPU; chose {search.best_block_}, "
          f"h = {search.best_step_size_:g} (CV accuracy {search.best_score_:.4f})")

    started, cpu_started = time.perf_counter(), time.process_time()
    grid = GridSearchCV(StableResNetClassifier(**network), {"block": list(blocks), "step_size": list(step_sizes)},
                        cv=StratifiedKFold(args.cv, shuffle=True, random_state=args.seed)).fit(X, y)
    grid_seconds, grid_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"GridSearchCV:             {grid_seconds:7.1f} s wall, {grid_cpu:7.1f} s CPU; chose {grid.best_params_['block']}, "
          f"h = {grid.best_params_['step_size']:g} (CV accuracy {grid.best_score_:.4f})")

    # Match candidates by (block, h), then compare fold by fold.
    position = {(p["block"], p["step_size"]): i for i, p in enumerate(grid.cv_results_["params"])}
    order = [position[p["block"], p["step_size"]] for p in search.cv_results_["params"]]
    folds = [f"split{k}_test_score" for k in range(args.cv)]
    ours = np.column_stack([search.cv_results_[f] for f in folds])
    theirs = np.column_stack([grid.cv_results_[f][order] for f in folds])
    results = search.cv_results_
    # GridSearchCV breaks ties by candidate order; the same tie rule on its scores isolates that difference.
    grid_by_our_rule = select_best(theirs.mean(axis=1), theirs.std(axis=1),
                                   theirs.std(axis=1, ddof=1) / np.sqrt(args.cv),
                                   results["param_step_size"], results["param_block"])
    print(f"speed-up: {grid_seconds / batched_seconds:.1f}× wall-clock, {grid_cpu / batched_cpu:.1f}× CPU time")
    equal = (ours == theirs).all(axis=1)
    for block in blocks:
        mine = results["param_block"] == block
        print(f"{block}: fold scores equal for {int(equal[mine].sum())} of {int(mine.sum())} h "
              f"(largest difference {np.abs(ours - theirs)[mine].max():.4f})")
    print(f"same (block, h) chosen: {search.best_params_ == grid.best_params_}; "
          f"with our tie rule (smaller h, then block order) on GridSearchCV's scores: "
          f"{grid_by_our_rule == search.best_index_}")
    rows = [{"search": "StableResNetClassifierCV (batched)", "wall s": batched_seconds, "CPU s": batched_cpu,
             "chosen": f"{search.best_block_}, h = {search.best_step_size_:g}", "CV accuracy": search.best_score_,
             "speed-up": grid_seconds / batched_seconds},
            {"search": "GridSearchCV over StableResNetClassifier", "wall s": grid_seconds, "CPU s": grid_cpu,
             "chosen": f"{grid.best_params_['block']}, h = {grid.best_params_['step_size']:g}",
             "CV accuracy": grid.best_score_, "speed-up": 1.0}]
    save(args.json, f"Choosing block and h on Wine: {len(blocks)} blocks × {len(step_sizes)} h × {args.cv} folds",
         rows, {"epochs": args.epochs, "folds": args.cv, "threads": args.threads, "seed": args.seed,
                "fold scores equal (plain, shrinkage, batch norm h)": {
                    block: f"{int(equal[results['param_block'] == block].sum())} of "
                           f"{int((results['param_block'] == block).sum())}" for block in blocks}})


if __name__ == "__main__":
    main()
