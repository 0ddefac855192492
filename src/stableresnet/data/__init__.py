"""Data sets for stableresnet: the paper's five UCI sets, 2-D synthetic sets and user tables.

Every loader returns a `Dataset` split into train and test, encoded (categorical attributes as
ordinal codes, or one-hot) but not standardised. See the module docstrings of ``dataset`` (split,
encoding, missing values), ``uci`` (each file's quirks), ``synthetic`` and ``table`` (user files).
"""

from .dataset import DataError, Dataset
from .plot import plot_synthetic
from .presets import PAPER_PRESETS, Preset, paper_preset
from .registry import DATASETS, dataset_names, describe_datasets, load_dataset
from .table import load_table

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "PAPER_PRESETS",
    "Preset",
    "dataset_names",
    "describe_datasets",
    "load_dataset",
    "load_table",
    "paper_preset",
    "plot_synthetic",
]
