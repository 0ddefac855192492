r"""
Jacobian spectra of shrinkage blocks
====================================

A residual block is one forward-Euler step :math:`y_{i+1} = y_i + h F_i(y_i)` (eq. 5 of Zhang &
Wynter 2018). Proposition 1 (eq. 6): the step is stable where :math:`\max |1 + h\lambda(J_i)| \le 1`,
:math:`\lambda` the eigenvalues of the field's Jacobian :math:`J_i = \partial F_i / \partial y`, i.e.
where every :math:`h\lambda` lies in the disc of radius 1 about :math:`-1`. The shrinkage block
:math:`F_i(y) = -K_1^T \sigma(K_1 y + b_1) - b_2` (eq. 8) has :math:`J_i = -K_1^T D K_1` with
:math:`D \ge 0` diagonal, so its eigenvalues are real and :math:`\le 0` (Proposition 2): the step
is stable exactly where :math:`h |\lambda| \le 2`.

This example trains the paper's Wine network (20 shrinkage blocks of width 13) at :math:`h = 0.1`
and :math:`h = 1` as two members of one ensemble, then computes the eigenvalues of every block's
Jacobian at the test points with ``stableresnet.diagnostics.layer_spectra``. Training is cut to 10 epochs
(the paper's 50); ``stableresnet diagnose --dataset wine --blocks shrinkage --step-sizes 0.1,1
--out results/diag`` runs it at the paper's settings with perturbation growth
(eq. 4) and robust accuracy besides.
"""

# %%
# Train two shrinkage networks
# ----------------------------
# ``StableResNet`` with a list of step sizes holds one member per :math:`h`; both start from the
# same seed, so from the same initial weights.
import matplotlib.pyplot as plt
import torch

from stableresnet import StableResNet, TrainConfig, fit
from stableresnet.data import load_dataset, paper_preset
from stableresnet.diagnostics import layer_spectra
from stableresnet.viz.diagnostics import plot_amplification, plot_eigenvalues

wine = load_dataset("wine", seed=0)
preset = paper_preset("wine")
step_sizes = [0.1, 1.0]
model = StableResNet(wine.n_features, wine.n_classes, depth=preset.depth, width=preset.width,
                     block="shrinkage", step_size=step_sizes, seed=0)
fit(model, torch.tensor(wine.X_train, dtype=torch.float32), torch.tensor(wine.y_train),
    TrainConfig(epochs=10, batch_size=preset.batch_size))

# %%
# Eigenvalues at the test points
# ------------------------------
# ``spectra.eigenvalues`` has shape (members, blocks, test points, width).
spectra = layer_spectra(model, wine.X_test)
for member, h in enumerate(step_sizes):
    print(f"h = {h:g}: largest Re λ {spectra.max_real[member].max():.2e}, largest |Im λ| "
          f"{spectra.max_imag[member].max():.2e}, largest |1 + hλ| {spectra.max_amplification[member].max():.3f}, "
          f"stable (block, point) pairs {spectra.stable_fraction[member].mean():.1%}")

# %%
# The complex plane and Euler's stability region
# ----------------------------------------------
# The shaded disc is :math:`|1 + h\lambda| \le 1`. Every :math:`\lambda` lies on the non-positive
# real axis (Proposition 2); at :math:`h = 0.1` the disc reaches :math:`-20` and holds them all, at
# :math:`h = 1` it reaches only :math:`-2`.
shown_blocks = (0, preset.depth // 2, preset.depth - 1)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
for member, (h, ax) in enumerate(zip(step_sizes, axes)):
    plot_eigenvalues({f"block {i}": spectra.eigenvalues[member, i] for i in shown_blocks}, h, ax=ax,
                     title=f"shrinkage, h = {h:g}")

# %%
# Amplification per block
# -----------------------
# :math:`\max |1 + h\lambda|` over the test points, block by block: the step is stable where it is
# at most 1 (dashed).
fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
plot_amplification({f"h = {h:g}": spectra.max_amplification[member] for member, h in enumerate(step_sizes)}, ax=ax)
plt.show()
