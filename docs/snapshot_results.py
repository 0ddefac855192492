"""Keep the tables of a ``stableresnet reproduce`` run for the documentation's results pages.

    .venv/bin/python docs/snapshot_results.py results/reproduce/quick docs/results/quick \
        --command "make reproduce"

copies each figure's ``done.json``, ``summary.csv`` and ``verdicts.csv`` (kilobytes; the pictures,
animations and per-member tables stay in the run folder), evaluates the paper-vs-here claims on the
run's own tables into ``claims.csv`` (``stableresnet.experiments.claims``, the rule the report uses)
and writes ``provenance.json``: the command, the commit, the date and the machine the figures'
``done.json`` name. The docs build renders these files (``_ext/generated_pages.py``); nothing in
a results page is typed by hand.

``--add`` adds a run's figures to an existing snapshot of the same scale instead of replacing it
(a long scale finished in parts, e.g. on different days or machines): the snapshot's other figures
stay, a claim this run cannot evaluate (its figure is not in the run) keeps its kept row, and
``provenance.json`` lists each part (command, commit, date, machine, figures, compute); its total
compute is that of the figures it keeps, so a figure run again counts once.

    .venv/bin/python docs/snapshot_results.py results/reproduce/paper docs/results/paper --add \
        --command "stableresnet reproduce --scale paper --only beyond1"
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from stableresnet.experiments.claims import evaluate_claims
from stableresnet.files import write_atomically
from stableresnet.environment import environment

KEPT = ("done.json", "summary.csv", "verdicts.csv")


def commit() -> str:
    """The checked-out commit, with "+changes" when the work tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return head + ("+changes" if dirty.stdout.strip() else "")


def run_machine(records: list[dict]) -> dict:
    """The machine the figures ran on, as their done.json records it. Where they disagree, or a record
    predates that field: this process's machine, with the CPUs the figures name listed beside it."""
    machines = [record.get("machine") for record in records]
    if all(machine == machines[0] for machine in machines) and machines[0] is not None:
        return machines[0]
    return {**environment(), "figures ran on": sorted({machine["cpu"] for machine in machines if machine} or
                                                        {"not recorded"})}


def snapshot(run: Path, destination: Path, command: str, made_at: str, note: str = "", add: bool = False) -> Path:
    """Copy ``run``'s small tables into ``destination`` (replacing it, or adding to it with ``add``)
    with claims.csv and provenance.json."""
    records = [json.loads(path.read_text()) for path in sorted(run.glob("*/done.json"))]
    if not records:
        raise SystemExit(f"{run} holds no finished figure (no */done.json): run `stableresnet reproduce` first")
    claims = evaluate_claims(records, run)
    part = {"command": command, "commit": made_at, "date": datetime.date.today().isoformat(),
            "figures": len(records), "compute seconds": round(sum(record["seconds"] for record in records), 1),
            "machine": run_machine(records), "note": note}
    parts = [part]
    if add:
        kept = json.loads((destination / "provenance.json").read_text())
        if kept["scale"] != records[0]["scale"]:
            raise SystemExit(f"{destination} keeps a {kept['scale']}-scale run; {run} is at the "
                             f"{records[0]['scale']} scale")
        parts = kept.get("parts", [kept]) + parts
        kept_claims = pd.read_csv(destination / "claims.csv")
        kept_rows = {(row.figure, row.paper): row for _, row in kept_claims.iterrows()}
        claims = pd.DataFrame([kept_rows.get((row.figure, row.paper), row) if row.verdict == "not run" else row
                               for _, row in claims.iterrows()]).reset_index(drop=True)
        for record in records:
            shutil.rmtree(destination / record["figure"], ignore_errors=True)
    elif destination.exists():
        shutil.rmtree(destination)
    for record in records:
        for name in KEPT:
            source = run / record["figure"] / name
            if source.exists():
                (destination / record["figure"]).mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination / record["figure"] / name)
    write_atomically(destination / "claims.csv", lambda p: claims.to_csv(p, index=False))
    kept_records = [json.loads(path.read_text()) for path in destination.glob("*/done.json")]
    provenance = {"scale": records[0]["scale"], "figures": len(kept_records),
                  "compute seconds": round(sum(record["seconds"] for record in kept_records), 1), "parts": parts}
    write_atomically(destination / "provenance.json", lambda p: p.write_text(json.dumps(provenance, indent=2) + "\n"))
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a reproduce output folder")
    parser.add_argument("destination", type=Path, help="e.g. docs/results/quick")
    parser.add_argument("--command", required=True, help="the command that made the run, as a user would type it")
    parser.add_argument("--commit", default=None, help="the commit that made the run [the checked-out one]")
    parser.add_argument("--note", default="", help="what a reader should know, e.g. that other jobs shared the machine")
    parser.add_argument("--add", action="store_true", help="add the run's figures to the kept snapshot")
    args = parser.parse_args()
    kept = snapshot(args.run, args.destination, args.command, args.commit or commit(), args.note, args.add)
    print(f"kept the tables of {args.run} in {kept}")


if __name__ == "__main__":
    main()
