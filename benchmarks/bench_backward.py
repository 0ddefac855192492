"""The plain stack's backward pass written by hand against autograd's: what autograd itself costs a step.

    .venv/bin/python benchmarks/bench_backward.py [--shapes wine,adult] [--rounds 3]

A 100-member stack of ``depth`` plain blocks, y <- y + h (K2 σ(K1 y + b1) + b2) (eq. 5 with
Definition 1's field), at a paper sweep's shape (Wine: depth 20, width 13, batch 10; Adult: depth
100, width 14, batch 100), forward and backward for a fixed output gradient, two ways in
alternation (``--rounds`` rounds of 20 calls each; a round's mean call, the fastest round shown),
at torch's thread count (a sweep's worker trains its group on one: ``OMP_NUM_THREADS=1``):

- autograd: the engine's own ``blocks.Plain`` field and ``blocks.Euler`` step, as ``model.flow``
  runs them: per layer five forward ops, autograd's nodes, and one stack per parameter;
- by hand: one ``torch.autograd.Function`` for the whole stack. Per layer the forward runs the same
  five ops and keeps y and σ(K1 y + b1); the backward runs eight, g_F = h g, ∂K2 = g_Fᵀ σ,
  ∂b2 = Σ_rows g_F, g_σ = g_F K2, g_a = g_σ ⊙ [a > 0], ∂K1 = g_aᵀ y, ∂b1 = Σ_rows g_a,
  g <- g + g_a K1, each gradient written into its layer's slice of one buffer (no autograd node,
  no stack).

The largest gradient difference is printed (zero: both compute the same numbers). Below, each of
the thirteen ops alone at that shape (its operands in cache; the fastest of 7 means of 200 calls),
and their sum times the depth beside the hand-written stack's time: the difference is what the
same ops cost in sequence over alone (operands out of cache, dispatch).
"""

from __future__ import annotations

import argparse
import time

import torch

from stableresnet import blocks

SHAPES = {"wine": (20, 13, 10), "adult": (100, 14, 100)}  # depth, width, batch
MEMBERS = 100


class PlainStack(torch.autograd.Function):
    """The stack of plain Euler blocks with a hand-written backward (see the module)."""

    @staticmethod
    def forward(ctx, y, K1, b1, K2, b2, step_size):
        inputs, hiddens = [], []
        for index in range(K1.shape[1]):
            inputs.append(y)
            hidden = torch.relu(blocks.affine(y, K1[:, index], b1[:, index]))
            hiddens.append(hidden)
            y = y + step_size * blocks.affine(hidden, K2[:, index], b2[:, index])
        ctx.save_for_backward(K1, K2, step_size)
        ctx.inputs, ctx.hiddens = inputs, hiddens
        return y

    @staticmethod
    def backward(ctx, grad):
        K1, K2, step_size = ctx.saved_tensors
        members, depth, width, _ = K1.shape
        depth_major = {name: torch.empty(depth, members, rows, width)
                       for name, rows in (("K1", width), ("K2", width), ("b1", 1), ("b2", 1))}
        for index in reversed(range(K1.shape[1])):
            field_grad = grad * step_size
            torch.bmm(field_grad.transpose(1, 2), ctx.hiddens[index], out=depth_major["K2"][index])
            torch.sum(field_grad, 1, keepdim=True, out=depth_major["b2"][index])
            pre_grad = torch.ops.aten.threshold_backward(torch.bmm(field_grad, K2[:, index]), ctx.hiddens[index], 0)
            torch.bmm(pre_grad.transpose(1, 2), ctx.inputs[index], out=depth_major["K1"][index])
            torch.sum(pre_grad, 1, keepdim=True, out=depth_major["b1"][index])
            if index or ctx.needs_input_grad[0]:  # the first block's input gradient only when asked for
                grad = torch.baddbmm(grad, pre_grad, K1[:, index])
        member_major = {name: g.transpose(0, 1) for name, g in depth_major.items()}
        return (grad if ctx.needs_input_grad[0] else None, member_major["K1"], member_major["b1"], member_major["K2"],
                member_major["b2"], None)


def plain_stack(depth: int, width: int, batch: int):
    """A 100-member plain field with random weights, its input, step sizes and an output gradient."""
    generator = torch.Generator().manual_seed(0)
    field = blocks.Plain(MEMBERS, depth, width, "relu")
    with torch.no_grad():
        for weight in (field.K1, field.K2):
            weight.copy_(torch.randn(weight.shape, generator=generator) / width**0.5)
        for bias in (field.b1, field.b2):
            bias.copy_(torch.randn(bias.shape, generator=generator) * 0.1)
    y = torch.randn(MEMBERS, batch, width, generator=generator)
    step_size = torch.rand(MEMBERS, 1, 1, generator=generator)
    output_grad = torch.randn(MEMBERS, batch, width, generator=generator)
    return field, y, step_size, output_grad


