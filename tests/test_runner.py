"""The runner: an experiment written as units + one unit's run + records gets resume, workers,
Ray-free validation and progress lines without a line of its own for them."""

import re
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from stableresnet import compilation
from stableresnet.cli.common import unit_progress
from stableresnet.errors import ConfigError
from stableresnet.experiments import runner
from stableresnet.experiments.runner import WIDE_UNIT, ResultStore, RunOptions, Unit, execute


class Squares:
    """A toy experiment: unit k trains for k + 1 "epochs" and records k² and a seeded draw."""

    tables = ("records",)

    def __init__(self, n_units: int, calls: list | None = None):
        self.n_units, self.calls = n_units, calls if calls is not None else []

    def units(self):
        return [Unit(f"u{k}", f"square of {k}", epochs=k + 1, cost=k, payload=k) for k in range(self.n_units)]

    def run_unit(self, unit, context):
        self.calls.append(unit.name)
        for epoch in range(unit.epochs):
            if context.on_epoch:
                context.on_epoch(epoch, np.array([float(unit.payload)]))
        draw = torch.rand(1, generator=torch.Generator().manual_seed(unit.payload)).item()
        return {"records": pd.DataFrame({"k": [unit.payload], "square": [unit.payload ** 2], "draw": [draw]})}


def store(folder, n_units=4):
    return ResultStore(folder, {"n_units": n_units}, "a toy run", Squares.tables)


def test_a_toy_experiment_runs_resumes_and_refuses_another_config(tmp_path):
    calls = []
    one_by_one = RunOptions(workers=1)
    table = execute(Squares(4, calls), store(tmp_path), one_by_one)["records"]
    assert table["square"].tolist() == [0, 1, 4, 9] and calls == ["u0", "u1", "u2", "u3"]
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == ["u0.csv", "u1.csv", "u2.csv", "u3.csv"]

    class Stopped(Exception):
        pass

    def stop_at_third(unit, index, total):
        if index == 2:
            raise Stopped

    calls.clear()
    with pytest.raises(Stopped):
        execute(Squares(4, calls), store(tmp_path / "cut"), RunOptions(workers=1, progress=stop_at_third))
    assert calls == ["u0", "u1"]
    calls.clear()
    resumed = execute(Squares(4, calls), store(tmp_path / "cut"), one_by_one)["records"]
    assert calls == ["u2", "u3"]  # the finished units were not run again
    pd.testing.assert_frame_equal(resumed, table)
    with pytest.raises(ConfigError, match="holds a toy run with another config .*n_units: 4 there, 5 here"):
        store(tmp_path, n_units=5)


def test_workers_give_the_same_records_costliest_first_and_hand_torch_its_threads_back(tmp_path):
    threads = torch.get_num_threads()
    alone = execute(Squares(5), store(tmp_path / "alone", 5))["records"]
    calls = []
    together = execute(Squares(5, calls), store(tmp_path / "together", 5), RunOptions(workers=2))["records"]
    pd.testing.assert_frame_equal(together, alone)
    assert set(calls[:2]) == {"u4", "u3"}  # the two costliest start first
    assert torch.get_num_threads() == threads
    for options, message in (({"workers": 0}, "--workers must be an integer ≥ 1; got 0"),
                             ({"workers": 2, "backend": "ray"}, "--workers is for the local backend"),
                             ({"backend": "spark"}, "unknown backend 'spark'")):
        with pytest.raises(ConfigError, match=message):
            RunOptions(**options)


def test_a_toy_experiment_gets_the_commands_progress_lines_with_each_units_engine(tmp_path, capsys):
    class Logging(Squares):  # as `train.fit` logs its engine choice when training starts
        def run_unit(self, unit, context):
            if unit.payload:
                compilation.logger.info("eager (auto: %d steps)", unit.payload)
            return super().run_unit(unit, context)

    with unit_progress(RunOptions(workers=1), "unit") as options:
        execute(Logging(3), store(tmp_path, 3), options)
    lines = re.findall(r"^\[\s*\d+\.\d s\] done: (.*)$", capsys.readouterr().out, flags=re.MULTILINE)
    assert lines == ["unit 1/3 square of 0", "unit 2/3 square of 1 · eager (auto: 1 steps)",
                     "unit 3/3 square of 2 · eager (auto: 2 steps)"]
    # With workers a line is written as its unit finishes, in any order, with that unit's own engine.
    with unit_progress(RunOptions(workers=2), "unit") as options:
        execute(Logging(4), store(tmp_path / "workers", 4), options)
    lines = re.findall(r"^\[\s*\d+\.\d s\] done: unit \d/4 (.*)$", capsys.readouterr().out, flags=re.MULTILINE)
    assert sorted(lines) == ["square of 0", "square of 1 · eager (auto: 1 steps)",
                             "square of 2 · eager (auto: 2 steps)", "square of 3 · eager (auto: 3 steps)"]


def test_the_runner_sets_torchs_thread_count_while_units_train_and_gives_it_back(tmp_path):
    seen = []

    class Counting(Squares):
        def run_unit(self, unit, context):
            seen.append(torch.get_num_threads())
            return super().run_unit(unit, context)

    threads = torch.get_num_threads()
    execute(Counting(2), store(tmp_path, 2), RunOptions(threads=1))
    assert seen == [1, 1] and torch.get_num_threads() == threads
    with pytest.raises(ConfigError, match="--threads must be an integer ≥ 1; got 0"):
        RunOptions(threads=0)



class Placed(Squares):
    """Units 0 and 2 are wide (WIDE_UNIT activations a step), 1 and 3 narrow; each records where it trained."""

    def units(self):
        return [Unit(f"u{k}", f"unit {k}", 1, cost=k, payload=k, step_activations=WIDE_UNIT * (k % 2 == 0))
                for k in range(self.n_units)]

    def run_unit(self, unit, context):
        self.calls.append((unit.name, threading.current_thread() is threading.main_thread(), torch.get_num_threads()))
        return {"records": pd.DataFrame({"k": [unit.payload]})}


def test_by_default_wide_units_train_alone_on_every_thread_and_narrow_ones_side_by_side(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "usable_cores", lambda: 2)
    threads = torch.get_num_threads()
    calls = []
    table = execute(Placed(4, calls), store(tmp_path))["records"]
    assert table["k"].tolist() == [0, 1, 2, 3]  # canonical order whatever the placement
    wide = [call for call in calls if call[0] in ("u0", "u2")]
    narrow = [call for call in calls if call[0] in ("u1", "u3")]
    assert wide == [("u0", True, threads), ("u2", True, threads)]  # in turn, in this thread, on torch's threads
    assert sorted(narrow) == [("u1", False, 1), ("u3", False, 1)]  # in worker threads of one torch thread
    assert calls[:2] == wide
    # An explicit worker count is obeyed for every unit.
    calls.clear()
    execute(Placed(4, calls), store(tmp_path / "two", 4), RunOptions(workers=2))
    assert all(not in_main and n == 1 for _, in_main, n in calls)
    assert RunOptions().worker_count == 2 and RunOptions(backend="local", workers=3).worker_count == 3
