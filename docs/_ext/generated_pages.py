"""Pages written at build time from files that commands wrote, so that no result is typed by hand.

- ``generated/results-quick.md``, ``generated/results-paper.md``: a reproduce run's tables, kept by
  ``docs/snapshot_results.py`` under ``docs/results/<name>/`` (claims, each figure's summary and
  verdicts, the command and machine in ``provenance.json``);
- ``generated/atlas.md``: the paper-scale claims atlas the package ships (``shipped_atlas()``);
- ``generated/cli.md``: every command and option of the typer app, read from the app itself;
- ``generated/performance.md``: every ``benchmarks/results/*.json`` (``benchmarks/record.py``) but the
  tabular comparison, which is ``generated/when-to-use.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from stableresnet.experiments.claims import hold_rate_text, verdict_counts

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
GENERATED = DOCS / "generated"
SNAPSHOTS = DOCS / "results"
BENCHMARKS = ROOT / "benchmarks" / "results"
TABULAR = "bench_tabular"
VERDICT_MARK = {"holds": "**holds**", "does not hold": "does not hold", "unclear": "*unclear*", "not run": "not run"}


def cell(value) -> str:
    """One table cell: floats to 3 decimals below 1 (3 significant digits below 0.001), pipes escaped, missing values empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1:
            return f"{value:.3f}"
        if abs(value) < 1:
            return f"{value:.3g}"
        return f"{value:,.1f}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table of ``frame``; numeric columns right-aligned."""
    columns = [str(c) for c in frame.columns]
    align = ["---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def machine_line(machine: dict) -> str:
    return (f"{machine.get('cpu', 'unknown CPU')}, {machine.get('logical cores', '?')} logical cores, "
            f"{machine.get('torch threads', '?')} torch threads; Python {machine.get('python')}, "
            f"torch {machine.get('torch')}, scikit-learn {machine.get('scikit-learn')}; GPU {machine.get('gpu', 'none')}")


def reproduce_page(name: str, title: str) -> str:
    """A reproduce snapshot: provenance, the paper-vs-here table, robustness verdicts, each figure's summary."""
    folder = SNAPSHOTS / name
    if not (folder / "provenance.json").exists():
        raise FileNotFoundError(f"{folder} holds no kept reproduce run: make one with "
                                f"`docs/snapshot_results.py RUN_FOLDER {folder.relative_to(ROOT)} --command ...`")
    provenance = json.loads((folder / "provenance.json").read_text())
    claims = pd.read_csv(folder / "claims.csv")
    scale = provenance["scale"]
    parts = [f"Made by `{part['command']}` ({scale} scale) at commit {part['commit']} on {part['date']}: "
             f"{part['figures']} figures in {part['compute seconds']:,.0f} s of compute, on "
             f"{machine_line(part['machine'])}. {part.get('note', '')}"
             for part in provenance.get("parts", [provenance])]
    lines = [f"# {title}", "", *(line for part in parts for line in (part, "")),
             "A run writes its full HTML report, with every picture and animation, to its output folder's "
             "`index.html`; the tables below are read from the files it wrote (kept in "
             f"`docs/results/{name}/` by `docs/snapshot_results.py`).", "",
             "## Paper vs. here", "",
             f"**{verdict_counts(claims)}.** A hold-rate is the seeds (pictures) or paired trials (sweeps) in which "
             "the statement holds, with its 95 % Wilson interval; a statement holds when the interval lies above "
             "1/2 and does not hold when it lies below (see {doc}`/guide/pictures`).", ""]
    shown = claims[claims["verdict"] != "not run"].copy()
    shown["hold-rate"] = [hold_rate_text(row) for row in shown.itertuples()]
    shown["verdict"] = shown["verdict"].map(VERDICT_MARK)
    lines += [markdown_table(shown[["figure", "paper", "measured", "hold-rate", "verdict"]]
                             .rename(columns={"paper": "the paper says"})), ""]
    for done in sorted(folder.glob("*/done.json"), key=lambda p: (len(p.parent.name), p.parent.name)):
        record = json.loads(done.read_text())
        figure = record["figure"]
        lines += [f"## {figure}: {record['title']}", "",
                  f"`stableresnet reproduce --scale {scale} --only {figure}`: {record['seconds']:,.0f} s of compute "
                  f"({record.get('engine') or 'eager'}); settings `{json.dumps(record['settings'])}`.", ""]
        for table_name, caption in (("summary.csv", "Numbers"), ("verdicts.csv", "Verdicts")):
            path = done.parent / table_name
            if path.exists():
                lines += [f"**{caption}** (`{figure}/{table_name}`)", "", markdown_table(pd.read_csv(path)), ""]
    return "\n".join(lines) + "\n"


def atlas_page() -> str:
    """The shipped paper-scale atlas: seeds where each statement holds, per set-up."""
    from stableresnet.experiments.atlas import shipped_atlas

    table, choices = shipped_atlas()
    chosen = sorted({choice.setup for choice in choices.values()})
    mark = {"holds": "\\*", "unclear": "?"}
    grid = table.assign(cell=[f"{int(r.k)}/{int(r.n)}{mark.get(r.verdict, '')}" for r in table.itertuples()])
    wide = grid.pivot_table(index="setup", columns="statement", values="cell", aggfunc="first", sort=False)
    wide["holds"] = table[table["verdict"] == "holds"].groupby("setup")["statement"].nunique().reindex(wide.index).fillna(0).astype(int)
    wide["at initialisation"] = table.groupby("setup")["start"].first().reindex(wide.index)
    wide = wide.reset_index()
    wide["setup"] = [f"**{s} (chosen)**" if s in chosen else s for s in wide["setup"]]
    statements = table.drop_duplicates("statement")[["statement", "paper"]]
    seconds = table.drop_duplicates("setup")["seconds"].sum()
    return "\n".join([
        "# The claims atlas (paper scale)", "",
        f"The table ships with the package as `stableresnet/experiments/atlas-paper.csv` "
        f"({table['setup'].nunique()} set-ups, {int(table['n'].max())} seeds each, {seconds:,.0f} s of training "
        "compute); it was made by `stableresnet atlas --scale paper --out results/atlas-paper --workers 2 "
        "--setups ...` with the set-ups listed in its first column. Each cell is the seeds in which the statement "
        "holds: \\* holds over seeds (Wilson interval above 1/2), ? unclear, otherwise it does not hold. "
        f"The decision rule (see {{doc}}`/guide/pictures`) chose `{', '.join(chosen)}` for the paper-scale pictures.",
        "", markdown_table(wide), "", "## The statements", "",
        markdown_table(statements.rename(columns={"paper": "the paper says"})), ""]) + "\n"


def benchmark_section(record: dict, level: str = "##") -> str:
    settings = ", ".join(f"{k} {cell(v)}" for k, v in record["settings"].items())
    return "\n".join([f"{level} {record['title']}", "", f"`{record['command']}`", "",
                      f"Run {record['date']} on {machine_line(record['machine'])}. Settings: {settings}.", "",
                      markdown_table(pd.DataFrame(record["rows"])), "",
                      *([record["notes"], ""] if record.get("notes") else [])])


def performance_page() -> str:
    records = [json.loads(p.read_text()) for p in sorted(BENCHMARKS.glob("*.json")) if p.stem != TABULAR]
    lines = ["# Performance", "",
             "Each table below is what a benchmark script printed, read from the JSON it wrote "
             "(`benchmarks/results/`). Benchmarks measure side by side in one run, on a machine with nothing else "
             "running; rerun the command shown to measure your machine.", ""]
    lines += [benchmark_section(record) for record in records] or ["No benchmark results are kept yet.", ""]
    lines += ["## Every benchmark", "",
              "The scripts in `benchmarks/`, each with the first line of its docstring. Those without a kept "
              "table print theirs; the numbers they printed on earlier days are in the {doc}`/changelog`.", "",
              markdown_table(pd.DataFrame([{"command": f"`.venv/bin/python benchmarks/{script.name}`",
                                            "what it measures": script_summary(script),
                                            "kept table": "yes" if (BENCHMARKS / f"{script.stem}.json").exists() else ""}
                                           for script in sorted(BENCHMARKS.parent.glob("*.py")) if script.stem != "record"])),
              ""]
    return "\n".join(lines) + "\n"


def script_summary(script: Path) -> str:
    """The first line of a script's module docstring."""
    import ast

    docstring = ast.get_docstring(ast.parse(script.read_text())) or ""
    return docstring.splitlines()[0] if docstring else ""


def paired_interval(differences: list[float]) -> tuple[float, float, float]:
    """Mean of paired fold differences and its 95 % t interval."""
    from scipy import stats

    values = pd.Series(differences, dtype=float)
    mean, half = values.mean(), stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def when_to_use_page() -> str:
    """The tabular comparison: accuracy and fit time per data set and model, and a win/tie/loss verdict
    of each stable ResNet against the best alternative on the same folds (paired t interval)."""
    path = BENCHMARKS / f"{TABULAR}.json"
    if not path.exists():
        return "# When to use it\n\nNo run of `benchmarks/bench_tabular.py` is kept yet.\n"
    record = json.loads(path.read_text())
    rows = pd.DataFrame(record["rows"])
    rows["accuracy"] = rows["fold_accuracy"].map(lambda v: sum(v) / len(v))
    rows["fit s"] = rows["fold_fit_seconds"].map(lambda v: sum(v) / len(v))
    wide = rows.pivot_table(index="dataset", columns="model", values="accuracy", sort=False)
    ours = [m for m in rows["model"].unique() if m.startswith("StableResNet")]
    theirs = [m for m in rows["model"].unique() if m not in ours]
    verdict_rows = []
    for dataset, group in rows.groupby("dataset", sort=False):
        by_model = group.set_index("model")
        best = max(theirs, key=lambda m: by_model.loc[m, "accuracy"])
        for model in ours:
            differences = [a - b for a, b in zip(by_model.loc[model, "fold_accuracy"], by_model.loc[best, "fold_accuracy"])]
            mean, low, high = paired_interval(differences)
            verdict = "wins" if low > 0 else "loses" if high < 0 else "ties"
            verdict_rows.append({"data set": dataset, "model": model, "best alternative": best,
                                 "difference": mean, "95 % CI": f"{low:+.3f} to {high:+.3f}", "verdict": verdict,
                                 "fit time vs alternative": by_model.loc[model, "fit s"] / by_model.loc[best, "fit s"]})
    verdicts = pd.DataFrame(verdict_rows)
    counts = {model: verdicts[verdicts["model"] == model]["verdict"].value_counts() for model in ours}
    summary = "; ".join(f"`{model}` wins on {c.get('wins', 0)}, ties on {c.get('ties', 0)} and loses on "
                        f"{c.get('loses', 0)} of {len(rows['dataset'].unique())} data sets" for model, c in counts.items())
    times = rows.pivot_table(index="dataset", columns="model", values="fit s", sort=False)
    return "\n".join([
        "# When to use it", "",
        "A stable ResNet is one more classifier for a table. This page puts it beside what a tabular practitioner "
        f"picks instead, on the same {record['settings']['folds']} folds, in one run. It is generated from the JSON that "
        f"`{record['command']}` wrote on {record['date']} ({machine_line(record['machine'])}).", "",
        f"**{summary}.** A model *wins* (or *loses*) when the 95 % t interval of its paired fold-by-fold accuracy "
        "difference to the best alternative on that data set lies above (below) zero, and *ties* otherwise.", "",
        f"Settings: {', '.join(f'{k} {cell(v)}' for k, v in record['settings'].items())}.", "",
        "## Against the best alternative", "", markdown_table(verdicts), "",
        f"## Mean accuracy over the {record['settings']['folds']} folds", "", markdown_table(wide.reset_index()), "",
        "## Mean fit time per fold (seconds)", "", markdown_table(times.reset_index()), "",
        *([record["notes"], ""] if record.get("notes") else [])]) + "\n"


def cli_page() -> str:
    """The command-line reference: each command's help, usage and options, as `--help` prints them."""
    import typer

    from stableresnet.cli import app

    group = typer.main.get_command(app)
    lines = []
    for name, command in group.commands.items():
        context = group.context_class(command, info_name=name)
        usage = " ".join(["stableresnet", name, *command.collect_usage_pieces(context)])
        records = [param.get_help_record(context) for param in command.get_params(context)]
        options = pd.DataFrame([{"option": f"`{opts}`", "description": text} for opts, text in filter(None, records)])
        lines += [f"### {name}", "", f"`{usage}`", "", command.help or "", "", markdown_table(options), ""]
    return "\n".join(lines) + "\n"


PAGES = {
    "cli.md": cli_page,
    "results-quick.md": lambda: reproduce_page("quick", "Reproduction at the quick scale"),
    "results-paper.md": lambda: reproduce_page("paper", "Reproduction at the paper scale"),
    "atlas.md": atlas_page,
    "performance.md": performance_page,
    "when-to-use.md": when_to_use_page,
}


def write_pages(app) -> None:
    GENERATED.mkdir(exist_ok=True)
    for name, page in PAGES.items():
        path = GENERATED / name
        text = page()
        if not path.exists() or path.read_text() != text:  # unchanged pages keep their mtime: no needless rebuild
            path.write_text(text)


def setup(app):
    app.connect("builder-inited", write_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
