"""reproduce: spec validation, resume after an interruption, claims computed from the tables, the report."""

import json
import os
import time

import pandas as pd
import pytest
import torch
from PIL import Image

from stableresnet.experiments import reproduce
from stableresnet.experiments.claims import evaluate_claims, hold_rate_text
from stableresnet.experiments.reproduce import load_specs, run_reproduce
from stableresnet.experiments.specs import select
from stableresnet.model import ConfigError
from stableresnet.stats import wilson_interval
from stableresnet.experiments.report import build_report

def test_the_bundled_specs_cover_every_figure_at_both_scales():
    for scale in ("quick", "paper"):
        figures = [e.figure for e in load_specs(scale)]
        assert figures[:18] == [f"fig{n}" for n in range(1, 16)] + ["beyond1", "beyond2", "beyond3"]
        assert "beyond4" in figures
    paper = {e.figure: e for e in load_specs("paper")}
    assert paper["fig9"].settings == {"dataset": "wine"}  # the paper preset, unchanged
    assert load_specs("quick")[8].settings["trials"] < 10
    quick = {e.figure: e for e in load_specs("quick")}
    for n in range(2, 8):  # every picture is checked over seeds: 10 at the paper scale, at least 5 quick
        assert paper[f"fig{n}"].settings["seeds"] == 10 and quick[f"fig{n}"].settings["seeds"] >= 5
    assert paper["fig5"].settings["compare_depth"] == quick["fig5"].settings["compare_depth"] == 100


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
        ('[b]\ntitle = "x"\nkind = "propagation"\nfigure = 3\nseeds = 0\n', r"\[b\]: seeds must be an integer ≥ 1"),
        ('[b]\ntitle = "x"\nkind = "propagation"\nfigure = 5\ncompare_depth = 0\n', r"\[b\]: depth must be"),
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
    machine = records[2]["machine"]  # where the figure ran, for the docs' snapshot
    assert machine["torch threads"] == torch.get_num_threads() and machine["logical cores"] == os.cpu_count()
    assert all((out / f / "done.json").stat().st_mtime_ns == stamp for f, stamp in stamps.items())
    table = pd.read_csv(out / records[2]["table"])
    assert len(table) == 2 * 2 * 2  # blocks × h × trials

    claims = evaluate_claims(records, out)
    fig2 = records[1]
    assert [m["seed"] for m in fig2["members"]] == [0, 1] and fig2["numbers"]["seeds"] == 2
    summary = pd.read_csv(out / "fig2" / "summary.csv")
    assert list(summary["test_accuracy"]) == [m["test_accuracy"] for m in fig2["members"]]
    assert set(claims.loc[claims["figure"] == "fig2", "seeds"]) == {2}
    report = build_report(out, records, claims, "quick", "cpu")
    page = report.read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "seeds where it holds" in page
    for name in ("fig1/data.png", "fig2/grid-scaled.png", "fig2/propagation-fixed.gif", "fig2/seed-bands.png",
                 "fig9/sweep.png"):
        assert f"src='{name}'" in page
        assert (out / name).exists()


def test_a_resumed_figure_counts_the_time_of_its_stopped_runs(tiny_spec, tmp_path, monkeypatch):
    fig9 = [e for e in load_specs("quick", tiny_spec()) if e.figure == "fig9"]
    real_sweep = reproduce.KINDS["sweep"]
    calls = []

    class SlowThenStopped(real_sweep):
        @staticmethod
        def run(*args, **kwargs):
            calls.append(1)
            time.sleep(0.5)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return real_sweep.run(*args, **kwargs)

    monkeypatch.setitem(reproduce.KINDS, "sweep", SlowThenStopped)
    with pytest.raises(KeyboardInterrupt):
        run_reproduce(fig9, tmp_path, "quick")
    spent = tmp_path / "runs" / fig9[0].run_key / "spent-fig9.json"
    assert json.loads(spent.read_text())["seconds"] >= 0.5
    started = time.perf_counter()
    record, = run_reproduce(fig9, tmp_path, "quick")
    second = time.perf_counter() - started
    assert 0.5 + 0.5 <= record["seconds"] <= 0.5 + second + 0.5  # both runs, and no more than they took
    assert not spent.exists()


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
    # Each later variant against the first, trial by trial (rk4's h = 2 pairs with fixed h = 0.5).
    later = summary[summary["variant"] != "fixed"]
    assert fixed["pairs"].isna().all() and (fixed["verdict"] == "reference").all() and (later["pairs"] == 2).all() and (later["first_h"] == 0.5).all()
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
    """A sweep results table; the rows of each (block, h) are its trials 0, 1, ... in the order given."""
    table = pd.DataFrame(rows, columns=["block", "h", "test_accuracy"])
    table["trial"] = table.groupby(["block", "h"]).cumcount()
    table["dataset"], table["diverged"] = "toy", False
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