def autograd_flow(field: blocks.Plain, y: torch.Tensor, step_size: torch.Tensor) -> torch.Tensor:
    """The engine's stack: ``model.flow``'s loop over ``field.layers()`` with the Euler step."""
    euler = blocks.INTEGRATORS["euler"]()
    for index, layer in enumerate(field.layers()):
        y = euler.step(lambda z, layer=layer, index=index: field(z, layer, index), y, step_size)
    return y


def hand_flow(field: blocks.Plain, y: torch.Tensor, step_size: torch.Tensor) -> torch.Tensor:
    return PlainStack.apply(y, field.K1, field.b1, field.K2, field.b2, step_size)


def gradients(flow, field, y, step_size, output_grad) -> list[torch.Tensor]:
    return list(torch.autograd.grad(flow(field, y, step_size), list(field.parameters()), output_grad))


def milliseconds(call, calls: int = 20) -> float:
    call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e3


def op_microseconds(call, calls: int = 200, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def layer_ops(width: int, batch: int) -> dict[str, object]:
    """The thirteen ops of one layer (forward and hand-written backward) on random operands of this shape."""
    random = torch.Generator().manual_seed(1)
    y, g = (torch.randn(MEMBERS, batch, width, generator=random) for _ in range(2))
    K, bias = torch.randn(MEMBERS, width, width, generator=random), torch.randn(MEMBERS, 1, width, generator=random)
    step_size = torch.rand(MEMBERS, 1, 1, generator=random)
    out_K, out_b = torch.empty(MEMBERS, width, width), torch.empty(MEMBERS, 1, width)
    return {
        "forward product and bias (×2)": lambda: blocks.affine(y, K, bias),
        "relu": lambda: torch.relu(y),
        "h F": lambda: step_size * y,
        "y + h F": lambda: y + g,
        "h g": lambda: g * step_size,
        "weight gradient (×2)": lambda: torch.bmm(g.transpose(1, 2), y, out=out_K),
        "bias gradient (×2)": lambda: torch.sum(g, 1, keepdim=True, out=out_b),
        "g K2": lambda: torch.bmm(g, K),
        "relu's gradient": lambda: torch.ops.aten.threshold_backward(g, y, 0),
        "g + g_a K1": lambda: torch.baddbmm(g, y, K),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="wine,adult")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    names = args.shapes.split(",")
    if unknown := [name for name in names if name not in SHAPES]:
        parser.error(f"--shapes: unknown {', '.join(unknown)}; expected some of {', '.join(SHAPES)}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1; got {args.rounds}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {MEMBERS} members")
    for name in names:
        depth, width, batch = SHAPES[name]
        field, y, step_size, output_grad = plain_stack(depth, width, batch)
        by_autograd = gradients(autograd_flow, field, y, step_size, output_grad)
        by_hand = gradients(hand_flow, field, y, step_size, output_grad)
        difference = max((a - b).abs().max().item() for a, b in zip(by_autograd, by_hand))
        times = {"autograd": [], "by hand": []}
        for _ in range(args.rounds):
            for label, flow in (("autograd", autograd_flow), ("by hand", hand_flow)):
                times[label].append(milliseconds(lambda: gradients(flow, field, y, step_size, output_grad)))
        best = {label: min(values) for label, values in times.items()}
        print(f"\n{name} (depth {depth}, width {width}, batch {batch}), forward and backward of the stack:")
        print(f"  autograd {best['autograd']:.2f} ms, by hand {best['by hand']:.2f} ms: autograd "
              f"{best['by hand'] / best['autograd']:.2f}× the speed of the hand-written pass "
              f"(rounds: {', '.join(f'{a:.1f}/{h:.1f}' for a, h in zip(times['autograd'], times['by hand']))}); "
              f"largest gradient difference {difference:.1e}")
        layer_total = 0.0
        for op, call in layer_ops(width, batch).items():
            cost = op_microseconds(call)
            layer_total += cost * (2 if "×2" in op else 1)
            print(f"  {op:32} {cost:8.1f} µs")
        print(f"  one layer's ops alone, summed: {layer_total:.0f} µs; × depth {depth}: "
              f"{layer_total * depth / 1e3:.2f} ms, against the hand-written stack's {best['by hand']:.2f} ms")


if __name__ == "__main__":
    main()
