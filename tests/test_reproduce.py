"""reproduce: spec validation, resume after an interruption, claims computed from the tables, the report."""

import json

import pandas as pd
import pytest
from PIL import Image

from stableresnet.experiments import reproduce
from stableresnet.experiments.claims import evaluate_claims
from stableresnet.experiments.reproduce import load_specs, run_reproduce, select
from stableresnet.model import ConfigError
from stableresnet.viz.report import build_report

def test_the_bundled_specs_cover_every_figure_at_both_scales():
    for scale in ("quick", "paper"):
        figures = [e.figure for e in load_specs(scale)]
        assert figures == [f"fig{n}" for n in range(1, 16)] + ["beyond1", "beyond2", "beyond3"]
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
        ('[b]\ntitle = "x"\nkind = "comparison"\ndatasets = ["wine"]\nvariants = []\n', "non-empty list"),
        ('[b]\ntitle = "x"\nkind = "comparison"\ndatasets = ["wine"]\nvariants = [{name = "a"}, {name = "a"}]\n',
         "every variant needs its own name"),
        ('[b]\ntitle = "x"\nkind = "comparison"\ndatasets = ["wine", "autism"]\nepochs = { wine = 2 }\n'
         'variants = [{name = "a"}]\n', "no value for dataset 'autism'"),
        ('[b]\ntitle = "x"\nkind = "comparison"\ndatasets = ["wine"]\nvariants = [{name = "a", frames = 2}]\n',
         r"variant 'a': unknown setting\(s\) \['frames'\]"),
        ('[b]\ntitle = "x"\nkind = "propagation"\nfigure = 3\nlevels = 3\ndepth = 10\n', "cannot be built in 3 levels"),
        ('[b]\ntitle = "x"\nkind = "propagation"\nfigure = 3\nframes = 1\n', "at least 2 frames"),
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


def test_an_interrupted_reproduce_resumes_and_reuses_finished_figures(tiny_spec, tmp_path, monkeypatch):
    experiments = load_specs("quick", tiny_spec())
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


COMPARISON_SPEC = """
[beyond1]
title = "policies"
kind = "comparison"
datasets = ["wine", "circles"]
blocks = ["plain"]
step_sizes = [0.5]
trials = 2
depth = 4
epochs = { wine = 2, circles = 1 }
variants = [{ name = "fixed", step_size_policy = "fixed" }, { name = "learnable", step_size_policy = "learnable" },
            { name = "rk4 at 1/4 depth", integrator = "rk4", depth = 1, step_sizes = [2.0] }]

[beyond3]
title = "multi-level"
kind = "propagation"
figure = 3
levels = 2
depth = 8
epochs = 1
n_samples = 40
frames = 3
"""


def test_beyond_the_paper_comparison_and_multilevel_in_their_own_report_section(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(COMPARISON_SPEC)
    out = tmp_path / "out"
    records = run_reproduce(load_specs("quick", spec), out, "quick")
    table = pd.read_csv(out / records[0]["table"])
    assert len(table) == 2 * 3 * 2  # datasets × variants × trials
    # Paired design: every variant of a dataset trains trial t from the same seed (same split).
    assert (table.groupby(["dataset", "trial"])["seed"].nunique() == 1).all()
    assert set(table["depth"]) == {4, 1} and set(table.loc[table["variant"] == "rk4 at 1/4 depth", "integrator"]) == {"rk4"}
    summary = pd.read_csv(out / "beyond1" / "summary.csv")
    assert list(summary["variant"][:3]) == ["fixed", "learnable", "rk4 at 1/4 depth"]  # spec order
    fixed = summary[summary["variant"] == "fixed"]
    assert (fixed["block_h_mean"] == 0.5).all()
    assert (summary["trials"] == 2).all()
    wine = table[(table["dataset"] == "wine") & (table["variant"] == "fixed")]["test_accuracy"]
    assert summary.loc[(summary["dataset"] == "wine") & (summary["variant"] == "fixed"), "var"].item() == \
        pytest.approx(wine.var())
    with Image.open(out / "beyond3" / "propagation-scaled.gif") as gif:
        assert gif.n_frames == 3  # frames = 3 of the 9 layers
    assert json.loads((out / "beyond3" / "config.json").read_text())["config"]["levels"] == 2

    page = build_report(out, records, evaluate_claims(records, out), "quick", "cpu").read_text()
    assert page.index("Beyond the paper") < page.index("beyond1: policies")
    assert "stableresnet reproduce --scale quick --only beyond1" in page
    assert "src='beyond1/comparison.png'" in page and (out / "beyond1" / "comparison.png").exists()


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
