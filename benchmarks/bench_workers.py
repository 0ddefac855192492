"""Each data set's paper sweep in one stream of groups against ``--workers 2``, side by side in one run.

    .venv/bin/python benchmarks/bench_workers.py                          # the six paper sets, 1 epoch each
    .venv/bin/python benchmarks/bench_workers.py --datasets wine --epochs 50

One stream is ``run_sweep(config, ...)``: the groups one after another, each using torch's threads
(2 on this machine). Workers is ``run_sweep(config, ..., workers=N)``: N groups at once, each on
one torch thread, batch-norm groups first. Both train the paper preset's 300 networks of each data
set with the epochs cut to ``--epochs`` (every epoch costs the same, so the ratio holds for the
whole sweep), from a fresh folder, and the two tables are compared (wall-clock seconds aside).
Each is timed ``--repeats`` times, alternating, and the fastest is shown (the first run of a
process also pays for loading data and warming up).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from stableresnet.experiments.sweep import SweepConfig, run_sweep

PAPER_SETS = ("circles", "wine", "abalone", "absenteeism", "autism", "adult")


def timed_sweep(config: SweepConfig, workers: int):
    """(seconds, table) of the whole sweep into a fresh folder."""
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        table = run_sweep(config, directory, workers=workers)
        return time.perf_counter() - started, table.drop(columns="seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(PAPER_SETS))
    parser.add_argument("--epochs", type=int, default=1, help="epochs per sweep (the preset's are cut to this)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timings of each, alternating; the fastest is shown")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; paper sweeps (300 networks) at "
          f"{args.epochs} epoch(s), one stream against {args.workers} worker threads")
    print(f"{'dataset':12} {'one stream':>11} {f'{args.workers} workers':>11} {'speed-up':>9}  table")
    for dataset in args.datasets.split(","):
        config = SweepConfig.from_preset(dataset, epochs=args.epochs)
        alone = together = float("inf")
        for _ in range(args.repeats):
            seconds, alone_table = timed_sweep(config, 1)
            alone = min(alone, seconds)
            seconds, together_table = timed_sweep(config, args.workers)
            together = min(together, seconds)
        same = "the same" if together_table.equals(alone_table) else "ANOTHER"
        print(f"{dataset:12} {alone:>9.1f} s {together:>9.1f} s {alone / together:>8.2f}x  {same}", flush=True)


if __name__ == "__main__":
    main()
