"""
An h-sweep on Ray
=================

An h-sweep of Zhang & Wynter (2018, Figures 8-13) trains every (block, h, trial) network; this
package groups the members of one block type into batched ensembles. With ``backend="ray"`` each
group runs as one Ray task, on a local Ray or on a cluster, and the driver alone writes the
results. A member's numbers depend only on its own seed and step size, so the Ray run gives the
same table as the run in this process, which this example checks.

The sweep is small (Wine, 2 blocks × 3 values of h × 2 trials, 10 epochs: two groups, so two Ray
tasks) and the "cluster" is a local Ray of two CPUs, its start-up logs turned down to errors.
``stableresnet sweep --dataset wine --backend ray --out results/wine-ray`` runs the paper's 300
networks on a local Ray, and ``--address HOST:PORT`` joins a running cluster.
"""

# %%
# The same sweep, in this process and on Ray
# ------------------------------------------
# ``run_sweep`` joins a Ray that is already running; without one it starts a local Ray for the
# sweep and shuts it down afterwards.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import ray

from stableresnet.experiments.sweep import SweepConfig, run_sweep
from stableresnet.viz.sweep import plot_sweep

config = SweepConfig.from_preset("wine", blocks=("plain", "shrinkage"), step_sizes=(0.1, 0.5, 1.0),
                                 trials=2, epochs=10, seed=0)
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
with tempfile.TemporaryDirectory() as results_dir:
    in_process = run_sweep(config, Path(results_dir) / "local")
    on_ray = run_sweep(config, Path(results_dir) / "ray", backend="ray")
ray.shutdown()

# %%
# Equal tables
# ------------
# Every column but the wall-clock ``seconds`` is equal, member by member, to the last bit.
assert in_process.drop(columns="seconds").equals(on_ray.drop(columns="seconds"))
accuracies = on_ray[["block", "h", "trial"]].assign(in_process=in_process["test_accuracy"],
                                                     ray=on_ray["test_accuracy"])
print(accuracies.to_string(index=False, float_format="%.4f"))
print(f"{len(on_ray)} members, test accuracies equal: {(accuracies['in_process'] == accuracies['ray']).all()}")

# %%
# The Ray sweep, drawn as Figure 9
# --------------------------------
# Mean ± std test accuracy against h over the two trials.
fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
plot_sweep(on_ray, ax=ax)
plt.show()
