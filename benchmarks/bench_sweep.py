"""Wine paper sweep (3 blocks × 10 h × 10 trials = 300 networks, 50 epochs, 20 blocks, batch 10):
the batched ensemble engine against a plain sequential PyTorch loop, measured side by side.

    .venv/bin/python benchmarks/bench_sweep.py                    # sequential loop on 12 of the 300 networks
    .venv/bin/python benchmarks/bench_sweep.py --sequential 300   # the whole sequential loop (~minutes)

The sequential loop is what a user writes without the engine: one ``nn.Module`` per network
(``nn.Linear`` layers, ``nn.BatchNorm1d``), trained one after another with ``DataLoader``-style
shuffling. With fewer than 300 networks its time is extrapolated linearly (10 networks per block
type are spread over the h grid), and the printout says so. The achieved FLOP/s of the engine
is set against a large matrix product's FLOP/s on the same machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn

from stableresnet.experiments.sweep import SweepConfig, TrialData, run_sweep, trial_seed


class SequentialResNet(nn.Module):
    """The same three blocks written the ordinary way, one network at a time."""

    def __init__(self, width, n_classes, depth, block, step_size):
        super().__init__()
        self.block, self.step_size = block, step_size
        self.K1 = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.K2 = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(2 * depth))
        self.head = nn.Linear(width, n_classes)

    def forward(self, y):
        for i, (k1, k2) in enumerate(zip(self.K1, self.K2)):
            if self.block == "plain":
                update = k2(torch.relu(k1(y)))
            elif self.block == "shrinkage":
                update = -(torch.relu(k1(y)) @ k1.weight + k2.bias)
            else:
                update = self.norms[2 * i + 1](k2(torch.relu(self.norms[2 * i](k1(y)))))
            y = y + self.step_size * update
        return self.head(y)


def sequential_seconds(config: SweepConfig, data: TrialData, n_networks: int) -> float:
    per_block = max(1, n_networks // len(config.blocks))
    members = [(t, h) for t in range(config.trials) for h in config.step_sizes]
    chosen = members[:: max(1, len(members) // per_block)][:per_block]
    started = time.perf_counter()
    for block in config.blocks:
        for trial, h in chosen:
            torch.manual_seed(trial_seed(config.seed, trial))
            rows = data.train_rows[trial]
            X, y = data.X[rows], data.y[rows]
            X = (X - X.mean(0)) / X.std(0).clamp_min(1e-12)
            model = SequentialResNet(data.n_features, data.n_classes, config.depth, block, h)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
            for _ in range(config.epochs):
                order = torch.randperm(len(rows))
                for start in range(0, len(rows), config.batch_size):
                    batch = order[start : start + config.batch_size]
                    if len(batch) < 2:
                        continue
                    optimizer.zero_grad()
                    nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
                    optimizer.step()
    return (time.perf_counter() - started) / (per_block * len(config.blocks))


def engine_flops(config: SweepConfig, data: TrialData) -> float:
    """Matrix-product FLOPs of training: 2 products of (batch × d) by (d × d) per block, ×3 for backward."""
    n_train = len(data.train_rows[0])
    samples = config.epochs * n_train  # every training row passes once per epoch
    per_sample = config.depth * 2 * (2 * config.width**2) * 3
    members = len(config.blocks) * len(config.step_sizes) * config.trials
    return float(samples * per_sample * members)


def matmul_flops_per_second(size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=12, help="networks trained by the sequential loop")
    args = parser.parse_args()
    config = SweepConfig.from_preset("wine")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        table = run_sweep(config, directory)
        engine = time.perf_counter() - started
    members = len(table)
    data = TrialData(config)
    per_network = sequential_seconds(config, data, args.sequential)
    sequential = per_network * members
    measured = min(args.sequential, members)
    flops = engine_flops(config, data) / engine
    peak = matmul_flops_per_second()

    print(f"engine:     {members} networks in {engine:.1f} s ({engine / members * 1000:.0f} ms per network)")
    note = "measured" if measured >= members else f"extrapolated from {measured} networks"
    print(f"sequential: {sequential:.1f} s ({per_network * 1000:.0f} ms per network, {note})")
    print(f"speed-up:   {sequential / engine:.1f}x")
    print(f"engine FLOP/s {flops / 1e9:.2f} G vs 2048² matmul {peak / 1e9:.1f} G: {flops / peak:.1%} of the machine")


if __name__ == "__main__":
    main()