def picture(figure, *members):
    """A picture figure's done record with one numbers dict per seed."""
    return {"figure": figure, "numbers": {"seeds": len(members)}, "members": list(members)}


def test_claims_are_computed_from_the_result_tables(tmp_path):
    # Wine-like table: plain at h = 1 worse and wider than at h = 0.1; batch norm steadier at h = 1.
    write_sweep(tmp_path / "runs/a/results.csv", [
        ("plain", 0.1, 0.96), ("plain", 0.1, 0.98), ("plain", 1.0, 0.70), ("plain", 1.0, 0.90),
        ("batchnorm", 0.1, 0.99), ("batchnorm", 0.1, 0.99), ("batchnorm", 1.0, 0.93), ("batchnorm", 1.0, 0.95),
    ])
    plain = [{"seed": s, "test_accuracy": a, "max_abs_feature_first": 2.0, "max_abs_feature_last": last}
             for s, a, last in [(0, 0.62, 1e9), (1, 0.75, float("nan")), (2, 0.85, 5.0), (3, 0.80, 30.0), (4, 0.9, 15.0)]]
    records = [
        {"figure": "fig9", "table": "runs/a/results.csv"},
        picture("fig2", *plain),
        # Fig. 3: 1.0 reached at layer 150 by seeds 0-3, never by seed 4.
        picture("fig3", *[{"first_layer_accuracy_1": 150, "max_layer_accuracy": 1.0, "knn_accuracy": 0.99}] * 4,
                {"first_layer_accuracy_1": None, "max_layer_accuracy": 0.98, "knn_accuracy": 0.98}),
        # Fig. 6 pairs with fig. 2 by seed (seed 9 has no partner and is left out).
        picture("fig6", *[{"seed": s, "max_abs_feature_last": 12.0} for s in (4, 3, 2, 1, 0, 9)]),
        picture("fig5", *[{"test_accuracy": a, "compare_depth_test_accuracy": b, "depth": 500, "compare_depth": 100}
                          for a, b in [(0.85, 0.84), (0.86, 0.70), (0.80, 0.82)]]),
    ]
    claims = evaluate_claims(records, tmp_path).set_index(["figure", "measure"])

    def rate(figure, index=0):
        row = claims.loc[figure].iloc[index]
        return row["seeds_held"], row["seeds"], row["verdict"]

    # Sweep claims are rated over trials paired by trial index; two trials never decide.
    assert rate("fig9", 0) == (2, 2, "unclear")  # h = 1 lower than h = 0.1 in both trials (0.70 < 0.96, 0.90 < 0.98)
    assert "std ratio undefined (fewer than 3 pairs)" in claims.loc["fig9"].iloc[0]["measured"]
    assert "0.800 ± 0.141" in claims.loc["fig9"].iloc[0]["measured"]  # mean ± std kept beside the verdict
    assert rate("fig9", 1) == (2, 2, "unclear")  # batch norm at h = 1 above plain in both trials
    assert rate("fig9", 2) == (0, 2, "unclear")  # best batch norm (h = 0.1: 0.99, 0.99) > plain + 0.005 in both

    # Within 0.1 of 0.8: 0.75, 0.85, 0.80, 0.9 yes (4 of 5), 0.62 no; 4/5 is unclear.
    assert rate("fig2", 0) == (4, 5, "unclear")
    # Diverge ≥ 10 ×: 1e9 / 2 yes, NaN (overflowed) yes, 5 / 2 no, 30 / 2 yes, 15 / 2 no -> 3/5.
    assert rate("fig2", 1) == (3, 5, "unclear")
    assert rate("fig3") == (4, 5, "unclear")
    assert "k-NN on the same test points): median 0.99" in claims.loc["fig3"].iloc[0]["measured"]
    # 12 < plain's last max |y| for seeds 0 (1e9), 1 (NaN = overflow), 3 (30), 4 (15); not seed 2 (5).
    assert rate("fig6") == (4, 5, "unclear")
    # |500 - 100 layers| ≤ 0.05: 0.01 yes, 0.16 no, 0.02 yes.
    assert rate("fig5", 1) == (2, 3, "unclear")
    row = claims.loc["fig3"].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(4, 5))
    assert claims.loc["fig10"]["verdict"].eq("not run").all() and claims.loc["fig10"]["holds"].isna().all()


