"""Run a sweep's groups as Ray tasks: one task per group, results written by the driver alone.

Ray is an optional extra (``pip install 'stableresnet[ray]'``). Without an address a
local Ray is started for the sweep and shut down after it; with one, the sweep joins
that cluster. Each task asks for a GPU when the sweep runs on ``cuda``. A task is not
retried: a worker that dies loses only its own group, the others are saved as they
finish, and running the same command again resumes the missing groups.

The config travels to the workers as is: a sweep on a user file has its absolute path and
SHA-256 there, and every worker reads the file at that path (this machine's workers, or a
cluster with a shared file system) and checks it against the SHA-256 before training.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pandas as pd

from ..model import ConfigError
from .sweep import Group, SweepConfig, SweepStore, TrialData, run_group


def require_ray():
    """Import Ray, or explain how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray, which is not installed: pip install 'stableresnet[ray]'"
        ) from None
    return ray


@functools.lru_cache(maxsize=2)
def _trial_data(config: SweepConfig) -> TrialData:
    # A worker process keeps the (small) data of the sweep it serves across its tasks.
    return TrialData(config)


def train_group(config: SweepConfig, group: Group, device: str, compile: bool = False) -> pd.DataFrame:
    """The body of one Ray task: train one group, return its rows to the driver."""
    return run_group(config, group, _trial_data(config), device, compile=compile)


def run_groups_on_ray(
    config: SweepConfig,
    pending: list[Group],
    store: SweepStore,
    device: str = "cpu",
    address: str | None = None,
    on_done: Callable[[Group], None] | None = None,
    compile: bool = False,
) -> list[Group]:
    """Run ``pending`` groups as Ray tasks, saving each as it completes; returns the groups that failed."""
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        options = {"address": address} if address else {"_node_ip_address": "127.0.0.1"}
        ray.init(include_dashboard=False, log_to_driver=False, **options)
    try:
        task = ray.remote(num_gpus=1 if device == "cuda" else 0, max_retries=0)(train_group)
        futures = {task.remote(config, group, device, compile): group for group in pending}
        failed = []
        while futures:
            (done,), _ = ray.wait(list(futures), num_returns=1)
            group = futures.pop(done)
            try:
                rows = ray.get(done)
            except ray.exceptions.RayError:
                failed.append(group)
                continue
            store.save_group(group, rows)  # the driver is the only writer
            if on_done is not None:
                on_done(group)
        return failed
    finally:
        if started_here:
            ray.shutdown()
