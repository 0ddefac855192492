"""The optimiser step alone, by kernel: why ``train.KERNELS`` picks the fused ones.

    .venv/bin/python benchmarks/bench_optimizer.py [--device cpu|cuda] [--steps 200] [--repeats 5]

The engine's optimiser updates one flat buffer holding every trainable parameter of a group
(``train._FlatParameters``). This times ``optimizer.step()`` on a buffer of that size for a
100-member group of the Wine and Adult paper sweeps (plain blocks: Wine depth 20, width 13;
Adult depth 100, width 14), with each kernel PyTorch offers: Adam's per-tensor loop (the CPU
default), foreach and fused; SGD's foreach and fused. The gradients are fixed random numbers,
the state is warmed by a few steps first, and the time is the minimum over ``--repeats`` runs of
``--steps`` steps (synchronised on CUDA). Each row's ratio is against the kernel the engine uses.
The table is kept in ``--json`` (default ``benchmarks/results/bench_optimizer.json``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from profile_step import paper_group
from record import default_path, save

from stableresnet.train import KERNELS, OPTIMIZERS

VARIANTS = {  # (optimiser, kernel options)
    "adam for-loop": ("adam", {"foreach": False}),
    "adam foreach": ("adam", {"foreach": True}),
    "adam fused": ("adam", {"fused": True}),
    "sgd foreach": ("sgd", {"foreach": True}),
    "sgd fused": ("sgd", {"fused": True}),
}


def group_parameter_count(dataset: str) -> int:
    """Trainable parameters of a 100-member plain group of ``dataset``'s paper sweep."""
    *_, model = paper_group(dataset, "plain")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def step_milliseconds(size: int, optimizer: str, options: dict, device: str, steps: int, repeats: int) -> float:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(size, generator=generator).to(device).requires_grad_()
    values.grad = torch.randn(size, generator=generator).to(device) * 1e-2
    step = OPTIMIZERS[optimizer]([values], lr=1e-3, **options)
    for _ in range(5):
        step.step()
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            step.step()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - started) / steps)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--datasets", default="wine,adult")
    parser.add_argument("--steps", type=int, default=200, help="optimiser steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the minimum is shown")
    parser.add_argument("--json", type=Path, default=default_path(__file__), help="where the table is kept")
    args = parser.parse_args()
    datasets = args.datasets.split(",")
    sizes = {dataset: group_parameter_count(dataset) for dataset in datasets}
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads; "
          "ms per optimiser step on one flat buffer")
    print(f"{'':16}" + "".join(f"{f'{d} ({sizes[d]:,})':>26}" for d in datasets))
    times = {name: {d: step_milliseconds(sizes[d], *variant, args.device, args.steps, args.repeats)
                    for d in datasets} for name, variant in VARIANTS.items()}
    used = {optimizer: next(name for name, (o, options) in VARIANTS.items() if o == optimizer and options == kernel)
            for optimizer, kernel in KERNELS.items()}
    for name, (optimizer, _) in VARIANTS.items():
        cells = [f"{times[name][d]:.3f} ({times[name][d] / times[used[optimizer]][d]:.2f}x)" for d in datasets]
        print(f"{name:16}" + "".join(f"{cell:>26}" for cell in cells) + ("   <- engine" if name in used.values() else ""))
    rows = [{"kernel": name, "engine": name in used.values(),
             **{f"{d} ms": times[name][d] for d in datasets},
             **{f"{d} vs engine": times[name][d] / times[used[optimizer]][d] for d in datasets}}
            for name, (optimizer, _) in VARIANTS.items()]
    save(args.json, f"Optimiser step on one flat buffer, device {args.device}", rows,
         {"device": args.device, "parameters": sizes, "steps": args.steps, "repeats": args.repeats})


if __name__ == "__main__":
    main()
