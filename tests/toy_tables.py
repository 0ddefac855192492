"""A small user table that several test modules write: numbers, a text column and a yes/no target."""

import numpy as np
import pandas as pd


def write_toy_csv(path, n_rows=120, seed=0):
    """Two numeric columns, a text column and a yes/no target; rows drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n_rows), rng.normal(size=n_rows)
    colour = rng.choice(["red", "green", "blue"], size=n_rows)
    label = np.where(x1 + 0.5 * x2 + (colour == "red") > 0.3, "yes", "no")
    pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "label": label}).to_csv(path, index=False)
    return path
