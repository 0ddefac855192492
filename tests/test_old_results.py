"""Results written before the runner (commit b5c223c, ``tests/fixtures/before-runner``) still resume and load.

The fixtures were made by that commit's code: a Wine sweep (2 blocks × 2 h × 2 trials, groups of 2),
an Elec2 drift run (2 blocks), and a model file saved by ``stableresnet train`` with the class
probabilities that commit's ``StableResNetClassifier.load(...).predict_proba`` gave on Wine's test split.
Here a finished unit is deleted, as a killed run leaves it, and today's code resumes the folder.
The unit trained again steps with today's fused Adam (``train.KERNELS``), which rounds differently
from that commit's foreach Adam: its numbers are compared to a stated tolerance, the kept ones exactly.
"""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from stableresnet import StableResNetClassifier
from stableresnet.data import load_dataset
from stableresnet.experiments.drift import DriftConfig, run_drift
from stableresnet.experiments.sweep import SweepConfig, run_sweep

BEFORE = Path(__file__).parent / "fixtures" / "before-runner"
# Round-off of another Adam kernel after a few hundred float32 steps (CSV values carry 6-7 digits anyway).
TOLERANCE = {"check_exact": False, "rtol": 1e-5, "atol": 1e-6}


def copy_of(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(BEFORE / name, tmp_path / name))


def test_a_sweep_folder_from_before_resumes_its_missing_group_to_the_same_table(tmp_path):
    folder = copy_of("sweep", tmp_path)
    (folder / "groups" / "batchnorm-t1h0.1-t1h1.csv").unlink()
    (folder / "results.csv").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in (folder / "groups").glob("*.csv")}
    trained = []
    config = SweepConfig.from_preset("wine", blocks=("plain", "batchnorm"), step_sizes=(0.1, 1.0), trials=2,
                                     depth=3, epochs=2, members_per_group=2)
    table = run_sweep(config, folder, progress=lambda unit, index, total: trained.append(unit.name))
    assert trained == ["batchnorm-t1h0.1-t1h1"]
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "groups").glob("*.csv") if p.name in kept} == kept
    before = pd.read_csv(BEFORE / "sweep" / "results.csv")
    retrained = (table["block"] == "batchnorm") & (table["trial"] == 1)
    assert retrained.sum() == 2
    # The records now say why each group trained eagerly or compiled; older ones have no reason.
    assert table["compile_reason"][retrained].str.startswith("eager (auto: ").all()
    assert table["compile_reason"][~retrained].isna().all()
    table = table[before.columns]
    pd.testing.assert_frame_equal(table[~retrained].drop(columns="seconds"), before[~retrained].drop(columns="seconds"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(table[retrained].drop(columns="seconds"), before[retrained].drop(columns="seconds"),
                                  **TOLERANCE)


def test_a_drift_folder_from_before_resumes_its_missing_block_to_the_same_tables(tmp_path):
    folder = copy_of("drift", tmp_path)
    for path in (folder / "blocks").glob("shrinkage-*.csv"):
        path.unlink()
    trained = []
    config = DriftConfig("elec2", "30", blocks=("plain", "shrinkage"), step_sizes=(0.1, 1.0), trials=1, depth=2,
                         width=4, epochs=1, batch_size=4096)
    result = run_drift(config, directory=folder, progress=lambda unit, index, total: trained.append(unit.name))
    assert trained == ["shrinkage"]
    for table in ("periods", "sweep"):
        before = pd.concat([pd.read_csv(BEFORE / "drift" / "blocks" / f"{block}-{table}.csv")
                            for block in ("plain", "shrinkage")], ignore_index=True)
        pd.testing.assert_frame_equal(getattr(result, table)[before.columns].drop(columns="seconds", errors="ignore"),
                                      before.drop(columns="seconds", errors="ignore"), **TOLERANCE)


def test_a_model_file_from_before_loads_and_predicts_as_it_did():
    """To round-off, not to the bit: the probabilities were written on another machine, and a CPU
    with other vector units takes other kernels (on an AVX-512 machine: 1 ulp apart)."""
    classifier = StableResNetClassifier.load(BEFORE / "model.safetensors")
    proba = classifier.predict_proba(load_dataset("wine", seed=0).X_test)
    np.testing.assert_allclose(proba, pd.read_csv(BEFORE / "model-proba.csv").to_numpy(), rtol=1e-12, atol=0)
