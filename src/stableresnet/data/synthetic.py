"""Two-class 2-D data that is not linearly separable, as in Figure 1 of Zhang & Wynter (2018).

The paper does not say how its picture was generated; ``circles`` (an inner disc inside a ring) is the
default for reproducing its figures, and ``moons``, ``spirals`` and ``xor`` are harder or differently
shaped variants. Train and test are independent draws: ``SeedSequence(seed).spawn(2)`` gives one
child seed for each, so the same `seed` always gives the same data and the test set is never a
re-split of the training draw. Both classes have equal size (up to one point). Class names are
``("0", "1")``.
"""

import numpy as np
from sklearn.datasets import make_circles, make_moons

from ..errors import DataError
from .dataset import Dataset


def _two_draws(name, draw, seed, n_samples, n_test, noise):
    """Call ``draw(n, rng)`` once for the training and once for the test set, from split seeds."""
    n_test = n_samples if n_test is None else n_test
    for option, value in (("n_samples", n_samples), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise DataError(f"{name}: {option} must be an integer >= 2, got {value!r}")
    if not noise >= 0:
        raise DataError(f"{name}: noise must be >= 0, got {noise!r}")
    train_seed, test_seed = np.random.SeedSequence(seed).spawn(2)
    X_train, y_train = draw(n_samples, np.random.default_rng(train_seed))
    X_test, y_test = draw(n_test, np.random.default_rng(test_seed))
    return Dataset(name, X_train.astype(np.float64), y_train.astype(np.int64),
                   X_test.astype(np.float64), y_test.astype(np.int64), ("x1", "x2"), ("0", "1"))


def _sklearn_seed(rng):
    return int(rng.integers(2**31 - 1))


def circles(seed=0, *, n_samples=500, n_test=None, noise=0.1):
    """A disc of class 1 inside a ring of class 0 (sklearn ``make_circles``, radius ratio 0.5).

    Parameters
    ----------
    seed : int
        Seed of both draws.
    n_samples : int
        Training points.
    n_test : int, optional
        Test points; default `n_samples`.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate (outer radius is 1).

    Returns
    -------
    Dataset
    """
    def draw(n, rng):
        return make_circles(n, noise=noise, factor=0.5, random_state=_sklearn_seed(rng))
    return _two_draws("circles", draw, seed, n_samples, n_test, noise)


def moons(seed=0, *, n_samples=500, n_test=None, noise=0.1):
    """Two interleaving half circles (sklearn ``make_moons``).

    Parameters
    ----------
    seed : int
        Seed of both draws.
    n_samples : int
        Training points.
    n_test : int, optional
        Test points; default `n_samples`.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate (moon radius is 1).

    Returns
    -------
    Dataset
    """
    def draw(n, rng):
        return make_moons(n, noise=noise, random_state=_sklearn_seed(rng))
    return _two_draws("moons", draw, seed, n_samples, n_test, noise)


def spirals(seed=0, *, n_samples=500, n_test=None, noise=0.05):
    """Two interleaved spiral arms of 1.25 turns each, the second the first rotated by half a turn.

    Parameters
    ----------
    seed : int
        Seed of both draws.
    n_samples : int
        Training points.
    n_test : int, optional
        Test points; default `n_samples`.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate (outer radius is 1; arms
        are 0.4 apart along a radius).

    Returns
    -------
    Dataset
    """
    def draw(n, rng):
        labels = rng.permutation(np.arange(n) % 2)
        turns = rng.uniform(0.1, 1.25, n)  # start a little off the centre, where the arms meet
        angle = 2 * np.pi * turns + np.pi * labels
        radius = turns / 1.25
        X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
        return X + rng.normal(0, noise, X.shape), labels
    return _two_draws("spirals", draw, seed, n_samples, n_test, noise)


def xor(seed=0, *, n_samples=500, n_test=None, noise=0.1):
    """Uniform points in the square [-1, 1]^2; class 1 where both coordinates have the same sign.

    Parameters
    ----------
    seed : int
        Seed of both draws.
    n_samples : int
        Training points.
    n_test : int, optional
        Test points; default `n_samples`.
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate after labelling.

    Returns
    -------
    Dataset
    """
    def draw(n, rng):
        labels = rng.permutation(np.arange(n) % 2)
        X = rng.uniform(-1, 1, (n, 2))
        # flip the second coordinate's sign where needed so that sign(x1 * x2) matches the label
        X[:, 1] = np.abs(X[:, 1]) * np.sign(X[:, 0]) * np.where(labels == 1, 1, -1)
        return X + rng.normal(0, noise, X.shape), labels
    return _two_draws("xor", draw, seed, n_samples, n_test, noise)
