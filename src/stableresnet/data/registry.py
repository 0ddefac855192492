"""The dataset registry: ``DATASETS`` maps a name to its loader, and `load_dataset` is the one entry point.

Adding a data set is one loader function plus one entry here. A loader takes ``seed`` first and
keyword options after it; it accepts ``test_size`` only if it makes its own split and ``one_hot`` only
if it has categorical columns to encode. The first line of its docstring is its ``source`` in
`describe_datasets`.
"""

import inspect

import numpy as np

from . import elec2, synthetic, uci
from ..errors import DataError

DATASETS = {
    "wine": uci.wine,
    "abalone": uci.abalone,
    "absenteeism": uci.absenteeism,
    "autism": uci.autism,
    "autism-noleak": uci.autism_noleak,
    "adult": uci.adult,
    "elec2": elec2.elec2,
    "circles": synthetic.circles,
    "moons": synthetic.moons,
    "spirals": synthetic.spirals,
    "xor": synthetic.xor,
}


def dataset_names():
    """Names accepted by `load_dataset`, in registry order.

    Returns
    -------
    list of str
    """
    return list(DATASETS)


def load_dataset(name, seed=0, *, test_size=0.2, one_hot=False, **options):
    """Load a registered data set, split into train and test.

    Parameters
    ----------
    name : str
        One of `dataset_names()`.
    seed : int
        Seed of the split (UCI sets) or of the draws (synthetic sets).
    test_size : float
        Test fraction of a stratified split. A set with a fixed test set (adult's official split, the
        synthetic sets' separate draw) refuses a value other than 0.2.
    one_hot : bool
        One-hot instead of ordinal codes for categorical attributes; refused by sets without them.
    **options
        Loader-specific options, e.g. ``root`` for the UCI sets, ``drop_leaking`` for autism,
        ``n_samples``, ``n_test`` and ``noise`` for the synthetic sets.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> data = load_dataset("wine", seed=0)
    >>> data.X_train.shape, data.X_test.shape, data.class_names
    ((142, 13), (36, 13), ('1', '2', '3'))
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {dataset_names()}")
    loader = DATASETS[name]
    accepted = set(inspect.signature(loader).parameters) - {"seed"}
    for option, value, default in (("test_size", test_size, 0.2), ("one_hot", one_hot, False)):
        if option in accepted:
            options[option] = value
        elif value != default:
            raise DataError(f"dataset {name!r} does not take {option}={value!r}")
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise DataError(f"dataset {name!r} does not take option(s) {unknown}; it takes {sorted(accepted)}")
    return loader(seed, **options)


def describe_datasets():
    """One summary row per registered data set (seed 0, default options).

    Returns
    -------
    list of dict
        Keys ``name``, ``rows`` (train + test), ``features``, ``classes``, ``class_counts`` (class
        name -> rows, train + test) and ``source``.
    """
    rows = []
    for name, loader in DATASETS.items():
        data = load_dataset(name)
        counts = np.bincount(np.concatenate([data.y_train, data.y_test]), minlength=data.n_classes)
        rows.append({
            "name": name,
            "rows": len(data.y_train) + len(data.y_test),
            "features": data.n_features,
            "classes": data.n_classes,
            "class_counts": {label: int(count) for label, count in zip(data.class_names, counts)},
            "source": inspect.getdoc(loader).splitlines()[0],
        })
    return rows
