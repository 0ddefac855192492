"""Adult's small products in another layout: features (M, d, B) instead of (M, B, d), side by side.

    .venv/bin/python benchmarks/bench_layout.py [--steps 20] [--groups adult:plain,wine:batchnorm]
    .venv/bin/python benchmarks/bench_layout.py --compile --groups adult:plain,adult:shrinkage

Issue 15 asks whether a layout makes Adult's (100 members × 100 rows × 14) products faster. Two
measurements in one run: (1) the product alone, ``baddbmm(b, y, Kᵀ)`` as the engine computes
it today against ``baddbmm(bᵀ, K, yᵀ)ᵀ`` (the paper's column form K y, features stored (M, d, B));
(2) whole training steps through the real ``fit``, today's ``blocks.affine`` against the
column form patched in, for each of ``--groups`` (dataset:block, a paper sweep's 100-member group;
default Adult's and Wine's plain and batch-norm groups): eager, the minimum of 3 calls of
``--steps`` mini-batches. With ``--compile`` (issue 28, item 4) both forms train through
``torch.compile`` for 3 epochs of ``--steps`` mini-batches; the first epoch compiles (its time is
printed; the cache may hold today's form already, the column form's graphs are new) and a step's
time is the faster of the other two epochs over ``--steps``. The column form sums in another order,
so its parameters differ from today's; the largest difference after the timed steps is printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

import stableresnet.blocks as blocks
from profile_step import group_training
from stableresnet.model import StableResNet


def column_affine(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``bias + y @ weightᵀ`` computed as (weight yᵀ + biasᵀ)ᵀ: products on (M, d, B) operands."""
    return torch.baddbmm(bias.transpose(1, 2), weight, y.transpose(1, 2)).transpose(1, 2)


def microseconds(call, repeats: int = 300) -> float:
    for _ in range(20):
        call()
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats * 1e6


def step_milliseconds(run: Callable[[], StableResNet], steps: int) -> tuple[float, StableResNet]:
    """Milliseconds per training step of ``run`` (which trains ``steps`` mini-batches and returns the
    model): the minimum of 3 calls after a warm-up, and the last model trained."""
    run()  # warm-up
    times, model = [], None
    for _ in range(3):
        started = time.perf_counter()
        model = run()
        times.append((time.perf_counter() - started) / steps * 1e3)
    return min(times), model


EPOCHS = 3  # epochs of a timed compiled run (`epoch_step_milliseconds`): the first compiles


def epoch_step_milliseconds(run: Callable[..., StableResNet], steps: int, epochs: int) -> tuple[float, float, StableResNet]:
    """Milliseconds per training step of ``run`` (``epochs`` epochs of ``steps`` mini-batches): the
    fastest epoch after the first (which compiles, when compiled); the first epoch's seconds; and the model."""
    ends = []
    started = time.perf_counter()
    model = run(on_epoch=lambda epoch, loss: ends.append(time.perf_counter()))
    later = [end - previous for previous, end in zip(ends, ends[1:])]
    return min(later) / steps * 1e3, ends[0] - started, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--groups", default="adult:plain,adult:batchnorm,wine:plain,wine:batchnorm",
                        help="dataset:block pairs, comma-separated")
    parser.add_argument("--compile", action="store_true", help="both forms through torch.compile")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    members, rows, width = 100, 100, 14
    y, weight, bias = torch.randn(members, rows, width), torch.randn(members, width, width), torch.randn(members, 1, width)
    today = microseconds(lambda: blocks.affine(y, weight, bias))
    column = microseconds(lambda: column_affine(y, weight, bias))
    flops = 2 * members * rows * width * width
    print(f"Adult's product alone: today {today:.1f} µs ({flops / today / 1e3:.1f} GFLOP/s), column form "
          f"{column:.1f} µs ({flops / column / 1e3:.1f} GFLOP/s): {today / column:.2f}×")
    original = blocks.affine
    for dataset, block in (pair.split(":") for pair in args.groups.split(",")):
        timed = {}
        for form, affine in (("today", original), ("column form", column_affine)):
            blocks.affine = affine
            try:
                if args.compile:
                    run = group_training(dataset, block, args.steps, epochs=EPOCHS, compile=True)[0]
                    milliseconds, compiling, model = epoch_step_milliseconds(run, args.steps, EPOCHS)
                    print(f"  {dataset} {block}, {form}: first epoch (compiling) {compiling:.1f} s")
                else:
                    milliseconds, model = step_milliseconds(group_training(dataset, block, args.steps)[0], args.steps)
            finally:
                blocks.affine = original
            timed[form] = milliseconds, model
        (today_ms, today_model), (column_ms, column_model) = timed["today"], timed["column form"]
        difference = max((a - b).abs().max().item() for a, b in zip(today_model.parameters(), column_model.parameters()))
        print(f"{dataset} {block} {'compiled' if args.compile else 'eager'} training step: today {today_ms:.2f} ms, "
              f"column form {column_ms:.2f} ms ({today_ms / column_ms:.2f}×); largest parameter difference "
              f"{difference:.1e}")


if __name__ == "__main__":
    main()
