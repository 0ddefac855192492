"""The experiment specs of ``reproduce.toml``: each figure's kind and settings, resolved for a scale.

A spec names its ``kind`` (see ``reproduce.KINDS``) and settings, with ``quick`` and ``paper``
tables overriding them at that scale. The keys a kind accepts are its engine config's fields, so
a new field of `SweepConfig`, `PropagationConfig` or `DriftConfig` is a new key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError
from .drift import DriftConfig
from .propagation import PropagationConfig
from .sweep import SweepConfig

SPEC_PATH = Path(__file__).with_name("reproduce.toml")
SCALES = ("quick", "paper")


def _settings_of(config_class, without=()) -> set[str]:
    """The settings a kind accepts: its engine config's fields (so a new field is a new key), less ``without``."""
    return {f.name for f in dataclasses.fields(config_class)} - set(without)


# A sweep figure runs a bundled set (no data file) and robustness is the robustness kind's to set.
SWEEP_KEYS = _settings_of(SweepConfig, without=("dataset", "robustness", "data_file", "target", "data_sha256",
                                                 "test_size", "one_hot"))
KIND_KEYS = {
    "data": {"dataset", "seed", "n_samples", "noise"},
    "propagation": _settings_of(PropagationConfig) | {"figure", "frames", "compare_depth", "setup", "reader"},
    "sweep": {"dataset"} | SWEEP_KEYS,
    "comparison": {"datasets", "variants"} | SWEEP_KEYS,
    "drift": _settings_of(DriftConfig, without=("time_feature", "robustness")) | {"plot"},
    "robustness": {"datasets", "drift"} | SWEEP_KEYS,
    "atlas": {"scale", "seeds", "optional"},
}


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its kind and the settings resolved for one scale."""

    figure: str
    title: str
    kind: str
    settings: dict
    note: str = ""  # shown beside the figure in the report; not a setting

    @property
    def run_key(self) -> str:
        """Runs with the same kind and settings (plot aside) share one folder."""
        settings = {k: v for k, v in self.settings.items() if k != "plot"}
        digest = hashlib.sha256(json.dumps([self.kind, settings], sort_keys=True).encode()).hexdigest()
        return f"{self.kind}-{digest[:12]}"


def read_specs(scale: str = "quick", path: str | Path = SPEC_PATH) -> list[FigureSpec]:
    """Read the experiment specs at ``scale``, each kind's keys checked (its values are checked by
    ``reproduce.load_specs``); ConfigError names the figure and the problem."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; expected one of {list(SCALES)}")
    path = Path(path)
    try:
        specs = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read experiment specs {str(path)!r}: {error}") from None
    experiments = []
    for figure, spec in specs.items():
        spec = dict(spec)
        for required in ("title", "kind"):
            if required not in spec:
                raise ConfigError(f"{path.name} [{figure}]: missing field {required!r}")
        title, kind, note = spec.pop("title"), spec.pop("kind"), spec.pop("note", "")
        if kind not in KIND_KEYS:
            raise ConfigError(f"{path.name} [{figure}]: unknown kind {kind!r}; expected one of {sorted(KIND_KEYS)}")
        overrides = {name: spec.pop(name, {}) for name in SCALES}
        settings = {**spec, **overrides[scale]}
        unknown = set(settings) - KIND_KEYS[kind]
        if unknown:
            raise ConfigError(f"{path.name} [{figure}]: unknown setting(s) {sorted(unknown)} for kind {kind!r}")
        experiments.append(FigureSpec(figure, title, kind, settings, note))
    return experiments


def select(experiments: list[FigureSpec], only: str | None) -> list[FigureSpec]:
    """Keep the figures named in ``only`` ("fig2,fig9"); when None, all but the optional ones
    (``optional = true``: the atlas), which run only when named."""
    if not only:
        return [e for e in experiments if not e.settings.get("optional")]
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    known = {e.figure for e in experiments}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ConfigError(f"unknown figure(s) {unknown} in --only; expected some of {sorted(known, key=_figure_number)}")
    return [e for e in experiments if e.figure in wanted]


def _figure_number(name: str) -> int:
    return int("".join(ch for ch in name if ch.isdigit()) or 0)
