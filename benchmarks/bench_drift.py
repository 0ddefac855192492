"""Drift experiment throughput: Parquet loading (rows/s) and batched training (rows/s) at the paper's shape.

    .venv/bin/python benchmarks/bench_drift.py                      # 2 M rows, depth 128, width 32, 3 members
    .venv/bin/python benchmarks/bench_drift.py --peak-memory 16500000  # the paper's size: peak RSS of a load

Loading: ``synthetic-btc`` rows written to a temporary Parquet file, then `load_transactions` (read,
validate, sort check, log1p features, months) timed end to end. Training: one epoch of a batched
StableResNet (batch 100 000, the paper's) over the loaded rows; rows/s counts every member's rows
(members × training rows / seconds). ``--peak-memory N`` generates N rows to Parquet in one
subprocess and loads them in a fresh one, reporting that process's peak resident memory
(``resource.getrusage``), so the generator's memory does not count.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from stableresnet import StableResNet, TrainConfig, fit
from stableresnet.data.transactions import load_transactions, synthetic_btc

LOAD_AND_REPORT = (
    "import resource, sys, time; from stableresnet.data.transactions import load_transactions; "
    "t = time.perf_counter(); data = load_transactions(sys.argv[1]); t = time.perf_counter() - t; "
    "print(len(data.y), t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def peak_memory(n_rows: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "tx.parquet"
        subprocess.run([sys.executable, "-c", f"from stableresnet.data.transactions import synthetic_btc; "
                        f"synthetic_btc({n_rows}, seed=0).to_parquet({str(path)!r})"], check=True)
        rows, seconds, max_rss_kib = subprocess.run(
            [sys.executable, "-c", LOAD_AND_REPORT, str(path)], check=True, capture_output=True, text=True
        ).stdout.split()
        print(f"peak memory loading {int(rows):,} rows from Parquet ({path.stat().st_size / 2**20:.0f} MiB file): "
              f"{int(max_rss_kib) / 2**20:.2f} GiB resident, in {float(seconds):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--members", type=int, default=3, help="batched members (e.g. h = 0.1, 0.5, 1)")
    parser.add_argument("--depth", type=int, default=128)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--train-rows", type=int, default=200_000, help="rows trained on for one epoch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--peak-memory", type=int, default=None, metavar="N", help="only measure a load of N rows")
    args = parser.parse_args()
    if args.peak_memory:
        peak_memory(args.peak_memory)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "tx.parquet"
        started = time.perf_counter()
        synthetic_btc(args.rows, seed=0).to_parquet(path)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        data = load_transactions(path)
        loaded = time.perf_counter() - started
    print(f"generate + write: {args.rows:,} rows in {generated:.2f} s ({args.rows / generated / 1e6:.2f} M rows/s)")
    print(f"load Parquet:     {args.rows:,} rows in {loaded:.2f} s ({args.rows / loaded / 1e6:.2f} M rows/s)")

    n_train = min(args.train_rows, len(data.y))
    X, y = torch.from_numpy(data.X[:n_train].copy()), torch.from_numpy(data.y[:n_train].copy())
    step_sizes = [0.1 + 0.9 * k / max(args.members - 1, 1) for k in range(args.members)]
    model = StableResNet(data.n_features, data.n_classes, args.depth, args.width, "plain",
                         step_size=step_sizes, seed=list(range(args.members))).to(args.device)
    config = TrainConfig(epochs=1, batch_size=args.batch_size)
    if args.device == "cuda":
        fit(model, X[: args.batch_size], y[: args.batch_size], config)  # warm-up: kernels, allocator
        torch.cuda.synchronize()
    started = time.perf_counter()
    fit(model, X, y, config)
    if args.device == "cuda":
        torch.cuda.synchronize()
    trained = time.perf_counter() - started
    rows = n_train * args.members
    print(f"train:            depth {args.depth}, width {args.width}, batch {args.batch_size:,}, {args.members} members, "
          f"{n_train:,} rows × 1 epoch in {trained:.1f} s ({rows / trained:,.0f} member-rows/s, "
          f"{n_train / trained:,.0f} rows/s of data)")
    print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