def test_unanimous_seeds_decide_and_an_old_single_seed_record_counts_as_one(tmp_path):
    shrinking = [{"max_layer_accuracy": 0.6, "max_abs_feature_first": 2.0, "max_abs_feature_last": 0.1}] * 5
    records = [picture("fig4", *shrinking),
               # A done record from before seeds: flat numbers, no members.
               {"figure": "fig7", "numbers": {"first_layer_accuracy_1": 120, "max_layer_accuracy": 1.0, "depth": 500}}]
    claims = evaluate_claims(records, tmp_path).set_index("figure")
    fig4 = claims.loc["fig4"]
    assert list(fig4["verdict"]) == ["holds", "holds"] and list(fig4["holds"]) == [True, True]  # 5/5
    fig7 = claims.loc["fig7"]
    assert (fig7["seeds_held"], fig7["seeds"], fig7["verdict"]) == (1, 1, "unclear")
    assert hold_rate_text(fig7) == "1/1 (95 % CI 0.21–1.00)"
    page = build_report(tmp_path, [{**r, "title": r["figure"], "kind": "propagation", "settings": {}, "seconds": 1.0}
                                   for r in records], evaluate_claims(records, tmp_path), "quick", "cpu").read_text()
    assert "5/5 (95 % CI 0.57–1.00)" in page and "2 of 3 checked statements hold, 1 unclear" in page


ENGINE_SPEC = """
[fig15]
title = "elec2 over time"
kind = "drift"
plot = "periods"
data = "elec2"
train_until = "12"
step_sizes = [1.0]
quick = { trials = 1, depth = 2, width = 4, epochs = 1, batch_size = 4000, blocks = ["plain"] }

[beyond1]
title = "policies"
kind = "comparison"
datasets = ["wine"]
blocks = ["plain"]
step_sizes = [0.5]
trials = 1
depth = 2
epochs = 1
variants = [{ name = "fixed", step_size_policy = "fixed" }, { name = "learnable", step_size_policy = "learnable" }]
"""


def test_compile_reaches_the_training_of_every_kind_and_is_recorded(tiny_spec, tmp_path, monkeypatch):
    """``reproduce --compile``: every training (pictures, sweeps, drift, comparisons) goes through
    ``torch.compile`` (here a recorder that returns the eager function; the numerics are tested in
    test_train), each record says so, and a figure already done is reused under either engine."""
    import torch

    calls = []

    def recorder(function, **options):
        calls.append(options)
        return function

    monkeypatch.setattr(torch, "compile", recorder)
    experiments = load_specs("quick", tiny_spec(ENGINE_SPEC))
    trained = [e for e in experiments if e.kind != "data"]
    counts = {}
    for experiment in trained:
        before = len(calls)
        record, = run_reproduce([experiment], tmp_path / "compiled", "quick", compile=True)
        counts[experiment.figure] = len(calls) - before
        assert record["engine"] == "compiled"
    # One fit per group, block or variant: fig2 one ensemble, fig9 two blocks, fig15 one block,
    # beyond1 two variants.
    assert counts == {"fig2": 1, "fig9": 2, "fig15": 1, "beyond1": 2}
    assert all(options == {"dynamic": True, "mode": None} for options in calls)

    before = len(calls)
    records = run_reproduce(trained, tmp_path / "eager", "quick")
    assert len(calls) == before and all(record["engine"] == "eager" for record in records)
    reused = run_reproduce(trained, tmp_path / "eager", "quick", compile=True)
    assert len(calls) == before and [r["engine"] for r in reused] == ["eager"] * len(trained)
    compiled = run_reproduce(trained, tmp_path / "compiled", "quick")  # all done: reused as compiled
    page = build_report(tmp_path / "compiled", compiled, evaluate_claims(compiled, tmp_path / "compiled"),
                        "quick", "cpu").read_text()
    assert page.count("(compiled, torch.compile)") == len(trained) and "<td>compiled</td>" in page
    page = build_report(tmp_path / "eager", records, evaluate_claims(records, tmp_path / "eager"),
                        "quick", "cpu").read_text()
    assert "(compiled, torch.compile)" not in page and "<td>eager</td>" in page


