"""reproduce: spec validation, resume after an interruption, claims computed from the tables, the report."""

import json

import pandas as pd
import pytest

from stableresnet.experiments import reproduce
from stableresnet.experiments.claims import evaluate_claims
from stableresnet.experiments.reproduce import load_specs, run_reproduce, select
from stableresnet.model import ConfigError
from stableresnet.viz.report import build_report

TINY_SPEC = """
[fig1]
title = "data"
kind = "data"
dataset = "circles"
n_samples = 60

[fig2]
title = "plain h = 1 <script>alert(1)</script>"
kind = "propagation"
figure = 2
quick = { depth = 4, epochs = 2, n_samples = 60 }

[fig9]
title = "wine"
kind = "sweep"
dataset = "wine"
quick = { trials = 2, step_sizes = [0.1, 1.0], depth = 2, epochs = 2, blocks = ["plain", "batchnorm"] }
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(TINY_SPEC)
    return path


def test_the_bundled_specs_cover_every_figure_at_both_scales():
    for scale in ("quick", "paper"):
        figures = [e.figure for e in load_specs(scale)]
        assert figures == [f"fig{n}" for n in range(1, 16)]
    paper = {e.figure: e for e in load_specs("paper")}
    assert paper["fig9"].settings == {"dataset": "wine"}  # the paper preset, unchanged
    assert load_specs("quick")[8].settings["trials"] < 10


@pytest.mark.parametrize(
    "text, message",
    [
        ('[fig9]\ntitle = "x"\nkind = "sweep"\ndataset = "iris"\n', r"\[fig9\]: no paper preset for 'iris'"),
        ('[fig9]\ntitle = "x"\nkind = "sweep"\ndataset = "wine"\nstep_sizes = [0.1, -1.0]\n', r"\[fig9\]: step size h"),
        ('[fig9]\ntitle = "x"\nkind = "sweep"\ndataset = "wine"\nstep_sizes = []\n', r"\[fig9\]: the list of step sizes h is empty"),
        ('[fig9]\nkind = "sweep"\ndataset = "wine"\n', r"\[fig9\]: missing field 'title'"),
        ('[fig9]\ntitle = "x"\nkind = "movie"\n', r"unknown kind 'movie'"),
        ('[fig9]\ntitle = "x"\nkind = "sweep"\ndataset = "wine"\nlayers = 3\n', r"unknown setting\(s\) \['layers'\]"),
        ('[fig2]\ntitle = "x"\nkind = "propagation"\nfigure = 9\n', r"\[fig2\]: .*figure"),
        ('[fig1\n', "cannot read experiment specs"),
    ],
)
def test_bad_specs_are_refused_with_the_figure_and_problem(tmp_path, text, message):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_specs("quick", path)


def test_unknown_figure_in_only_and_unknown_scale():
    with pytest.raises(ConfigError, match=r"unknown figure\(s\) \['fig99'\]"):
        select(load_specs("quick"), "fig2,fig99")
    with pytest.raises(ConfigError, match="unknown scale 'huge'"):
        load_specs("huge")


def test_an_interrupted_reproduce_resumes_and_reuses_finished_figures(spec, tmp_path, monkeypatch):
    experiments = load_specs("quick", spec)
    out = tmp_path / "out"
    real_sweep = reproduce.KINDS["sweep"]

    class Interrupted(real_sweep):
        @staticmethod
        def run(*args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setitem(reproduce.KINDS, "sweep", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_reproduce(experiments, out, "quick")
    assert (out / "fig1" / "done.json").exists() and (out / "fig2" / "done.json").exists()
    assert not (out / "fig9" / "done.json").exists()
    stamps = {f: (out / f / "done.json").stat().st_mtime_ns for f in ("fig1", "fig2")}

    monkeypatch.setitem(reproduce.KINDS, "sweep", real_sweep)
    records = run_reproduce(experiments, out, "quick")
    assert [r["figure"] for r in records] == ["fig1", "fig2", "fig9"]
    assert all((out / f / "done.json").stat().st_mtime_ns == stamp for f, stamp in stamps.items())
    table = pd.read_csv(out / records[2]["table"])
    assert len(table) == 2 * 2 * 2  # blocks × h × trials

    claims = evaluate_claims(records, out)
    report = build_report(out, records, claims, "quick", "cpu")
    page = report.read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    for name in ("fig1/data.png", "fig2/grid-scaled.png", "fig2/propagation-fixed.gif", "fig9/sweep.png"):
        assert f"src='{name}'" in page
        assert (out / name).exists()


def write_sweep(path, rows):
    table = pd.DataFrame(rows, columns=["block", "h", "test_accuracy"])
    table["dataset"], table["diverged"] = "toy", False
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


def test_claims_are_computed_from_the_result_tables(tmp_path):
    # Wine-like table: plain at h = 1 worse and wider than at h = 0.1; batch norm steadier at h = 1.
    write_sweep(tmp_path / "runs/a/results.csv", [
        ("plain", 0.1, 0.96), ("plain", 0.1, 0.98), ("plain", 1.0, 0.70), ("plain", 1.0, 0.90),
        ("batchnorm", 0.1, 0.99), ("batchnorm", 0.1, 0.99), ("batchnorm", 1.0, 0.93), ("batchnorm", 1.0, 0.95),
    ])
    records = [
        {"figure": "fig9", "table": "runs/a/results.csv"},
        {"figure": "fig2", "numbers": {"test_accuracy": 0.62, "max_abs_feature_last": 1e9}},
        {"figure": "fig3", "numbers": {"first_layer_accuracy_1": 150, "max_layer_accuracy": 1.0, "depth": 500}},
        {"figure": "fig6", "numbers": {"max_abs_feature_last": 12.0}},
    ]
    claims = evaluate_claims(records, tmp_path).set_index(["figure", "measure"])["holds"]
    fig9 = claims.loc["fig9"]
    assert bool(fig9.iloc[0])  # large h worse: 0.80 ± 0.141 vs 0.97 ± 0.014
    assert bool(fig9.iloc[1])  # batch norm at h = 1: 0.94 ± 0.014 beats plain 0.80 ± 0.141
    assert not bool(fig9.iloc[2])  # best batch norm 0.99 > plain h = 0.1's 0.97
    assert not bool(claims.loc["fig2"].iloc[0])  # 0.62 is not within 0.1 of 0.8
    assert bool(claims.loc["fig3"].iloc[0])  # layer 150 ≤ 200
    assert bool(claims.loc["fig6"].iloc[0])  # 12 < 1e9
    assert claims.loc["fig10"].isna().all()  # not run
