"""A paper sweep group's training step eager against compiled, alternated in one run.

    .venv/bin/python benchmarks/bench_compiled_step.py [--groups adult:plain,adult:shrinkage,adult:batchnorm] [--steps 20] [--repeats 2]

`compile="auto"` (``stableresnet.compilation``) compiles a group when its projected eager time is
several compilations long, assuming a compiled step is faster than an eager one. This checks that
assumption for each of ``--groups`` (dataset:block, a paper sweep's 100-member group): the group
trains through the real ``fit`` for 3 epochs of ``--steps`` mini-batches and the split's last,
smaller one (as a sweep's epochs end: a compiled step runs the graph that takes both sizes, see
``profile_step.group_training``), eagerly and then through
``torch.compile``, ``--repeats`` times in turn; a step's time is the faster of the epochs after the
first (the first compiles, from the cache when this shape was compiled before: its seconds are
printed). Eager/compiled above 1 means compiling pays once its compilation is paid.
"""

from __future__ import annotations

import argparse

import torch
from bench_layout import EPOCHS, epoch_step_milliseconds
from profile_step import group_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default="adult:plain,adult:shrinkage,adult:batchnorm", help="dataset:block pairs, comma-separated")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for dataset, block in (pair.split(":") for pair in args.groups.split(",")):
        for repeat in range(args.repeats):
            step = {}
            for compile in (False, True):
                run, _, batches = group_training(dataset, block, args.steps, EPOCHS, compile, last_batch=True)
                step[compile], first_epoch, _ = epoch_step_milliseconds(run, batches, EPOCHS)
                print(f"  {dataset} {block} {'compiled' if compile else 'eager'}: first epoch {first_epoch:.1f} s")
            print(f"{dataset} {block}, repeat {repeat + 1}: eager {step[False]:.1f} ms/step, compiled "
                  f"{step[True]:.1f} ms/step, eager/compiled {step[False] / step[True]:.2f}", flush=True)


if __name__ == "__main__":
    main()
