"""Synthetic 2-D sets: not linearly separable, but easy for a non-linear classifier; seeded draws."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

from stableresnet.data import load_dataset

SYNTHETIC = ["circles", "moons", "spirals", "xor"]


def test_circles_not_linearly_separable_but_learnable():
    data = load_dataset("circles", seed=0)
    linear = LogisticRegression().fit(data.X_train, data.y_train).score(data.X_test, data.y_test)
    rbf = SVC(kernel="rbf").fit(data.X_train, data.y_train).score(data.X_test, data.y_test)
    assert linear < 0.75 < 0.95 < rbf


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_needs_a_nonlinear_boundary(name):
    data = load_dataset(name, seed=1)
    assert data.n_features == 2 and data.class_names == ("0", "1")
    linear = LogisticRegression().fit(data.X_train, data.y_train).score(data.X_test, data.y_test)
    knn = KNeighborsClassifier(5).fit(data.X_train, data.y_train).score(data.X_test, data.y_test)
    assert linear < 0.9 and knn > 0.9 and knn > linear + 0.05


@pytest.mark.parametrize("name", SYNTHETIC)
def test_train_and_test_are_separate_balanced_draws(name):
    data = load_dataset(name, seed=2, n_samples=300, n_test=120, noise=0.05)
    assert data.X_train.shape == (300, 2) and data.X_test.shape == (120, 2)
    assert tuple(np.bincount(data.y_train)) == (150, 150) and tuple(np.bincount(data.y_test)) == (60, 60)
    same_size = load_dataset(name, seed=2, n_samples=300, noise=0.05)
    assert not np.array_equal(same_size.X_train, same_size.X_test)


def test_noise_option_changes_the_points():
    quiet, noisy = load_dataset("circles", 0, noise=0.0), load_dataset("circles", 0, noise=0.2)
    radii = np.hypot(*quiet.X_train.T)
    np.testing.assert_allclose(np.sort(np.unique(radii.round(12))), [0.5, 1.0])
    assert not np.allclose(np.hypot(*noisy.X_train.T), radii)
