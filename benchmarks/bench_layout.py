"""Each block in the other layout: features (M, d, B) against (M, B, d), side by side.

    .venv/bin/python benchmarks/bench_layout.py [--steps 20] [--groups adult:plain,adult:batchnorm]
    .venv/bin/python benchmarks/bench_layout.py --compile --groups adult:plain,adult:shrinkage

The engine keeps the features (M, B, d) between blocks. Inside a block, the plain and shrinkage
fields take their products in row form, ``baddbmm(b, y, Kᵀ)`` (``blocks.affine``); the batch-norm
fields work transposed, (M, d, B), the paper's column form K y (``blocks.column_affine``), whose
memory is batch norm's channel layout. This measures each against the other: (1) Adult's
(100 members × 100 rows × 14) product alone, row against column form; (2) whole training steps
through the real ``fit`` for each of ``--groups`` (dataset:block, a paper sweep's 100-member
group), today's engine against the other layout patched in: the column form for plain and
shrinkage, for batch norm the row form the engine had before (products in row form, each norm's
input transposed to the channel layout and its output back). Eager, the minimum of 3 calls of
``--steps`` mini-batches; with ``--compile`` (issue 28, item 4) both train through
``torch.compile`` for 3 epochs of ``--steps`` mini-batches; the first epoch compiles (its time is
printed) and a step's time is the faster of the other two epochs over ``--steps``. The largest
parameter difference after the timed steps is printed (zero where both forms give the same bits).
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
    """``blocks.affine`` computed in column form: (M, B, d) in and out, the product on (M, d, B) operands."""
    return blocks.column_affine(y.transpose(1, 2), weight, bias).transpose(1, 2)


def row_norm(field: blocks.AbstractBatchNormField, z: torch.Tensor, layer: dict, index: int, norm: str) -> torch.Tensor:
    """The earlier batch norm of (M, B, d) features: transposed to the channel layout and back."""
    return field._norm(z.transpose(1, 2).contiguous(), layer, index, norm).transpose(1, 2)


def row_batch_norm_forward(field: blocks.BatchNorm, y: torch.Tensor, layer: dict, index: int) -> torch.Tensor:
    """``blocks.BatchNorm.forward`` in row form, as the engine computed it before the column form."""
    hidden = field.activation(row_norm(field, blocks.affine(y, layer["K1"], layer["b1"]), layer, index, "norm1"))
    return row_norm(field, blocks.affine(hidden, layer["K2"], layer["b2"]), layer, index, "norm2")


def other_layout(block: str) -> tuple[str, object, str, Callable]:
    """(label, owner, attribute, replacement): what to patch to train ``block`` in the other layout."""
    if blocks.VECTOR_FIELDS[block] is blocks.BatchNorm:
        return "row form", blocks.BatchNorm, "forward", row_batch_norm_forward
    return "column form", blocks, "affine", column_affine


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
    row = microseconds(lambda: blocks.affine(y, weight, bias))
    column = microseconds(lambda: column_affine(y, weight, bias))
    flops = 2 * members * rows * width * width
    print(f"Adult's product alone: row form {row:.1f} µs ({flops / row / 1e3:.1f} GFLOP/s), column form "
          f"{column:.1f} µs ({flops / column / 1e3:.1f} GFLOP/s): {row / column:.2f}×")
    for dataset, block in (pair.split(":") for pair in args.groups.split(",")):
        label, owner, attribute, replacement = other_layout(block)
        original = getattr(owner, attribute)
        timed = {}
        for form, patch in (("today", original), (label, replacement)):
            setattr(owner, attribute, patch)
            try:
                if args.compile:
                    run = group_training(dataset, block, args.steps, epochs=EPOCHS, compile=True)[0]
                    milliseconds, compiling, model = epoch_step_milliseconds(run, args.steps, EPOCHS)
                    print(f"  {dataset} {block}, {form}: first epoch (compiling) {compiling:.1f} s")
                else:
                    milliseconds, model = step_milliseconds(group_training(dataset, block, args.steps)[0], args.steps)
            finally:
                setattr(owner, attribute, original)
            timed[form] = milliseconds, model
        (today_ms, today_model), (other_ms, other_model) = timed["today"], timed[label]
        difference = max((a - b).abs().max().item() for a, b in zip(today_model.parameters(), other_model.parameters()))
        print(f"{dataset} {block} {'compiled' if args.compile else 'eager'} training step: today {today_ms:.2f} ms, "
              f"{label} {other_ms:.2f} ms (today {other_ms / today_ms:.2f}× faster); largest parameter difference "
              f"{difference:.1e}")


if __name__ == "__main__":
    main()
