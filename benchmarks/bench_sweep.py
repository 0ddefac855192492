"""Wine paper sweep (3 blocks × 10 h × 10 trials = 300 networks, 50 epochs, 20 blocks, batch 10):
the batched ensemble engine against a plain sequential PyTorch loop, measured side by side.

    .venv/bin/python benchmarks/bench_sweep.py                    # sequential loop on 12 of the 300 networks
    .venv/bin/python benchmarks/bench_sweep.py --sequential 300   # the whole sequential loop (~minutes)
    .venv/bin/python benchmarks/bench_sweep.py --vmap-epochs 50   # the whole vmap recipe (default: 10 epochs, scaled)
    .venv/bin/python benchmarks/bench_sweep.py --device cuda
    .venv/bin/python benchmarks/bench_sweep.py --compile          # also compiled, from a cold and a warm cache
    .venv/bin/python benchmarks/bench_sweep.py --workers 1        # skip the engine on worker threads

The sequential loop is what a user writes without the engine: one ``nn.Module`` per network
(``nn.Linear`` layers, ``nn.BatchNorm1d``), trained one after another with ``DataLoader``-style
shuffling. With fewer than 300 networks its time is extrapolated linearly (10 networks per block
type are spread over the h grid), and the printout says so. The second baseline is PyTorch's own
"model ensembling" recipe: ``torch.func.stack_module_state`` + ``vmap(functional_call)`` over each
block type's 100 networks, one Adam over the stacked parameters, in five variants
(``VMAP_RECIPES``): the tutorial's (``.backward()``, Adam's per-parameter loop, the CPU default),
with a foreach or fused Adam, and with gradients from ``torch.func.grad_and_value`` under ``vmap``.
Every ratio is against the fastest of them; with ``--vmap-epochs`` below the sweep's each is
scaled linearly. The achieved FLOP/s of the engine is set against a large matrix
product's FLOP/s on the same machine. Peak memory (resident set; on CUDA also the allocator's) is
printed. On ``--device cuda`` the engine and the vmap recipe run on the GPU, the sequential loop
and the reference product on the CPU.

The engine rows are eager (``compile=False``). ``--compile`` also runs the sweep forced through
``torch.compile`` (``compile=True``), each time in a new process, as a user's next command would:
first from an empty cache folder (cold: every graph compiles), then again from the cache that run
filled (warm: the graphs load from disk; Dynamo still traces the Python). Each time is the sweep's
own, compilation included, and the process's, start-up included.

``--workers N`` (default 2) also runs the sweep with ``run_sweep(workers=N)``: N groups at once in
threads of one torch thread each (``sweep --workers``), and checks that its table equals the
one-after-another run's (wall-clock seconds aside).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state

from record import default_path, save
from stableresnet.experiments.sweep import (
    SweepConfig,
    TrialData,
    groups,
    run_sweep,
    trial_seed,
)


class SequentialResNet(nn.Module):
    """The same three blocks written the ordinary way, one network at a time."""

    def __init__(self, width, n_classes, depth, block, step_size):
        super().__init__()
        self.block = block
        self.register_buffer("step_size", torch.tensor(float(step_size)))  # a buffer, so vmap can stack it
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


# The vmap recipe's variants: how the ensemble's gradients are taken and which Adam kernel steps.
# "backward": .backward() through vmap(functional_call) (PyTorch's tutorial); "grad_and_value":
# torch.func.grad_and_value under vmap. Adam: "for-loop" (the CPU default), "foreach" or "fused".
VMAP_RECIPES = {
    "tutorial": ("backward", "for-loop"),
    "backward + foreach Adam": ("backward", "foreach"),
    "backward + fused Adam": ("backward", "fused"),
    "grad_and_value + foreach Adam": ("grad_and_value", "foreach"),
    "grad_and_value + fused Adam": ("grad_and_value", "fused"),
}


def vmap_recipe_seconds(config: SweepConfig, data: TrialData, epochs: int, device: str,
                        recipe: str = "tutorial") -> float:
    """PyTorch's model-ensembling recipe on every group of the sweep, ``epochs`` epochs each, in one
    of its ``VMAP_RECIPES`` variants."""
    gradients, kernel = VMAP_RECIPES[recipe]
    started = time.perf_counter()
    for group in groups(config):
        torch.manual_seed(config.seed)
        models = [SequentialResNet(data.n_features, data.n_classes, config.depth, group.block, h).to(device)
                  for _, h in group.members]
        params, buffers = stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")

        def member_loss(p, b, x, target, base=base):
            return nn.functional.cross_entropy(functional_call(base, (p, b), (x,)), target)

        ensemble_loss = torch.vmap(member_loss)
        ensemble_gradients = torch.vmap(grad_and_value(member_loss))
        options = {"foreach": True} if kernel == "foreach" else {"fused": True} if kernel == "fused" else {}
        optimizer = torch.optim.Adam(params.values(), lr=config.learning_rate, **options)
        rows = data.rows(group, "train").to(device)  # (M, n): each member's own split
        X, y = data.X.to(device)[rows], data.y.to(device)[rows]
        X = (X - X.mean(1, keepdim=True)) / X.std(1, keepdim=True).clamp_min(1e-12)
        for _ in range(epochs):
            order = torch.stack([torch.randperm(rows.shape[1]) for _ in group.members]).to(device)
            for start in range(0, rows.shape[1], config.batch_size):
                batch = order[:, start : start + config.batch_size]
                if batch.shape[1] < 2:
                    continue
                x = torch.gather(X, 1, batch.unsqueeze(-1).expand(-1, -1, X.shape[-1]))
                target = torch.gather(y, 1, batch)
                if gradients == "backward":
                    optimizer.zero_grad()
                    ensemble_loss(params, buffers, x, target).sum().backward()
                else:
                    grads, _ = ensemble_gradients(params, buffers, x, target)
                    for name, parameter in params.items():
                        parameter.grad = grads[name]
                optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


COMPILED_SWEEP = """
import sys, tempfile, time
started = time.perf_counter()
import torch
from stableresnet.experiments.sweep import SweepConfig, run_sweep
config = SweepConfig.from_preset("wine", epochs=int(sys.argv[1]))
with tempfile.TemporaryDirectory() as directory:
    sweep_started = time.perf_counter()
    run_sweep(config, directory, device=sys.argv[2], compile=True, workers=int(sys.argv[3]))
    if sys.argv[2] == "cuda":
        torch.cuda.synchronize()
    print(time.perf_counter() - sweep_started, time.perf_counter() - started)
