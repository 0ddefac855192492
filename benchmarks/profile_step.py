"""Where one training step's time goes, by op family, for a 100-member Wine and Adult group.

    .venv/bin/python benchmarks/profile_step.py [--datasets wine,adult] [--blocks plain,batchnorm] [--steps 10]

Each group (paper settings: Wine depth 20, width 13, batch 10; Adult depth 100, width 14,
batch 100) trains ``--steps`` mini-batches through the real ``fit`` (a training split cut to that
many batches, one epoch) under ``torch.profiler``, after one unprofiled warm-up call. Every op's
self time is put in one family:

- products: ``mm``/``bmm``/``addmm``/``baddbmm`` forward and backward (their achieved FLOP/s is shown);
- optimiser: everything under ``Optimizer.step``/``zero_grad``;
- divergence bookkeeping: top-level ``clone``/``where``/``copy_``/``isfinite``/``all``/... (the
  snapshot, the finiteness checks and the restore);
- data gathering: top-level ``index``/``gather``/``randperm``/``stack``;
- other tensor ops: activations, loss, batch norm, sums and products by h, autograd's own ops;
- Python and dispatch: the profiled wall time not inside any op.

The unprofiled time per step (minimum of ``--repeats`` calls) is printed beside it: the profiler
itself slows small ops down, so families are shares, the unprofiled line is the speed.

Below it, the eager floor: the ops dispatched per step (ATen ops called from Python or from
autograd's engine, not from inside another op) times the unprofiled cost of the cheapest op
(an in-place add on one float, measured in the same run). A step near that floor spends its
time dispatching, not computing; only fewer ops (fusion, ``torch.compile``) make it faster.

Below that, the hardware floor: what the step would cost if it only moved its bytes at this
machine's memory bandwidth (a 256 MiB copy) or only did its products at its GEMM rate (a 2048²
matrix product), whichever is longer, both measured in the same run. Its FLOPs are the profiled
products'; its bytes a lower bound: the optimiser reads the parameters, gradients and Adam's two
moments and writes three of them (7 float32 per parameter), and each block's two products write
their (members × batch × width) outputs in the forward pass and read them back in the backward
(4 float32 per activation). The ratio of the unprofiled step to that floor says how much a
perfect engine could still gain.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from bench_sweep import matmul_flops_per_second
from stableresnet.experiments.sweep import SweepConfig, TrialData, groups
from stableresnet.model import StableResNet
from stableresnet.train import TrainConfig, fit, fit_standardization

PRODUCTS = {"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm"}
BOOKKEEPING = {
    "aten::clone", "aten::where", "aten::copy_", "aten::isfinite", "aten::all", "aten::any", "aten::__iand__",
    "aten::bitwise_and", "aten::bitwise_and_", "aten::logical_and", "aten::__and__", "aten::bitwise_not",
    "aten::logical_not", "aten::ne", "aten::eq", "aten::abs", "aten::masked_fill_", "aten::detach",
    "aten::__invert__", "aten::isnan", "aten::isinf",
}
DATA = {"aten::index", "aten::gather", "aten::randperm", "aten::stack", "aten::to", "aten::_to_copy"}
FAMILIES = ("products", "optimiser", "divergence bookkeeping", "data gathering", "other tensor ops",
            "Python and dispatch")


def _family(event) -> str:
    root, ancestor = event, event.cpu_parent
    while ancestor is not None:
        if ancestor.name.startswith("Optimizer."):
            return "optimiser"
        root, ancestor = ancestor, ancestor.cpu_parent
    if event.name.startswith("Optimizer."):
        return "optimiser"
    if event.name in PRODUCTS:
        return "products"
    if root.name in BOOKKEEPING:
        return "divergence bookkeeping"
    if root.name in DATA:
        return "data gathering"
    return "other tensor ops"


def _inside_op(event) -> bool:
    ancestor = event.cpu_parent
    while ancestor is not None:
        if ancestor.name.startswith("aten::"):
            return True
        ancestor = ancestor.cpu_parent
    return False


def cheapest_op_microseconds(repeats: int = 5, calls: int = 20_000) -> float:
    """The unprofiled time of one in-place add on a one-element tensor (minimum over repeats)."""
    scalar = torch.zeros(1)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            scalar.add_(1.0)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def paper_group(dataset: str, block: str):
    """``dataset``'s paper sweep settings, its data, its ``block`` group and that group's fresh model."""
    config = SweepConfig.from_preset(dataset)
    data = TrialData(config)
    group = next(g for g in groups(config) if g.block == block)
    model = StableResNet(data.n_features, data.n_classes, config.depth, config.width, block,
                         step_size=[h for _, h in group.members], seed=list(range(len(group.members))))
    return config, data, group, model


def group_training(dataset: str, block: str, steps: int, epochs: int = 1, compile: bool = False,
                   last_batch: bool = False):
    """A call that trains a fresh 100-member group of ``dataset``'s paper sweep for ``epochs`` epochs
    of ``steps`` mini-batches (a training split cut to that many) and returns the model; the config;
    and the mini-batches an epoch takes. The call's ``on_epoch`` goes to ``fit``; ``compile`` trains
    through ``torch.compile``. ``last_batch`` keeps the split's remainder (its rows modulo the
    batch size), so that each epoch ends with the smaller batch a sweep's epochs end with: a
    compiled step then runs the graph a sweep runs, one that takes both batch sizes.

    The group is built and its inputs standardised once, outside the call, which trains a copy:
    a sweep does both once per group of hundreds of steps, so they belong to no step.
    """
    config, data, group, built = paper_group(dataset, block)
    split = data.rows(group, "train")
    remainder = split.shape[1] % config.batch_size if last_batch else 0
    rows = torch.cat([split[:, : steps * config.batch_size], split[:, split.shape[1] - remainder:]], dim=1)
    fit_standardization(built, data.X, rows)
    train_config = TrainConfig(epochs, config.batch_size, config.learning_rate, standardize=False, compile=compile)

    def run(on_epoch=None):
        model = copy.deepcopy(built)
        fit(model, data.X, data.y, train_config, train_index=rows, on_epoch=on_epoch)
        return model

    return run, config, steps + (remainder > 0)


def profile_group(dataset: str, block: str, steps: int, repeats: int) -> dict[str, float]:
    """Milliseconds per step by family (profiled), plus 'unprofiled' and the products' GFLOP/s."""
    run = group_training(dataset, block, steps)[0]
    run()  # warm-up: allocator, MKL, lazy optimiser state
    unprofiled = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        unprofiled.append(time.perf_counter() - started)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as trace:
        started = time.perf_counter()
        run()
        wall = time.perf_counter() - started
    times, flops = defaultdict(float), 0.0
    for event in trace.events():
        times[_family(event)] += event.self_cpu_time_total / 1e3  # µs -> ms
        if event.name in PRODUCTS:
            flops += event.flops or 0
    times["Python and dispatch"] = max(0.0, wall * 1e3 - sum(times.values()))
    dispatched = sum(1 for event in trace.events() if event.name.startswith("aten::") and not _inside_op(event))
    result = {family: times[family] / steps for family in FAMILIES}
    result["profiled"] = wall * 1e3 / steps
    result["unprofiled"] = min(unprofiled) * 1e3 / steps
    result["ops"] = dispatched / steps
    result["GFLOP/s"] = flops / (times["products"] / 1e3) / 1e9 if times["products"] else 0.0
    result["FLOPs"] = flops / steps
    result["bytes"] = step_bytes(dataset, block)
    return result


