r"""
The initial weights decide a 500-layer network
==============================================

Figure 5 of Zhang & Wynter (2018) trains 500 shrinkage blocks (eq. 8) at :math:`h = 0.1` on the
2-D circles data. Near the origin such a block maps :math:`y` to about :math:`(1 - h s^2)\, y` along
the directions of :math:`K_1`, :math:`s` the scale of its entries, so a stack of :math:`N` blocks
contracts by about :math:`(1 - h s^2)^N`: whether the network starts with any signal at all depends
on how the weights were drawn, which the paper does not say.

For each initialiser of ``stableresnet.INITIALIZERS`` (Glorot-uniform, the default; U(±0.05);
N(0, 0.05²); Glorot / √depth) and for Glorot scaled by 0.1 (the ``NAME:SCALE`` syntax), this
example builds untrained width-2 shrinkage networks of growing depth and measures
``diagnostics.initial_signal``: the ratio :math:`\max |y_{depth}| / \max |y_0|` over the training
points. Below 1e-3 a network starts *collapsed* (every point mapped near one, almost no gradient),
above 1e3 *exploded*. Nothing is trained, so this runs at the paper's depth; 5 seeds per point.
``stableresnet propagate --figure 5 --seeds 10 --init uniform --out results/fig5-uniform`` trains
Figure 5 from U(±0.05) weights, and ``stableresnet atlas --scale paper --out results/atlas-paper``
compares the initialisers over every picture of the paper.
"""

# %%
# Measure the signal at initialisation
# ------------------------------------
# Each network holds 5 members, seeds 0-4, and is measured at :math:`h = 0.1` (Figure 5) and at
# :math:`h = 1` (Figure 4). ``initial_signal`` needs the network's input standardisation fitted
# first, as training would fit it.
import matplotlib.pyplot as plt
import numpy as np
import torch

from stableresnet import INITIALIZERS, StableResNet
from stableresnet.data import load_dataset
from stableresnet.diagnostics import COLLAPSED_BELOW, EXPLODED_ABOVE, initial_signal, signal_state
from stableresnet.train import fit_standardization

circles = load_dataset("circles", seed=0)
X, y = torch.tensor(circles.X_train), torch.tensor(circles.y_train)
seeds = list(range(5))
depths = [10, 20, 50, 100, 200, 500]
step_sizes = [0.1, 1.0]
inits = [*INITIALIZERS, "glorot:0.1"]


def signal_ratios(init, step_size):
    """(depths, seeds): the signal ratio of untrained shrinkage networks."""
    per_depth = []
    for depth in depths:
        model = StableResNet(2, 2, depth, block="shrinkage", step_size=step_size, seed=seeds, init=init)
        fit_standardization(model, X, torch.arange(len(X)).expand(len(seeds), -1))
        per_depth.append(initial_signal(model, X, y, batch_size=32).scale_ratio)
    return np.array(per_depth)


ratios = {(init, h): signal_ratios(init, h) for h in step_sizes for init in inits}
for (init, h), values in ratios.items():
    print(f"h = {h:g}, {init:>12}: 500 blocks, median ratio {np.median(values[-1]):.2e} "
          f"({', '.join(signal_state(ratio) for ratio in values[-1])})")

# %%
# Signal ratio against depth
# --------------------------
# The median over the seeds, with the range of the five as a band. Glorot's bound at width 2,
# :math:`\sqrt{6/4} \approx 1.22`, makes every block contract hard: the stack falls below 1e-3
# within 200 blocks at :math:`h = 0.1` and within 50 at :math:`h = 1`. U(±0.05), N(0, 0.05²),
# Glorot / √depth and Glorot × 0.1 keep the signal through all 500 blocks. Note the different
# scales of the two panels.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
for h, ax in zip(step_sizes, axes):
    for init in inits:
        values = ratios[init, h]
        line, = ax.plot(depths, np.median(values, axis=1), marker="o", label=init)
        ax.fill_between(depths, values.min(axis=1), values.max(axis=1), color=line.get_color(), alpha=0.15)
    ax.axhline(COLLAPSED_BELOW, color="0.3", ls="--", lw=1, label=f"collapsed below {COLLAPSED_BELOW:g}")
    ax.axhline(EXPLODED_ABOVE, color="0.3", ls=":", lw=1, label=f"exploded above {EXPLODED_ABOVE:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("depth (shrinkage blocks, width 2)")
    ax.set_title(f"h = {h:g}")
axes[0].set_ylabel("max |y_depth| / max |y_0| before training")
axes[0].legend(fontsize="small", loc="lower left")
fig.suptitle("Signal at initialisation, per initialiser")
plt.show()
