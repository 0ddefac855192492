"""Contract tests looped over the registry, so a new data set cannot ship untested."""

import functools
import inspect

import numpy as np
import pytest

from stableresnet.data import DATASETS, DataError, Dataset, dataset_names, describe_datasets, load_dataset

OFFICIAL_SPLIT = {"adult", "elec2"}  # fixed test sets: the official one, a cut in time
SPLIT_BY_SEED = [name for name, loader in DATASETS.items() if "test_size" in inspect.signature(loader).parameters]


@functools.cache
def cached(name, seed=0):
    return load_dataset(name, seed)


@pytest.mark.parametrize("name", dataset_names())
def test_dataset_contract(name):
    data = cached(name)
    assert isinstance(data, Dataset) and data.name == name
    assert data.X_train.dtype == data.X_test.dtype == np.float64
    assert data.y_train.dtype == data.y_test.dtype == np.int64
    assert data.X_train.shape == (len(data.y_train), data.n_features)
    assert data.X_test.shape == (len(data.y_test), data.n_features)
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_test).all()
    assert set(np.unique(data.y_train)) == set(np.unique(data.y_test)) == set(range(data.n_classes))
    assert len(set(data.feature_names)) == data.n_features


@pytest.mark.parametrize("name", dataset_names())
def test_same_seed_same_data(name):
    again = load_dataset(name, 0)
    np.testing.assert_array_equal(again.X_train, cached(name).X_train)
    np.testing.assert_array_equal(again.y_test, cached(name).y_test)


@pytest.mark.parametrize("name", [n for n in dataset_names() if n not in OFFICIAL_SPLIT])
def test_different_seeds_differ(name):
    assert not np.array_equal(cached(name, 1).X_train, cached(name).X_train)


@pytest.mark.parametrize("name", sorted(OFFICIAL_SPLIT))
def test_official_split_ignores_seed(name):
    np.testing.assert_array_equal(cached(name, 1).X_test, cached(name).X_test)


@pytest.mark.parametrize("name", SPLIT_BY_SEED)
def test_split_is_stratified(name):
    data = cached(name, 3)
    train = np.bincount(data.y_train, minlength=data.n_classes)
    test = np.bincount(data.y_test, minlength=data.n_classes)
    total = train + test
    expected_test = total * len(data.y_test) / total.sum()
    assert np.all(np.abs(test - expected_test) <= 1)
    assert len(data.y_test) == int(np.ceil(0.2 * total.sum()))


def test_test_size_is_honoured():
    data = load_dataset("wine", 0, test_size=0.5)
    assert len(data.y_test) == 89


def test_describe_datasets_has_one_row_per_dataset():
    rows = describe_datasets()
    assert [row["name"] for row in rows] == dataset_names()
    for row in rows:
        data = cached(row["name"])
        assert row["rows"] == sum(row["class_counts"].values()) == len(data.y_train) + len(data.y_test)
        assert (row["features"], row["classes"]) == (data.n_features, data.n_classes)
        assert row["source"]
    assert {row["name"]: row["features"] for row in rows if row["name"] in OFFICIAL_SPLIT | set(SPLIT_BY_SEED)} == {
        "wine": 13, "abalone": 8, "absenteeism": 19, "autism": 20, "autism-noleak": 19, "adult": 14, "elec2": 7}


@pytest.mark.parametrize("call, message", [
    (lambda: load_dataset("iris"), "unknown dataset 'iris'"),
    (lambda: load_dataset("wine", colour="red"), r"does not take option\(s\) \['colour'\]"),
    (lambda: load_dataset("adult", test_size=0.3), "does not take test_size=0.3"),
    (lambda: load_dataset("circles", one_hot=True), "does not take one_hot=True"),
    (lambda: load_dataset("wine", test_size=1.5), "test_size must be a fraction"),
    (lambda: load_dataset("circles", n_samples=1), "n_samples must be an integer >= 2"),
    (lambda: load_dataset("moons", noise=-0.1), "noise must be >= 0"),
])
def test_bad_requests_raise_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call()