def test_workers_reach_every_sweep_and_leave_the_numbers_as_they_are(tiny_spec, tmp_path, monkeypatch):
    """``reproduce --workers 2``: every sweep, comparison and robustness study trains its groups on
    worker threads, with the tables and summaries of one group after another."""
    experiments = load_specs("quick", tiny_spec(ENGINE_SPEC))
    alone = run_reproduce(experiments, tmp_path / "alone", "quick", workers=1)
    asked, real_run_sweep = [], reproduce.run_sweep
    monkeypatch.setattr(reproduce, "run_sweep", lambda config, directory, options: asked.append(options.workers)
                        or real_run_sweep(config, directory, options))
    run_reproduce(experiments, tmp_path / "together", "quick", workers=2)
    assert asked == [2, 2, 2]  # fig9, and beyond1's two variants
    compared = []
    for one in alone:
        for name in [*(["table"] if "table" in one else []), *(f for f in one["files"] if f.endswith(".csv"))]:
            path = one[name] if name == "table" else f"{one['figure']}/{name}"
            a, b = pd.read_csv(tmp_path / "alone" / path), pd.read_csv(tmp_path / "together" / path)
            pd.testing.assert_frame_equal(a.drop(columns="seconds", errors="ignore"),
                                          b.drop(columns="seconds", errors="ignore"))
            compared.append(path)
    assert {"fig9/summary.csv", "beyond1/summary.csv"} <= set(compared) and len(compared) >= 6
    with pytest.raises(ConfigError, match="--workers must be an integer ≥ 1; got 0"):
        run_reproduce(experiments, tmp_path / "refused", "quick", workers=0)
    assert not (tmp_path / "refused").exists()


def test_the_engine_recorded_is_the_one_that_trained_the_numbers(tiny_spec, tmp_path, monkeypatch):
    """A sweep cut off after its first group and finished under ``--compile`` is "mixed", each
    member's row saying how it was trained; a figure read from a run trained earlier (fig15 shares
    fig14's drift run) keeps that run's engine."""
    import torch

    monkeypatch.setattr(torch, "compile", lambda function, **options: function)
    fig15 = ENGINE_SPEC.split("[beyond1]")[0]
    fig14 = fig15.replace("[fig15]", "[fig14]").replace('plot = "periods"', 'plot = "sweep"')
    experiments = {e.figure: e for e in load_specs("quick", tiny_spec(fig14 + fig15))}
    assert experiments["fig14"].run_key == experiments["fig15"].run_key

    def stop_at_batchnorm(experiment, index, total):
        def progress(epochs, label=None):
            if label and label.startswith("batchnorm"):
                raise KeyboardInterrupt
        return progress

    with pytest.raises(KeyboardInterrupt):
        run_reproduce([experiments["fig9"]], tmp_path, "quick", on_start=stop_at_batchnorm, workers=1)
    fig9, = run_reproduce([experiments["fig9"]], tmp_path, "quick", compile=True, workers=1)
    assert fig9["engine"] == "mixed"
    table = pd.read_csv(tmp_path / fig9["table"])
    assert table.groupby("block")["compiled"].unique().to_dict() == {"plain": [False], "batchnorm": [True]}

    fig15, = run_reproduce([experiments["fig15"]], tmp_path, "quick")
    fig14, = run_reproduce([experiments["fig14"]], tmp_path, "quick", compile=True)
    assert fig15["engine"] == fig14["engine"] == "eager"
