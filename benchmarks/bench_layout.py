"""Adult's small products in another layout: features (M, d, B) instead of (M, B, d), side by side.

    .venv/bin/python benchmarks/bench_layout.py [--steps 20]

Issue 15 asks whether a layout makes Adult's (100 members × 100 rows × 14) products faster. Two
measurements in one run: (1) the product alone, ``baddbmm(b, y, Kᵀ)`` as the engine computes
it today against ``baddbmm(bᵀ, K, yᵀ)ᵀ`` (the paper's column form K y, features stored (M, d, B));
(2) whole training steps through the real ``fit``, today's ``blocks.affine`` against the
column form patched in, for Adult's and Wine's plain and batch-norm groups (minimum of 3 calls of
``--steps`` mini-batches). The column form sums in another order, so its parameters differ from
today's; the largest difference after the timed steps is printed.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
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
    for dataset, block in (("adult", "plain"), ("adult", "batchnorm"), ("wine", "plain"), ("wine", "batchnorm")):
        blocks.affine = original
        today_ms, today_model = step_milliseconds(group_training(dataset, block, args.steps)[0], args.steps)
        blocks.affine = column_affine
        column_ms, column_model = step_milliseconds(group_training(dataset, block, args.steps)[0], args.steps)
        blocks.affine = original
        difference = max((a - b).abs().max().item() for a, b in zip(today_model.parameters(), column_model.parameters()))
        print(f"{dataset} {block} training step: today {today_ms:.2f} ms, column form {column_ms:.2f} ms "
              f"({today_ms / column_ms:.2f}×); largest parameter difference {difference:.1e}")


if __name__ == "__main__":
    main()
