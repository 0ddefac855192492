"""
An h-sweep on the Wine data
===========================

Figure 9 of Zhang & Wynter (2018) trains the three blocks (plain, eq. 7; shrinkage, eq. 8; and
batch norm) on the UCI Wine data at step sizes h from 0.1 to 1 and plots the mean and standard
deviation of the test accuracy over 10 trials. This example runs the same kind of sweep with
``stableresnet.experiments.sweep``: every (block, h, trial) is one member of a batched ensemble, and
trial t uses the same split, initial weights and mini-batch order for every block and h (a paired
design).

The sizes are reduced: 4 values of h instead of 10, 3 trials instead of 10 and 20 epochs instead
of 50; the network is the paper's (20 blocks of width 13, batch 10). The command
``stableresnet sweep --dataset wine --out results/wine`` runs the paper's 300 networks, and
``stableresnet plot-sweep results/wine`` draws them.
"""

# %%
# Run the sweep
# -------------
# ``SweepConfig.from_preset`` starts from the paper's settings for Wine and overrides the grid,
# trials and epochs. A sweep writes its results folder as it goes (so a stopped sweep resumes);
# here that folder is a temporary one.
import tempfile

import matplotlib.pyplot as plt

from stableresnet.experiments.sweep import SweepConfig, run_sweep
from stableresnet.stats import summarize
from stableresnet.viz.sweep import plot_sweep

config = SweepConfig.from_preset("wine", step_sizes=(0.1, 0.4, 0.7, 1.0), trials=3, epochs=20, seed=0)
with tempfile.TemporaryDirectory() as results_dir:
    table = run_sweep(config, results_dir)

print(f"{len(table)} networks: {config.blocks} × h {config.step_sizes} × {config.trials} trials")
print(summarize(table)[["block", "h", "mean", "std", "diverged"]].to_string(index=False, float_format="%.3f"))

# %%
# Mean ± std test accuracy against h
# ----------------------------------
# One line per block and a band of one standard deviation over the trials, as in Figure 9.
fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
plot_sweep(table, ax=ax)
plt.show()
