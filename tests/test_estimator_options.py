"""The extension points (block, integrator, step-size policy, smoothness) as StableResNetClassifier parameters."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV

from stableresnet.estimator import StableResNetClassifier


def test_grid_search_over_block_integrator_and_step_size_policy():
    X, y = load_iris(return_X_y=True)
    grid = {
        "block": ["shrinkage", "antisymmetric"],
        "integrator": ["euler", "rk4"],
        "step_size_policy": ["fixed", "learnable", "adaptive"],
    }
    base = StableResNetClassifier(depth=3, epochs=5, learning_rate=1e-2, random_state=0, smoothness=0.1)
    search = GridSearchCV(base, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 12
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.step_sizes_.shape == (3,) and (best.step_sizes_ > 0).all()


def test_hamiltonian_with_leapfrog_learns_iris():
    X, y = load_iris(return_X_y=True)
    clf = StableResNetClassifier(depth=5, width=8, block="hamiltonian", integrator="leapfrog", step_size=0.3,
                                 epochs=40, learning_rate=1e-2, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_multilevel_classifier_ends_at_the_given_depth_and_step_size_and_saves(tmp_path):
    X, y = load_iris(return_X_y=True)
    clf = StableResNetClassifier(depth=8, step_size=0.1, levels=3, epochs=20, learning_rate=1e-2, random_state=0)
    clf.fit(X, y)
    assert clf.model_.depth == 8
    np.testing.assert_allclose(clf.step_sizes_, 0.1, rtol=1e-6)
    assert clf.loss_curve_.shape == (60,)  # 20 epochs at each of 3 levels
    assert clf.score(X, y) > 0.9
    again = StableResNetClassifier.load(clf.save(tmp_path / "m.safetensors"))
    assert again.levels == 3
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_multilevel_depth_must_divide():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="depth 6 cannot be built in 3 levels"):
        StableResNetClassifier(depth=6, levels=3, epochs=1).fit(X, y)
