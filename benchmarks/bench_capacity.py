"""Capacity: member-steps per second of the sweep engine, and how long the paper's full grid takes.

    .venv/bin/python benchmarks/bench_capacity.py [--device cpu|cuda] [--workers 1,4,16] [--datasets wine,adult]
    .venv/bin/python benchmarks/bench_capacity.py --max-steps 20   # time 20 batches per group, scaled to the epoch

For each UCI dataset and the synthetic data at the paper's settings (3 blocks × 10 h × 10 trials,
its depth, width, batch size and epochs), one epoch of each block type's 100-member group is timed
here. The full sweep's time is that epoch time × the paper's epochs, summed over blocks. With N Ray
workers the groups run in parallel (3 per dataset, 18 in all), so the projection is the longest
path of the groups on N workers (greedy, longest first); that assumes each worker is a machine
like this one. A member-step is one member's mini-batch update through all its blocks.
``--max-steps`` times only the first batches of each epoch and scales to the whole epoch (a shorter
run; the default times whole epochs). Peak memory is printed at the end.
"""

from __future__ import annotations

import argparse
import heapq
import resource
import time

import torch

from stableresnet.experiments.sweep import SweepConfig, TrialData, groups
from stableresnet.model import StableResNet
from stableresnet.train import TrainConfig, fit

DATASETS = ("circles", "wine", "abalone", "absenteeism", "autism", "adult")


def epoch_seconds(config: SweepConfig, data: TrialData, block: str, device: str,
                  max_steps: int | None = None) -> tuple[float, int]:
    """Seconds of one training epoch of one block type's whole group, and its member-steps.

    With ``max_steps`` only that many batches are timed and the time is scaled to the epoch.
    """
    group = next(g for g in groups(config) if g.block == block)
    model = StableResNet(
        data.n_features, data.n_classes, config.depth, config.width, block,
        step_size=[h for _, h in group.members], seed=list(range(len(group.members))),
    ).to(device)
    rows = data.rows(group, "train")
    steps = -(-rows.shape[1] // config.batch_size)
    timed_steps = min(steps, max_steps or steps)
    one_epoch = TrainConfig(1, config.batch_size, config.learning_rate)
    started = time.perf_counter()
    fit(model, data.X, data.y, one_epoch, train_index=rows[:, : timed_steps * config.batch_size])
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) * steps / timed_steps
    return seconds, steps * len(group.members)


def longest_path(durations: list[float], workers: int) -> float:
    """Makespan of the groups on ``workers`` workers, each group going to the first free one."""
    finish = [0.0] * workers
    for duration in sorted(durations, reverse=True):
        heapq.heappush(finish, heapq.heappop(finish) + duration)
    return max(finish)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", default="1,4,18")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="a subset projects only those datasets")
    parser.add_argument("--max-steps", type=int, default=None, help="batches timed per group (scaled to the epoch)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads")
    print(f"{'dataset':12} {'depth':>5} {'width':>5} {'batch':>5} {'epochs':>6} {'member-steps/s':>15} {'full sweep':>11}")
    group_seconds = []
    for name in args.datasets.split(","):
        config = SweepConfig.from_preset(name)
        data = TrialData(config)
        total, rates = 0.0, []
        for block in config.blocks:
            seconds, member_steps = epoch_seconds(config, data, block, args.device, args.max_steps)
            rates.append(member_steps / seconds)
            group_seconds.append(seconds * config.epochs)
            total += seconds * config.epochs
        print(f"{name:12} {config.depth:>5} {config.width:>5} {config.batch_size:>5} {config.epochs:>6} "
              f"{sum(rates) / len(rates):>15,.0f} {total / 60:>9.1f} min")
    for workers in (int(w) for w in args.workers.split(",")):
        print(f"full grid ({len(args.datasets.split(','))} datasets × 300 members) on {workers:>2} worker(s): "
              f"{longest_path(group_seconds, workers) / 60:.1f} min")
    peak = f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    if torch.cuda.is_initialized():
        peak += f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    print(peak)


if __name__ == "__main__":
    main()
