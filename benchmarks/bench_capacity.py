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

Each group first trains once over one full and one tail batch, untimed (a warm-up: the device's
first-use costs stay out of the timing). ``--compile`` trains through ``torch.compile``
(``TrainConfig(compile=True)``): the warm-up compiles, and its time is printed and added once per
group to the projection; then the steps are timed as above. ``--compare`` runs both, eager
and compiled, group by group in the same run and prints their ratio.
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
                  max_steps: int | None = None, compile: bool = False) -> tuple[float, int, float]:
    """Seconds of one training epoch of one block type's whole group, its member-steps, and the
    seconds its compilation took (0 when eager).

    With ``max_steps`` only that many batches are timed and the time is scaled to the epoch.
    """
    group = next(g for g in groups(config) if g.block == block)

    def model():
        return StableResNet(
            data.n_features, data.n_classes, config.depth, config.width, block,
            step_size=[h for _, h in group.members], seed=list(range(len(group.members))),
        ).to(device)

    rows = data.rows(group, "train")
    steps = -(-rows.shape[1] // config.batch_size)
    timed_steps = min(steps, max_steps or steps)
    one_epoch = TrainConfig(1, config.batch_size, config.learning_rate, compile=compile)
    # A warm-up over a full and the epoch's last batch: it compiles both shapes (its time is the
    # compilation's), and eager it takes the device's first-use costs (a CUDA context, cuBLAS
    # handles) out of the timed fit (the first group timed on a GPU ran at 201 member-steps/s without it,
    # about 5 000 with it).
    tail = rows.shape[1] % config.batch_size
    started = time.perf_counter()
    fit(model(), data.X, data.y, one_epoch, train_index=rows[:, : config.batch_size + (tail or config.batch_size)])
    if device == "cuda":
        torch.cuda.synchronize()
    compile_seconds = time.perf_counter() - started if compile else 0.0
    started = time.perf_counter()
    fit(model(), data.X, data.y, one_epoch, train_index=rows[:, : timed_steps * config.batch_size])
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) * steps / timed_steps
    return seconds, steps * len(group.members), compile_seconds


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
    parser.add_argument("--compile", action="store_true", help="train through torch.compile")
    parser.add_argument("--compare", action="store_true", help="eager and compiled side by side")
    args = parser.parse_args()
    modes = [False, True] if args.compare else [args.compile]
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads")
    print(f"{'dataset':12} {'engine':>8} {'depth':>5} {'width':>5} {'batch':>5} {'epochs':>6} {'member-steps/s':>15} "
          f"{'compile':>8} {'full sweep':>11}")
    group_seconds = {mode: [] for mode in modes}
    block_rates = []
    for name in args.datasets.split(","):
        config = SweepConfig.from_preset(name)
        data = TrialData(config)
        for compile in modes:
            total, rates, compiling = 0.0, [], 0.0
            for block in config.blocks:
                seconds, member_steps, compile_seconds = epoch_seconds(config, data, block, args.device,
                                                                       args.max_steps, compile)
                rates.append(member_steps / seconds)
                block_rates.append((name, block, compile, member_steps / seconds, compile_seconds))
                group_seconds[compile].append(seconds * config.epochs + compile_seconds)
                total += seconds * config.epochs + compile_seconds
                compiling += compile_seconds
            print(f"{name:12} {'compiled' if compile else 'eager':>8} {config.depth:>5} {config.width:>5} "
                  f"{config.batch_size:>5} {config.epochs:>6} {sum(rates) / len(rates):>15,.0f} "
                  f"{compiling:>7.0f}s {total / 60:>9.1f} min", flush=True)
    for compile in modes:
        for workers in (int(w) for w in args.workers.split(",")):
            print(f"full grid ({len(args.datasets.split(','))} datasets × 300 members), "
                  f"{'compiled' if compile else 'eager'}, on {workers:>2} worker(s): "
                  f"{longest_path(group_seconds[compile], workers) / 60:.1f} min")
    if args.compare:
        for name, block, compile, rate, compile_seconds in block_rates:
            if compile:
                eager = next(r for n, b, c, r, _ in block_rates if (n, b, c) == (name, block, False))
                print(f"  {name} {block}: compiled steps {rate / eager:.2f}× the eager rate "
                      f"({rate:,.0f} against {eager:,.0f} member-steps/s), compiled in {compile_seconds:.0f} s")
        ratio = sum(group_seconds[False]) / sum(group_seconds[True])
        print(f"compiled / eager: {ratio:.2f}× faster over the grid on one worker, compilation included")
    peak = f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    if torch.cuda.is_initialized():
        peak += f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    print(peak)


if __name__ == "__main__":
    main()
