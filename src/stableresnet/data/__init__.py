"""Data sets for stableresnet: the paper's five UCI sets, 2-D synthetic sets and user tables.

Every loader returns a `Dataset` split into train and test, encoded (categorical attributes as
ordinal codes, or one-hot) but not standardised. See the module docstrings of ``dataset`` (split,
encoding, missing values), ``schema`` (a model's input columns, used to encode new rows), ``uci``
(each file's quirks), ``synthetic`` and ``table`` (user files).
"""

from ..errors import DataError
from .dataset import Dataset
from .elec2 import load_elec2
from .presets import PAPER_PRESETS, Preset, paper_preset
from .registry import DATASETS, dataset_names, describe_datasets, load_dataset
from .schema import InputColumn, InputSchema
from .table import load_table
from .transactions import TemporalDataset, load_transactions, synthetic_btc, synthetic_btc_dataset

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "InputColumn",
    "InputSchema",
    "PAPER_PRESETS",
    "Preset",
    "TemporalDataset",
    "dataset_names",
    "describe_datasets",
    "load_dataset",
    "load_elec2",
    "load_table",
    "load_transactions",
    "paper_preset",
    "synthetic_btc",
    "synthetic_btc_dataset",
]
