"""
Choosing the block and h on your own table
==========================================

``StableResNetClassifierCV`` chooses the residual block and the step size h of the forward-Euler
update :math:`y_{i+1} = y_i + h F(y_i)` (eq. 5 of Zhang & Wynter 2018) by stratified k-fold
cross-validation, training every (block, h, fold) as members of batched ensembles, and refits the
choice on all training rows. Here it runs on ``abalone.csv``, a table as a user brings it: a header
row, a text column ``Sex`` and the label column ``size`` (small, medium, large).

The sizes are reduced: two blocks, three values of h, 3 folds, a 10-block network and 5 epochs.
The command ``stableresnet tune --data examples/abalone.csv --target size --blocks
plain,shrinkage,batchnorm --step-sizes 0.1,0.5,1 --cv 3 --epochs 10`` runs a larger search, and
without ``--blocks``, ``--step-sizes`` and ``--epochs`` it searches the paper's grid (10 values of h)
at the estimator's defaults.
"""

# %%
# Read the table
# --------------
# ``load_table`` reads a CSV or Parquet file, encodes its text columns (ordinal codes here,
# ``one_hot=True`` for one 0/1 column per category) and makes a seeded, stratified train/test
# split. The encoding is kept in ``data.schema``, so a saved model encodes new rows the same way.
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from stableresnet import StableResNetClassifierCV
from stableresnet.data import load_table
from stableresnet.tuning import cv_results_frame
from stableresnet.viz.tune import plot_tune

try:
    examples_dir = Path(__file__).parent
except NameError:  # sphinx-gallery runs the script without __file__, from the script's folder
    examples_dir = Path.cwd()

data = load_table(examples_dir / "abalone.csv", target="size", seed=0)
labels = np.array(data.class_names)
print(f"{len(data.y_train)} training rows, {len(data.y_test)} test rows; features {data.feature_names}")
print("categories:", {column.name: column.categories for column in data.schema.columns if column.kind == "categorical"})

# %%
# Cross-validate block × h
# ------------------------
# Every (block, h, fold) member is the network ``StableResNetClassifier(block=..., step_size=...,
# random_state=0)`` would train on that fold; the whole grid trains as one ensemble per block.
search = StableResNetClassifierCV(blocks=("plain", "shrinkage"), step_sizes=(0.1, 0.5, 1.0), cv=3,
                                  depth=10, epochs=5, random_state=0)
search.fit(data.X_train, labels[data.y_train])

cv_table = cv_results_frame(search)
print(cv_table[["block", "step_size", "mean_test_score", "std_test_score", "chosen"]].to_string(
    index=False, float_format="%.3f"))

# %%
# CV accuracy per (block, h), and the held-out accuracy
# -----------------------------------------------------
# The ring marks the choice (``rule="best"``: the highest mean CV accuracy; ``rule="one-se"``
# would take the smallest h within one standard error of it, the stable side of Proposition 1).
fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
plot_tune(cv_table, ax=ax)

test_accuracy = search.score(data.X_test, labels[data.y_test])
print(f"chosen: {search.best_block_} block, h = {search.best_step_size_:g} (CV accuracy {search.best_score_:.3f}); "
      f"test accuracy {test_accuracy:.3f} on {len(data.y_test)} held-out rows")
plt.show()
