"""Merged block groups: the plain and the shrinkage group of a paper sweep as one 200-member group.

    .venv/bin/python benchmarks/bench_merge.py [--datasets circles,wine,abalone,absenteeism,autism,adult] [--steps 20]

Issue 15 asks whether merging block types that share shapes into one group wins. Plain,
F = K2 σ(K1 y + b1) + b2 (eq. 7), and shrinkage, F = -(K1ᵀ σ(K1 y + b1) + b2) (eq. 8), have the
same first half and the same shapes: in row form the second product is ``affine(σ, W2, c)`` with
W2 = K2, c = b2 for plain members and W2 = -K1ᵀ, c = -b2 for shrinkage ones. ``PlainOrShrinkage``
(below, registered only here) picks W2 and c per member with ``torch.where``, so one group of 200
members launches each kernel once where the two groups launch it twice.

For each data set it trains the paper sweep's plain and shrinkage groups (100 members each) and the
merged group through the real ``fit`` for ``--steps`` mini-batches, times each (minimum of 3 calls
after a warm-up, ``bench_layout.step_milliseconds``) and prints plain + shrinkage against merged,
and the largest difference between a merged member's parameters and the same member trained in
its own group.
"""

from __future__ import annotations

import argparse

import torch
from bench_layout import step_milliseconds

from stableresnet import blocks
from stableresnet.experiments.sweep import SweepConfig, TrialData, groups, trial_seed
from stableresnet.model import StableResNet
from stableresnet.train import TrainConfig, fit


class PlainOrShrinkage(blocks.Plain):
    """Members [0, M/2) are plain fields, members [M/2, M) shrinkage fields (W2 = -K1ᵀ, c = -b2)."""

    def __init__(self, n_members, depth, width, activation):
        super().__init__(n_members, depth, width, activation)
        shrinkage = torch.arange(n_members) >= n_members // 2
        self.register_buffer("shrinkage", shrinkage.view(-1, 1, 1), persistent=False)

    def forward(self, y, layer, index):
        hidden = self.activation(blocks.affine(y, layer["K1"], layer["b1"]))
        weight = torch.where(self.shrinkage, -layer["K1"].transpose(1, 2), layer["K2"])
        bias = torch.where(self.shrinkage, -layer["b2"], layer["b2"])
        return blocks.affine(hidden, weight, bias)


def trainer(dataset: str, blocks_of_members: list[str], steps: int):
    """A call that trains a fresh group (the paper sweep's members of each named block, side by side)."""
    config = SweepConfig.from_preset(dataset)
    data = TrialData(config)
    chosen = [next(g for g in groups(config) if g.block == name) for name in blocks_of_members]
    members = [member for group in chosen for member in group.members]
    rows = torch.cat([data.rows(group, "train") for group in chosen])[:, : steps * config.batch_size]
    block = blocks_of_members[0] if len(chosen) == 1 else "plain+shrinkage"

    def run():
        model = StableResNet(data.n_features, data.n_classes, config.depth, config.width, block,
                             step_size=[h for _, h in members],
                             seed=[trial_seed(config.seed, trial) for trial, _ in members])
        fit(model, data.X, data.y, TrainConfig(1, config.batch_size, config.learning_rate), train_index=rows)
        return model

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="circles,wine,abalone,absenteeism,autism,adult")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    blocks.VECTOR_FIELDS["plain+shrinkage"] = PlainOrShrinkage
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per training step")
    print(f"{'dataset':12} {'plain':>8} {'shrinkage':>10} {'sum':>8} {'merged':>8} {'speed-up':>9}  largest difference")
    for dataset in args.datasets.split(","):
        plain_ms, plain = step_milliseconds(trainer(dataset, ["plain"], args.steps), args.steps)
        shrinkage_ms, shrinkage = step_milliseconds(trainer(dataset, ["shrinkage"], args.steps), args.steps)
        merged_ms, merged = step_milliseconds(trainer(dataset, ["plain", "shrinkage"], args.steps), args.steps)
        half = plain.n_members
        difference = 0.0
        for name, value in merged.named_parameters():
            alone = dict(plain.named_parameters()).get(name)
            if alone is not None:
                difference = max(difference, (value[:half] - alone).abs().max().item())
            alone = dict(shrinkage.named_parameters()).get(name)
            if alone is not None:
                difference = max(difference, (value[half:] - alone).abs().max().item())
        total = plain_ms + shrinkage_ms
        print(f"{dataset:12} {plain_ms:8.2f} {shrinkage_ms:10.2f} {total:8.2f} {merged_ms:8.2f} "
              f"{total / merged_ms:8.2f}×  {difference:.1e}")


if __name__ == "__main__":
    main()
