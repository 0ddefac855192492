"""Sharing the machine: the CLI Wine sweep alone and two at once, under the old and the new defaults.

    .venv/bin/python benchmarks/bench_shared.py                 # about 5 minutes on 2 cores
    .venv/bin/python benchmarks/bench_shared.py --stop-after 8  # give up on a pair after 8× its solo time

Each run is ``stableresnet sweep --dataset wine`` in a new process (start-up included) into its own
temporary folder, measured one set-up after another in one run, with nothing else running:

- the old default: the groups one after another on torch's threads (``--workers 1``);
- the new default: one group per usable core, each on one torch thread (no ``--workers``);

each alone, then two identical sweeps started together (each one's own wall time). Two torch
processes that each run OpenMP's thread pool on a 2-core machine wait on each other's spinning
threads at every one of the engine's thousands of small parallel regions per step; a pair that
runs longer than ``--stop-after`` times its solo time is stopped and shown as "> N s".
The share is solo time / time in the pair: 50 % is a fair half of the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import default_path, save

SETUPS = {
    "old default (--workers 1, torch's threads)": ["--workers", "1"],
    "new default (a group per core, one thread each)": [],
}


def sweep_command(out: Path, extra: list[str]) -> list[str]:
    return [str(Path(sys.executable).with_name("stableresnet")), "sweep", "--dataset", "wine", "--out", str(out), *extra]


def run_together(count: int, extra: list[str], limit: float | None) -> list[float | None]:
    """Wall seconds of ``count`` identical sweeps started at once (None: stopped at ``limit``)."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        processes = [subprocess.Popen(sweep_command(Path(folder) / f"run{i}", extra), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for i in range(count)]
        seconds: list[float | None] = [None] * count
        while any(s is None for s in seconds):
            for i, process in enumerate(processes):
                if seconds[i] is None and process.poll() is not None:
                    if process.returncode:
                        raise SystemExit(f"sweep failed ({process.returncode}): {process.stderr.read()[-2000:]}")
                    seconds[i] = time.perf_counter() - started
            if limit is not None and time.perf_counter() - started > limit:
                for process in processes:
                    process.kill()
                    process.wait()
                break
            time.sleep(0.05)
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop-after", type=float, default=6.0, help="stop a pair after this many solo times")
    parser.add_argument("--json", type=Path, default=default_path(__file__), help="where the table is kept")
    args = parser.parse_args()
    rows = []
    for setup, extra in SETUPS.items():
        (alone,) = run_together(1, extra, None)
        pair = run_together(2, extra, args.stop_after * alone)
        shown = [f"{s:.1f} s" if s is not None else f"> {args.stop_after * alone:.0f} s (stopped)" for s in pair]
        worst = max(s if s is not None else args.stop_after * alone for s in pair)
        share = alone / worst
        print(f"{setup}: alone {alone:.1f} s; two at once {', '.join(shown)}: each at "
              f"{'≤ ' if None in pair else ''}{share:.0%} of its solo speed", flush=True)
        rows.append({"set-up": setup, "alone (s)": alone, "two at once, slower of the two (s)": worst,
                     "stopped": None in pair, "share of solo speed": share})
    old, new = rows
    print(f"new default alone: {old['alone (s)'] / new['alone (s)']:.2f}x the old default's speed")
    save(args.json, "CLI Wine sweep alone and two at once (start-up included)", rows,
         {"command": "stableresnet sweep --dataset wine", "stop after (× solo)": args.stop_after})


if __name__ == "__main__":
    main()
