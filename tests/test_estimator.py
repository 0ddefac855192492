import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from stableresnet.estimator import StableResNetClassifier


# The defaults themselves, unmodified: they must learn check_classifiers_train's 3-blob problem, as
# MLPClassifier() does. benchmarks/choose_defaults.py chose them under that condition.
@parametrize_with_checks([StableResNetClassifier()])
def test_sklearn_compatible_estimator_with_its_defaults(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def fast(**kwargs):
    """A small network without a lift (width = n_features), as these tests were written for."""
    return StableResNetClassifier(**{"depth": 4, "width": None, "epochs": 20, "learning_rate": 1e-2, "random_state": 0,
                                     **kwargs})


def test_works_in_pipeline_grid_search_and_cross_validation(iris):
    X, y = iris
    scores = cross_val_score(make_pipeline(StandardScaler(), fast(epochs=50)), X, y, cv=3)
    assert scores.mean() > 0.85
    search = GridSearchCV(fast(), {"block": ["plain", "shrinkage"], "step_size": [0.1, 1.0]}, cv=2).fit(X, y)
    assert search.best_params_["block"] in ("plain", "shrinkage")
    assert len(search.cv_results_["params"]) == 4


@pytest.mark.parametrize("labels", [np.array(["setosa", "versicolor", "virginica"]), np.array([10, -3, 7]),
                                    np.array([1.0, 2.0, 3.0])])
def test_classes_of_any_label_type(iris, labels):
    X, y = iris
    clf = fast().fit(X, labels[y])
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, labels[y]) > 0.85


def test_save_and_load_give_the_same_predictions(iris, tmp_path):
    X, y = iris
    clf = fast().fit(X, np.array(["a", "b", "c"])[y])
    loaded = StableResNetClassifier.load(clf.save(tmp_path / "clf.safetensors"))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.get_params() == clf.get_params()


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.array([[np.nan, 1.0], [1.0, 2.0]]), np.array([0, 1]), "NaN"),
        (np.array([[np.inf, 1.0], [1.0, 2.0]]), np.array([0, 1]), "infinity"),
        (np.ones((4, 2)), np.zeros(4), "at least 2 classes"),
        (np.ones((4, 2)), np.array([0, 1, 0]), "inconsistent numbers of samples"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(X, y, message):
    with pytest.raises(ValueError, match=message):
        fast().fit(X, y)


@pytest.mark.parametrize("params, message", [(dict(step_size=0.0), "step_size"), (dict(depth=0), "depth"),
                                             (dict(block="dense"), "unknown block")])
def test_bad_hyper_parameters_fail_at_fit(iris, params, message):
    clf = fast(**params)  # __init__ only stores, as scikit-learn requires
    with pytest.raises(ValueError, match=message):
        clf.fit(*iris)
