"""Keep the tables of a ``stableresnet reproduce`` run for the documentation's results pages.

    .venv/bin/python docs/snapshot_results.py results/reproduce/quick docs/results/quick \
        --command "make reproduce"

copies each figure's ``done.json``, ``summary.csv`` and ``verdicts.csv`` (kilobytes; the pictures,
animations and per-member tables stay in the run folder), evaluates the paper-vs-here claims on the
run's own tables into ``claims.csv`` (``stableresnet.experiments.claims``, the rule the report uses)
and writes ``provenance.json``: the command, the commit, the date and the machine. The docs build
renders these files (``_ext/generated_pages.py``); nothing in a results page is typed by hand.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
from pathlib import Path

from stableresnet.experiments.claims import evaluate_claims
from stableresnet.files import write_atomically
from stableresnet.environment import environment

KEPT = ("done.json", "summary.csv", "verdicts.csv")


def commit() -> str:
    """The checked-out commit, with "+changes" when the work tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return head + ("+changes" if dirty.stdout.strip() else "")


def snapshot(run: Path, destination: Path, command: str, made_at: str, note: str = "") -> Path:
    """Copy ``run``'s small tables into ``destination`` (replacing it) with claims.csv and provenance.json."""
    records = [json.loads(path.read_text()) for path in sorted(run.glob("*/done.json"))]
    if not records:
        raise SystemExit(f"{run} holds no finished figure (no */done.json): run `stableresnet reproduce` first")
    if destination.exists():
        shutil.rmtree(destination)
    for record in records:
        for name in KEPT:
            source = run / record["figure"] / name
            if source.exists():
                (destination / record["figure"]).mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination / record["figure"] / name)
    claims = evaluate_claims(records, run)
    write_atomically(destination / "claims.csv", lambda p: claims.to_csv(p, index=False))
    provenance = {"command": command, "commit": made_at, "scale": records[0]["scale"],
                  "date": datetime.date.today().isoformat(), "figures": len(records),
                  "compute seconds": round(sum(record["seconds"] for record in records), 1),
                  "machine": environment(), "note": note}
    write_atomically(destination / "provenance.json", lambda p: p.write_text(json.dumps(provenance, indent=2) + "\n"))
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a reproduce output folder")
    parser.add_argument("destination", type=Path, help="e.g. docs/results/quick")
    parser.add_argument("--command", required=True, help="the command that made the run, as a user would type it")
    parser.add_argument("--commit", default=None, help="the commit that made the run [the checked-out one]")
    parser.add_argument("--note", default="", help="what a reader should know, e.g. that other jobs shared the machine")
    args = parser.parse_args()
    print(f"kept the tables of {args.run} in {snapshot(args.run, args.destination, args.command, args.commit or commit(), args.note)}")


if __name__ == "__main__":
    main()
