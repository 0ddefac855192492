r"""
Figure 2 over seeds: the plain block at h = 1
=============================================

Figure 2 of Zhang & Wynter (2018) follows the test points of the 2-D circles data (Figure 1)
through a plain residual network of 100 blocks, each a forward-Euler step
:math:`y_{i+1} = y_i + h F(y_i)` with :math:`h = 1` (eqs. 5 and 7), and reads the accuracy at every
layer. The paper shows one training run. Here five networks, seeds 0-4, each with its own data
draw, initial weights and mini-batch order, train side by side as one batched ensemble, so the
per-layer accuracy comes with its spread over seeds.

The sizes are reduced so the example runs in seconds: 15 epochs instead of 100 and 5 seeds
instead of 10. The command ``stableresnet propagate --figure 2 --seeds 10 --out results/fig2-seeds``
trains at the paper's scale and also writes the animations.
"""

# %%
# Train five networks as one ensemble
# -----------------------------------
# ``figure_preset(2)`` holds the paper's network of Figure 2: plain block, h = 1, 100 blocks of
# width 2 (no lift, so every layer's features can be drawn in the plane). Member s of the ensemble
# gives the same numbers as a single run with ``seed = s``.
import matplotlib.pyplot as plt

from stableresnet.experiments.propagation import PropagationConfig, figure_preset, run_propagation_seeds
from stableresnet.viz.propagation import plot_propagation_grid, plot_seed_bands

preset = figure_preset(2)
config = PropagationConfig(block=preset.block, step_size=preset.step_size, depth=preset.depth,
                           epochs=15, seed=0, seeds=5)
records = run_propagation_seeds(config)

for member in records.members:
    growth = member.max_abs_feature[-1] / member.max_abs_feature[0]
    print(f"seed {member.seed}: test accuracy {member.test_accuracy:.3f}, max |y| at layer {member.depth} over "
          f"layer 0: {growth:.3g}, k-NN ceiling {member.knn_accuracy:.3f}")

# %%
# Accuracy and feature scale per layer, over seeds
# ------------------------------------------------
# Left: the trained head applied to the features of layer i, median over the five seeds and the
# inter-quartile band. Right: the largest feature magnitude :math:`\max |y_i|` on a log axis, where
# the paper's "diverging features" would show as a rising line.
plt.figure(plot_seed_bands(records.stacked("head_accuracy"), records.stacked("max_abs_feature"), records.seeds,
                           title="Plain block, h = 1, 100 layers (Figure 2)"))

# %%
# Layer snapshots of the median seed
# ----------------------------------
# The paper's grid, layers 0, 5, 10, 20, ..., 100, for the member with the median final accuracy.
# Each panel has its own axes ("scaled", as in the paper): read the tick labels for the scale.
median = records.median
plt.figure(plot_propagation_grid(median.trajectory, median.labels, accuracy=median.head_accuracy,
                                 first_nonfinite_layer=median.first_nonfinite_layer,
                                 title=f"seed {median.seed}, median of {len(records.members)}"))
plt.show()
