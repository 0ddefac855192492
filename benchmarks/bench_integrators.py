"""Cost of one training step of each integrator (and step-size policy) relative to forward Euler.

    .venv/bin/python benchmarks/bench_integrators.py [--device cpu|cuda] [--depth 50] [--members 10]

One training step is a forward pass through every block, the backward pass and the Adam
update, for an M-member ensemble on a batch of 32 rows per member (the paper's batch
size). Every integrator is timed in the same run, interleaved round by round so machine
load hits all alike; the median over rounds is reported. Two-stream integrators
(leapfrog) run on the hamiltonian field, the others on shrinkage; Euler is timed on
both fields so each ratio compares like with like. The F evaluations per step
(``INTEGRATORS[name].evaluations``) are the cost a ratio should approach.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from stableresnet.blocks import INTEGRATORS
from stableresnet.model import StableResNet
from stableresnet.step_size import STEP_SIZE_POLICIES


def make_step(block: str, integrator: str, policy: str, args, device: str):
    """A closure running one training step of a fresh model, and its optimiser."""
    model = StableResNet(args.width, 2, args.depth, args.width, block, step_size=0.1, integrator=integrator,
                         seed=list(range(args.members)), step_size_policy=policy).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, foreach=True)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(args.members, args.batch, args.width, generator=generator).to(device)
    y = torch.randint(0, 2, (args.members, args.batch), generator=generator).to(device)
    model.train()

    def step():
        loss = F.cross_entropy(model(X).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="training steps per timing")
    args = parser.parse_args()

    cases = {}  # label -> (baseline label, F evaluations, step)
    for name, integrator in INTEGRATORS.items():
        block = "hamiltonian" if integrator.needs_separable_streams else "shrinkage"
        cases[f"{name} ({block})"] = (f"euler ({block})", integrator.evaluations, make_step(block, name, "fixed", args, args.device))
    cases["euler (hamiltonian)"] = ("euler (hamiltonian)", 1, make_step("hamiltonian", "euler", "fixed", args, args.device))
    for policy in STEP_SIZE_POLICIES:
        if policy != "fixed":
            cases[f"euler (shrinkage), {policy} h"] = ("euler (shrinkage)", None,
                                                      make_step("shrinkage", "euler", policy, args, args.device))
    for _, _, step in cases.values():
        step()  # warm-up
    times = {label: [] for label in cases}
    for _ in range(args.rounds):
        for label, (_, _, step) in cases.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[label].append((time.perf_counter() - started) / args.steps)
    median = {label: statistics.median(t) for label, t in times.items()}
    print(f"depth {args.depth}, width {args.width}, {args.members} members × batch {args.batch}, device {args.device}, "
          f"torch {torch.__version__}, median of {args.rounds} rounds × {args.steps} steps")
    print(f"{'case':34s} {'ms/step':>9s} {'vs euler':>9s} {'F evals':>8s}")
    for label, (baseline, evaluations, _) in cases.items():
        print(f"{label:34s} {1e3 * median[label]:9.2f} {median[label] / median[baseline]:9.2f} "
              f"{evaluations if evaluations else '-':>8}")


if __name__ == "__main__":
    main()
