"""docs/_ext/generated_pages.py: the docs' results and benchmark pages say what the kept files hold."""

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from stableresnet.experiments.claims import verdict_counts

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages():
    return load(DOCS / "_ext" / "generated_pages.py")


def test_paired_interval_is_the_t_interval_computed_by_hand(pages):
    # Differences 0.01 … 0.05: mean 0.03, sample std 0.0158114, t(0.975, 4) = 2.776445,
    # half-width 2.776445 × 0.0158114 / √5 = 0.019632.
    mean, low, high = pages.paired_interval([0.01, 0.02, 0.03, 0.04, 0.05])
    assert mean == pytest.approx(0.03)
    assert (low, high) == pytest.approx((0.010368, 0.049632), abs=1e-6)


def test_markdown_table_escapes_pipes_and_right_aligns_numbers(pages):
    table = pages.markdown_table(pd.DataFrame({"statement": ["max |y| grows"], "accuracy": [0.8766]}))
    assert table.splitlines() == ["| statement | accuracy |", "| --- | ---: |", "| max \\|y\\| grows | 0.877 |"]


def test_a_kept_run_page_quotes_its_claims_and_every_figure(pages):
    folder = pages.SNAPSHOTS / "quick"
    page = pages.reproduce_page("quick", "title")
    assert verdict_counts(pd.read_csv(folder / "claims.csv")) in page
    provenance = json.loads((folder / "provenance.json").read_text())
    for part in provenance.get("parts", [provenance]):
        assert f"`{part['command']}`" in page and part["machine"]["cpu"] in page
    for done in folder.glob("*/done.json"):
        assert f"## {done.parent.name}: " in page


def test_a_run_added_to_a_kept_snapshot_keeps_the_other_figures_and_claims_and_lists_both_parts(pages, tmp_path):
    """The paper snapshot less one study, then that study added back as a second run: the same figures
    and claims (a study has no paper claims, so every claim keeps its kept row), two parts."""
    snapshot = load(DOCS / "snapshot_results.py").snapshot
    kept = pages.SNAPSHOTS / "paper"
    destination, run = tmp_path / "paper", tmp_path / "run"
    shutil.copytree(kept, destination)
    shutil.move(destination / "beyond2", run / "beyond2")
    before = json.loads((kept / "provenance.json").read_text())
    snapshot(run, destination, "stableresnet reproduce --scale paper --only beyond2", "abc1234", add=True)
    assert sorted(p.parent.name for p in destination.glob("*/done.json")) == \
        sorted(p.parent.name for p in kept.glob("*/done.json"))
    pd.testing.assert_frame_equal(pd.read_csv(destination / "claims.csv"), pd.read_csv(kept / "claims.csv"))
    provenance = json.loads((destination / "provenance.json").read_text())
    assert provenance["parts"][:-1] == before.get("parts", [before])
    assert provenance["parts"][-1]["commit"] == "abc1234"
    kept_seconds = sum(json.loads(done.read_text())["seconds"] for done in kept.glob("*/done.json"))
    assert provenance["compute seconds"] == pytest.approx(kept_seconds, abs=0.1)  # beyond2 again counts once
    quick_run = tmp_path / "quick"
    shutil.copytree(pages.SNAPSHOTS / "quick" / "beyond2", quick_run / "beyond2")
    with pytest.raises(SystemExit, match="paper-scale run"):
        snapshot(quick_run, destination, "c", "abc1234", add=True)


def test_a_snapshot_names_the_machine_its_figures_ran_on_not_its_own(pages, tmp_path):
    snapshot = load(DOCS / "snapshot_results.py").snapshot
    run = tmp_path / "run"
    for figure, cpu in (("beyond2", "The CPU the run had"), ("beyond3", "The CPU the run had")):
        shutil.copytree(pages.SNAPSHOTS / "quick" / figure, run / figure)
        done = run / figure / "done.json"
        done.write_text(json.dumps({**json.loads(done.read_text()), "machine": {"cpu": cpu, "torch threads": 2}}))
    snapshot(run, tmp_path / "kept", "make reproduce", "abc1234")
    assert json.loads((tmp_path / "kept" / "provenance.json").read_text())["parts"][0]["machine"] == \
        {"cpu": "The CPU the run had", "torch threads": 2}

    done = run / "beyond3" / "done.json"  # a figure from another machine: this one's, and both CPUs named
    done.write_text(json.dumps({**json.loads(done.read_text()), "machine": {"cpu": "Another CPU"}}))
    snapshot(run, tmp_path / "kept", "make reproduce", "abc1234")
    machine = json.loads((tmp_path / "kept" / "provenance.json").read_text())["parts"][0]["machine"]
    assert machine["figures ran on"] == ["Another CPU", "The CPU the run had"]
    assert machine["torch threads"] == torch.get_num_threads()


def test_when_to_use_calls_a_clear_fold_by_fold_loss_a_loss(pages, tmp_path, monkeypatch):
    folds = [0.90, 0.91, 0.92, 0.93, 0.94]
    rows = [{"dataset": "toy", "model": "StableResNetClassifier", "fold_accuracy": [a - 0.05 for a in folds],
             "fold_fit_seconds": [2.0] * 5},
            {"dataset": "toy", "model": "HistGradientBoostingClassifier", "fold_accuracy": folds,
             "fold_fit_seconds": [1.0] * 5},
            {"dataset": "toy", "model": "MLPClassifier", "fold_accuracy": [a - 0.01 for a in folds],
             "fold_fit_seconds": [1.0] * 5}]
    (tmp_path / "bench_tabular.json").write_text(json.dumps(
        {"command": "c", "date": "d", "machine": {}, "settings": {"folds": 5}, "rows": rows, "notes": ""}))
    monkeypatch.setattr(pages, "BENCHMARKS", tmp_path)
    page = pages.when_to_use_page()
    # Every fold is 0.05 below the best alternative (HistGB): the interval is a point below zero.
    assert "`StableResNetClassifier` wins on 0, ties on 0 and loses on 1 of 1 data sets" in page
    assert "| toy | StableResNetClassifier | HistGradientBoostingClassifier | -0.050 |" in page
