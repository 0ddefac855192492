"""The Ray backend: same table as the local backend, a killed worker loses only its group, install hint."""

import os
import signal
import sys
import threading
import time

import pandas as pd
import pytest

from stableresnet.experiments.runner import RunIncomplete
from stableresnet.experiments.sweep import SweepConfig, groups, run_sweep
from stableresnet.model import ConfigError

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'stableresnet[ray]'")

CONFIG = SweepConfig.from_preset("wine", trials=2, depth=3, epochs=3, step_sizes=(0.1, 0.5, 1.0), members_per_group=3)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray on loopback for this module, shut down after it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    return run_sweep(CONFIG, tmp_path_factory.mktemp("local"), backend="local")


def assert_same_results(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"), check_exact=False, rtol=1e-5)


def test_ray_backend_gives_the_local_table_member_by_member(local_ray, local_table, tmp_path):
    assert_same_results(run_sweep(CONFIG, tmp_path, backend="ray"), local_table)


def worker_pids_running(function: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if handle.read().startswith(f"ray::{function}".encode()):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray workers through /proc")
def test_a_killed_worker_loses_only_its_group_and_a_rerun_resumes(local_ray, local_table, tmp_path):
    outcome = {}

    def sweep():
        try:
            outcome["table"] = run_sweep(CONFIG, tmp_path, backend="ray")
        except RunIncomplete as error:
            outcome["error"] = error

    thread = threading.Thread(target=sweep)
    thread.start()
    deadline = time.time() + 180
    while time.time() < deadline and not (pids := worker_pids_running("run_unit")):
        time.sleep(0.02)
    assert pids, "no Ray worker was seen training a group"
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=300)
    assert "error" in outcome, "the sweep should report the group that the killed worker lost"
    saved = list((tmp_path / "groups").glob("*.csv"))
    assert 0 < len(groups(CONFIG)) - len(saved) <= len(pids)
    assert not (tmp_path / "results.csv").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in saved}
    assert_same_results(run_sweep(CONFIG, tmp_path, backend="ray"), local_table)
    assert all((tmp_path / "groups" / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())


def test_ray_backend_without_ray_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match=r"pip install 'stableresnet\[ray\]'"):
        run_sweep(CONFIG, tmp_path, backend="ray")
    assert not any(tmp_path.iterdir())
