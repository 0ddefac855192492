"""What a benchmark run printed, kept as JSON: the command, the machine, the settings and its table.

The documentation's performance pages are generated from these files (docs/_ext/generated_pages.py),
so no benchmark number is typed into a page by hand. Each benchmark script calls ``save`` once at
the end; its ``--json`` option says where (default ``benchmarks/results/<script>.json``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    """CPU model, logical cores, torch threads and the versions that decide the numbers."""
    import numpy
    import sklearn
    import torch

    cpu = platform.processor() or "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "logical cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}


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
              "machine": machine(), "settings": settings, "rows": rows, "notes": notes}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, path)
    print(f"table written to {path}")
    return path
