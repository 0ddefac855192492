"""Paper hyper-parameters, kept as data in ``presets.toml`` and checked when read.

Each TOML table is one `Preset`, named by the table. A table may list the data sets it serves under
``datasets`` (the synthetic preset serves circles, moons, spirals and xor); otherwise it serves the
data set of its own name. Unknown keys, missing keys and wrong types raise `DataError`.
"""

import sys
from dataclasses import dataclass, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from ..errors import DataError

PRESETS_PATH = Path(__file__).parent / "presets.toml"


@dataclass(frozen=True)
class Preset:
    """Training set-up of one experiment in the paper.

    Attributes
    ----------
    epochs : int
    depth : int
        Number of residual blocks.
    width : int
        Units per block.
    batch_size : int
    step_sizes : tuple of float
        The grid of explicit step sizes h swept in the paper.
    trials : int
        Repetitions per step size.
    deep_depth : int or None
        Depth of the deeper network the paper uses for small h (synthetic figures only).
    datasets : tuple of str
        Registered data sets this preset serves.
    """

    epochs: int
    depth: int
    width: int
    batch_size: int
    step_sizes: tuple[float, ...]
    trials: int
    deep_depth: int | None = None
    datasets: tuple[str, ...] = ()


def _positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _preset(name, table, source):
    """Check one TOML table and build its Preset."""
    allowed = {field.name for field in fields(Preset)}
    required = {field.name for field in fields(Preset) if field.name not in ("deep_depth", "datasets")}
    if not isinstance(table, dict):
        raise DataError(f"{source}: {name!r} must be a table")
    if set(table) - allowed:
        raise DataError(f"{source}: [{name}] has unknown keys {sorted(set(table) - allowed)}; allowed: {sorted(allowed)}")
    if required - set(table):
        raise DataError(f"{source}: [{name}] lacks keys {sorted(required - set(table))}")
    for key in ("epochs", "depth", "width", "batch_size", "trials", "deep_depth"):
        if key in table and not _positive_int(table[key]):
            raise DataError(f"{source}: [{name}] {key} must be a positive integer, got {table[key]!r}")
    steps = table["step_sizes"]
    if not (isinstance(steps, list) and steps
            and all(isinstance(h, (int, float)) and not isinstance(h, bool) and h > 0 for h in steps)):
        raise DataError(f"{source}: [{name}] step_sizes must be a non-empty list of positive numbers, got {steps!r}")
    datasets = table.get("datasets", [name])
    if not (isinstance(datasets, list) and all(isinstance(d, str) for d in datasets)):
        raise DataError(f"{source}: [{name}] datasets must be a list of names, got {datasets!r}")
    return Preset(**{**table, "step_sizes": tuple(float(h) for h in steps), "datasets": tuple(datasets)})


def read_presets(path=PRESETS_PATH):
    """Read and check a presets TOML file.

    Parameters
    ----------
    path : str or Path
        Default: the bundled ``presets.toml``.

    Returns
    -------
    dict of str to Preset
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise DataError(f"{path}: cannot read presets: {err}") from err
    return {name: _preset(name, table, path) for name, table in document.items()}


PAPER_PRESETS = read_presets()


def paper_preset(name):
    """The paper's preset for a preset name or a data set name.

    Parameters
    ----------
    name : str
        A key of `PAPER_PRESETS` (``"wine"``, ..., ``"synthetic"``) or a data set it serves
        (``"circles"`` gives the synthetic preset).

    Returns
    -------
    Preset

    Examples
    --------
    >>> paper_preset("wine").depth, paper_preset("circles").deep_depth
    (20, 500)
    """
    if name in PAPER_PRESETS:
        return PAPER_PRESETS[name]
    for preset in PAPER_PRESETS.values():
        if name in preset.datasets:
            return preset
    raise DataError(f"no paper preset for {name!r}; known: {sorted(PAPER_PRESETS)}")
