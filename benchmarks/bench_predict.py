"""Throughput and peak memory of ``predict_file`` on a generated CSV: memory stays flat as the file grows.

    .venv/bin/python benchmarks/bench_predict.py [--rows 300000] [--chunk-rows 49152] [--proba]

Writes a table of 8 numeric and 2 categorical columns plus a label (about 175 bytes a row, so the
default 300 000 rows are ~50 MB; ``--rows 6000000`` gives ~1 GB), chunk by chunk from a seeded
generator, fits a small classifier on its first 5 000 rows and saves it with the schema. Then a
fresh Python process runs ``predict_file`` on the whole file and reports rows/s and its peak
resident memory (``resource.getrusage(...).ru_maxrss``), next to the resident memory it had after
its imports and the model load, before reading any row. Run it at two sizes: the peak should
barely move while the file grows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

GENERATE_ROWS = 100_000  # rows written per chunk while generating the file
COLOURS = np.array(["red", "green", "blue", "amber", "violet"])
CITIES = np.array([f"city-{k:02d}" for k in range(40)])


def generate(path: Path, rows: int, seed: int) -> None:
    """Write ``rows`` rows to ``path`` in chunks; the label depends on two numbers and the colour."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, GENERATE_ROWS):
        n = min(GENERATE_ROWS, rows - start)
        numbers = rng.normal(size=(n, 8))
        frame = pd.DataFrame(numbers, columns=[f"x{k}" for k in range(8)])
        frame["colour"] = COLOURS[rng.integers(len(COLOURS), size=n)]
        frame["city"] = CITIES[rng.integers(len(CITIES), size=n)]
        frame["label"] = np.where(numbers[:, 0] + numbers[:, 1] + (frame["colour"] == "red") > 0.5, "yes", "no")
        frame.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)


def train(csv: Path, model: Path) -> None:
    from stableresnet import StableResNetClassifier
    from stableresnet.data import load_table

    sample = csv.with_name("sample.csv")
    pd.read_csv(csv, nrows=5_000).to_csv(sample, index=False)
    data = load_table(sample, "label", seed=0, one_hot=True)
    clf = StableResNetClassifier(depth=4, width=16, epochs=3, random_state=0)
    clf.fit(data.X_train, np.array(data.class_names)[data.y_train])
    clf.save(model, schema=data.schema)


def peak_rss_mib() -> float:
    """Peak resident memory of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(model: Path, csv: Path, out: Path, proba: bool, chunk_rows: int) -> None:
    """Child process: load the model, then time predict_file; prints one JSON line."""
    import torch

    from stableresnet.predict import load_predictor, predict_file

    torch.set_num_threads(1)  # the machine is shared; one thread keeps runs comparable
    load_predictor(model)
    before = peak_rss_mib()
    start = time.perf_counter()
    summary = predict_file(model, csv, out, proba=proba, chunk_rows=chunk_rows)
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": summary.rows, "seconds": seconds, "rss_before_mib": before,
                      "peak_rss_mib": peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the generated CSV (~175 bytes each)")
    parser.add_argument("--chunk-rows", type=int, default=6 * 8192)
    parser.add_argument("--proba", action="store_true", help="also write the probability columns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--measure", nargs=3, metavar=("MODEL", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(*map(Path, args.measure), args.proba, args.chunk_rows)
        return

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as folder:
        csv, model, out = Path(folder) / "table.csv", Path(folder) / "model.safetensors", Path(folder) / "preds.csv"
        start = time.perf_counter()
        generate(csv, args.rows, args.seed)
        size = csv.stat().st_size / 2**20
        print(f"generated {args.rows} rows, {size:.0f} MiB, in {time.perf_counter() - start:.0f} s")
        train(csv, model)
        command = [sys.executable, __file__, "--measure", str(model), str(csv), str(out),
                   "--chunk-rows", str(args.chunk_rows)] + (["--proba"] if args.proba else [])
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        rate = result["rows"] / result["seconds"]
        print(f"predict: {result['rows']} rows in {result['seconds']:.1f} s = {rate:,.0f} rows/s; resident memory {result['rss_before_mib']:.0f} MiB before reading, "
              f"peak {result['peak_rss_mib']:.0f} MiB (chunks of {args.chunk_rows} rows)")


if __name__ == "__main__":
    main()