"""


def compiled_seconds(config: SweepConfig, device: str, workers: int) -> list[tuple[str, float, float]]:
    """(label, sweep seconds, process seconds) of the sweep forced through ``torch.compile`` in a new
    process: from an empty cache folder, then from the one it filled."""
    result = []
    with tempfile.TemporaryDirectory() as cache:
        environment = {**os.environ, "STABLERESNET_CACHE_DIR": cache}
        environment.pop("TORCHINDUCTOR_CACHE_DIR", None)
        for label in ("cold cache", "warm cache, new process"):
            done = subprocess.run([sys.executable, "-c", COMPILED_SWEEP, str(config.epochs), device, str(workers)],
                                  env=environment, capture_output=True, text=True, check=True)
            sweep, process = map(float, done.stdout.split()[-2:])
            result.append((f"{label}, {workers} worker{'s' if workers > 1 else ''}", sweep, process))
    return result


def peak_memory() -> str:
    """Peak resident memory of this process (and of the CUDA allocator when used)."""
    text = f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    if torch.cuda.is_initialized():
        text += f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    return text


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
    parser.add_argument("--vmap-epochs", type=int, default=10, help="epochs of the vmap recipe (scaled to the sweep's)")
    parser.add_argument("--epochs", type=int, default=None, help="override the sweep's 50 epochs (a shorter run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also the engine through torch.compile, twice")
    parser.add_argument("--workers", type=int, default=2, help="also the engine with this many worker threads "
                                                             "(one torch thread each; 1 skips it)")
    parser.add_argument("--json", type=Path, default=default_path(__file__), help="where the table is kept")
    args = parser.parse_args()
    config = SweepConfig.from_preset("wine", **({"epochs": args.epochs} if args.epochs else {}))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {config.epochs} epochs")

    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        table = run_sweep(config, directory, device=args.device, compile=False, workers=1)
        if args.device == "cuda":
            torch.cuda.synchronize()
        engine = time.perf_counter() - started
    threaded = None
    if args.workers > 1:
        with tempfile.TemporaryDirectory() as directory:
            started = time.perf_counter()
            threaded_table = run_sweep(config, directory, device=args.device, compile=False, workers=args.workers)
            if args.device == "cuda":
                torch.cuda.synchronize()
            threaded = time.perf_counter() - started
        same = threaded_table.drop(columns="seconds").equals(table.drop(columns="seconds"))
    members = len(table)
    compiled = [row for workers in dict.fromkeys((1, args.workers))
                for row in compiled_seconds(config, args.device, workers)] if args.compile else []
    data = TrialData(config)
    vmap_epochs = min(args.vmap_epochs, config.epochs)
    recipes = {recipe: vmap_recipe_seconds(config, data, vmap_epochs, args.device, recipe) * config.epochs / vmap_epochs
               for recipe in VMAP_RECIPES}
    best = min(recipes, key=recipes.get)
    vmap = recipes[best]
    per_network = sequential_seconds(config, data, args.sequential)
    sequential = per_network * members
    measured = min(args.sequential, members)
    flops = engine_flops(config, data) / engine
    peak = matmul_flops_per_second()

    print(f"engine:     {members} networks in {engine:.1f} s ({engine / members * 1000:.0f} ms per network)")
    for label, seconds, process in compiled:
        print(f"engine, compiled, {label}: {seconds:.1f} s ({process:.1f} s with start-up; {engine / seconds:.2f}x "
              f"the eager engine, {vmap / seconds:.1f}x the best vmap recipe, "
              f"{per_network * members / seconds:.0f}x the sequential loop)")
    vmap_note = "measured" if vmap_epochs == config.epochs else f"scaled from {vmap_epochs} epochs"
    for recipe, seconds in recipes.items():
        print(f"vmap recipe, {recipe}: {seconds:.1f} s ({vmap_note}){' (the best)' if recipe == best else ''}")
    print(f"engine speed-up over the best vmap recipe ({best}): {vmap / engine:.1f}x")
    note = "measured" if measured >= members else f"extrapolated from {measured} networks"
    print(f"sequential: {sequential:.1f} s ({per_network * 1000:.0f} ms per network, {note})")
    print(f"speed-up:   {sequential / engine:.1f}x")
    if threaded is not None:
        print(f"engine, {args.workers} worker threads: {threaded:.1f} s ({engine / threaded:.2f}x the engine on one, "
              f"{vmap / threaded:.1f}x the best vmap recipe, {sequential / threaded:.1f}x the sequential loop; "
              f"{'the same' if same else 'ANOTHER'} table)")
    print(f"engine FLOP/s {flops / 1e9:.2f} G vs 2048² matmul {peak / 1e9:.1f} G: {flops / peak:.1%} of the machine")
    print(peak_memory())
    def row(run: str, seconds: float) -> dict:
        return {"run": run, "seconds": seconds, "vs best vmap recipe": vmap / seconds,
                "vs sequential loop": sequential / seconds}

    rows = [row("engine (one thread per group in turn)", engine)]
    rows += [row(f"engine, compiled, {label}", seconds) for label, seconds, _ in compiled]
    if threaded is not None:
        rows.append(row(f"engine, {args.workers} worker threads", threaded))
    rows += [row(f"vmap recipe, {recipe} ({vmap_note})", seconds) for recipe, seconds in recipes.items()]
    rows.append(row(f"sequential loop ({'measured' if measured >= members else f'extrapolated from {measured} networks'})",
                    sequential))
    save(args.json, f"Wine paper sweep: {members} networks, {config.epochs} epochs, device {args.device}", rows,
         {"networks": members, "epochs": config.epochs, "device": args.device, "sequential networks": measured,
          "vmap epochs": vmap_epochs, "best vmap recipe": best,
          "engine share of a 2048² matmul's FLOP/s": flops / peak})

if __name__ == "__main__":
    main()
