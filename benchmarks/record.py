"""What a benchmark run printed, kept as JSON: the command, the machine, the settings and its table.

The documentation's performance pages are generated from these files (docs/_ext/generated_pages.py),
so no benchmark number is typed into a page by hand. Each benchmark script calls ``save`` once at
the end; its ``--json`` option says where (default ``benchmarks/results/<script>.json``).
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

from stableresnet.files import write_atomically
from stableresnet.environment import environment

RESULTS = Path(__file__).parent / "results"


def default_path(script: str) -> Path:
    """``benchmarks/results/<script name>.json``."""
    return RESULTS / f"{Path(script).stem}.json"


def save(path: str | Path, title: str, rows: list[dict], settings: dict, notes: str = "") -> Path:
    """Write {benchmark, title, command, date, machine, settings, rows, notes} atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": Path(sys.argv[0]).stem, "title": title,
              "command": " ".join([".venv/bin/python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
              "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": environment(), "settings": settings, "rows": rows, "notes": notes}
    write_atomically(path, lambda partial: partial.write_text(json.dumps(record, indent=2) + "\n"))
    print(f"table written to {path}")
    return path