def step_bytes(dataset: str, block: str) -> float:
    """A lower bound on the bytes one step of a 100-member group moves (see the module)."""
    config, _, group, model = paper_group(dataset, block)
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    activations = len(group.members) * config.batch_size * model.width * config.depth * 2
    return 4.0 * (7 * parameters + 4 * activations)


def bytes_per_second(mebibytes: int = 256, repeats: int = 5) -> float:
    source = torch.ones(mebibytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        target.copy_(source)
        best = min(best, time.perf_counter() - started)
    return 2 * source.numel() * 4 / best  # read and written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="wine,adult")
    parser.add_argument("--blocks", default="plain,batchnorm")
    parser.add_argument("--steps", type=int, default=10, help="mini-batches per profiled call")
    parser.add_argument("--repeats", type=int, default=3, help="unprofiled calls; the minimum is shown")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per training step of a 100-member group")
    columns = [(d, b) for d in args.datasets.split(",") for b in args.blocks.split(",")]
    results = {column: profile_group(*column, args.steps, args.repeats) for column in columns}
    print(f"{'':24}" + "".join(f"{d + ' ' + b:>18}" for d, b in columns))
    for family in FAMILIES:
        print(f"{family:24}" + "".join(f"{results[c][family]:>18.2f}" for c in columns))
    print(f"{'= profiled step':24}" + "".join(f"{results[c]['profiled']:>18.2f}" for c in columns))
    print(f"{'unprofiled step (min)':24}" + "".join(f"{results[c]['unprofiled']:>18.2f}" for c in columns))
    print(f"{'products GFLOP/s':24}" + "".join(f"{results[c]['GFLOP/s']:>18.1f}" for c in columns))
    cheapest = cheapest_op_microseconds()
    print(f"{'ops dispatched per step':24}" + "".join(f"{results[c]['ops']:>18.0f}" for c in columns))
    print(f"{'x cheapest op (ms)':24}" + "".join(f"{results[c]['ops'] * cheapest / 1e3:>18.2f}" for c in columns))
    print(f"cheapest op (in-place add on one float): {cheapest:.2f} µs")
    gemm, bandwidth = matmul_flops_per_second(), bytes_per_second()
    floors = {c: 1e3 * max(results[c]["FLOPs"] / gemm, results[c]["bytes"] / bandwidth) for c in columns}
    print(f"{'products GFLOP per step':24}" + "".join(f"{results[c]['FLOPs'] / 1e9:>18.3f}" for c in columns))
    print(f"{'bytes per step (MB, min)':24}" + "".join(f"{results[c]['bytes'] / 1e6:>18.1f}" for c in columns))
    print(f"{'hardware floor (ms)':24}" + "".join(f"{floors[c]:>18.2f}" for c in columns))
    print(f"{'unprofiled / floor':24}" + "".join(f"{results[c]['unprofiled'] / floors[c]:>18.1f}" for c in columns))
    print(f"GEMM rate (2048² product): {gemm / 1e9:.1f} GFLOP/s; memory bandwidth (256 MiB copy): "
          f"{bandwidth / 1e9:.1f} GB/s")


if __name__ == "__main__":
    main()
