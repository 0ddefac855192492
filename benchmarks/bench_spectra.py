"""Time of the per-layer Jacobian spectra of a 100-layer, width-13 (wine) network on 1 000 samples.

Batched: ``stableresnet.diagnostics.layer_spectra`` (one jacrev per layer for all samples, one
batched eigvals). Naive, side by side in the same run: a per-sample, per-layer loop of
``torch.autograd.functional.jacobian`` and ``numpy.linalg.eigvals`` on a subset, scaled to the
full sample count for the ratio. Run: ``python benchmarks/bench_spectra.py [--samples N] [--naive N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from stableresnet import StableResNet
from stableresnet.diagnostics import analysis_copy, layer_spectra


def naive_spectra(model: StableResNet, X: np.ndarray) -> np.ndarray:
    """Eigenvalues (n, depth, width) one sample and one layer at a time."""
    net = analysis_copy(model)
    out = []
    for row in X:
        with torch.no_grad():
            trajectory = net(torch.tensor(row[None, :]), return_trajectory=True)[1]  # (depth + 1, 1, width)
        per_layer = []
        for index, layer in enumerate(net.field.layers()):
            def field(z, layer=layer, index=index):
                return net.field(z.view(1, 1, -1), layer, index).view(-1)
            jacobian = torch.autograd.functional.jacobian(field, trajectory[index, 0])
            per_layer.append(np.linalg.eigvals(jacobian.numpy()))
        out.append(per_layer)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=20, help="samples for the naive loop")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--width", type=int, default=13)
    parser.add_argument("--block", default="plain")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice). On a machine whose cores are "
                             "busy with other jobs, 1 thread avoids OpenMP contention that can cost 100x.")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    model = StableResNet(args.width, 3, args.depth, block=args.block, step_size=0.1, seed=0)
    X = np.random.default_rng(0).normal(size=(args.samples, args.width))
    layer_spectra(model, X[:8])  # warm-up (first jacrev traces)

    start = time.perf_counter()
    spectra = layer_spectra(model, X)
    batched = time.perf_counter() - start

    start = time.perf_counter()
    naive = naive_spectra(model, X[: args.naive])
    naive_time = time.perf_counter() - start
    naive_scaled = naive_time * args.samples / args.naive

    # Same eigenvalues both ways: sorted per sample and layer after rounding, so that round-off
    # cannot swap a conjugate pair.
    def canonical(values):
        return np.sort(np.round(values, 8), axis=-1)

    agree = np.allclose(canonical(spectra.eigenvalues[0, :, : args.naive].transpose(1, 0, 2)), canonical(naive),
                        atol=1e-7)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, block {args.block}, "
          f"depth {args.depth}, width {args.width}")
    print(f"batched layer_spectra, {args.samples} samples: {batched:.3f} s")
    print(f"naive loop, {args.naive} samples: {naive_time:.3f} s "
          f"(≈ {naive_scaled:.1f} s for {args.samples}); ratio ≈ {naive_scaled / batched:.0f}x; agree: {agree}")


if __name__ == "__main__":
    main()
