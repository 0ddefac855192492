"""Whether a training run goes through ``torch.compile``, and where its compiled graphs are kept.

``compile="auto"`` (`choose`) compiles when the run's projected eager time exceeds ``PAYS_AT``
times the projected cost of compiling its network shape, eager otherwise. Both projections are
fixed linear models of the work, measured on the project's 2-core CPU (``benchmarks/bench_sweep.py
--compile``, ``benchmarks/bench_capacity.py --compare``): an eager step costs, per block, a fixed
``EAGER_SECONDS_PER_LAYER_STEP`` (dispatching its ops) and ``EAGER_SECONDS_PER_ROW`` per member's
batch row (computing them), a compilation about ``COLD_SECONDS_PER_LAYER`` per block from an
empty cache and ``WARM_SECONDS_PER_LAYER`` when this shape's graphs are cached (Dynamo still
traces the Python, the graphs load from disk). A compiled step saved 10-35 % of an eager one, so
compiling pays only when the eager time is several compilations long: ``PAYS_AT``.

The choice reads no clock: for one network shape and cache state it is always the same, so a
run repeats to the bit. The cache state changes only when a shape is compiled (then its later
runs compile too), so a run chosen eager on a cold cache stays eager until ``--compile`` fills it.

Compiled graphs (TorchInductor's cache, and AOTAutograd's) are kept in `cache_folder`, under
the user's cache folder unless ``STABLERESNET_CACHE_DIR`` (or TorchInductor's own
``TORCHINDUCTOR_CACHE_DIR``) says otherwise, one folder per torch version; TorchInductor keys
each graph by its code, shapes and settings, so a new shape or setting compiles anew. The shapes
compiled so far are listed in ``compiled-shapes.json`` beside the graphs, with the engine code that
compiled them (`shape_key`). Kernels are generated for
the thread count they run on (a group in a worker thread has one); a compiled group trained to the
same bits on one thread as on two (``tests/test_compilation.py``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ConfigError
from .files import write_atomically

logger = logging.getLogger(__name__)

# Measured 2026-12-04 on the 2-core CPU. A 100-member group's eager step, per block: Wine (batch 10)
# 0.7 ms; Adult (batch 100) 1.2 (shrinkage), 1.8 (plain), 2.7 ms (batch norm).
EAGER_SECONDS_PER_LAYER_STEP = 6e-4
EAGER_SECONDS_PER_ROW = 1.1e-7
# Compiling a step from an empty cache: Wine's three groups (20 blocks) 45 s each on average; Adult's
# (100 blocks) 70 s (shrinkage), 127 s (plain), 467 s (batch norm); on 2026-12-05, one graph per
# shape, 42 s, 54 s and 282 s. From a warm cache, in a new process: Wine's 2.5 s each (Dynamo's
# tracing, loading the graphs).
COLD_SECONDS_PER_LAYER = 2.2
WARM_SECONDS_PER_LAYER = 0.15
# Compile when the projected eager seconds exceed this many compilations: compiled steps ran 1.1-1.6×
# faster than eager ones (Adult's batch norm 1.10×, plain 1.57×; Wine's three 1.1-1.3×; on 2026-12-05,
# each epoch ending in its smaller batch as in a sweep, `benchmarks/bench_compiled_step.py`: Adult's
# plain 1.3×, shrinkage 1.5×, batch norm 1.1×).
PAYS_AT = 4


@dataclass(frozen=True)
class Choice:
    """Whether a run compiles, and why (the records and the progress line show ``reason``)."""

    compile: bool
    reason: str


def check_setting(setting) -> None:
    """A ``compile`` setting is True, False or "auto"."""
    if not isinstance(setting, bool) and setting != "auto":
        raise ConfigError(f"compile must be true, false or 'auto'; got {setting!r}")


def cache_folder() -> Path:
    """Where compiled graphs are kept: ``$TORCHINDUCTOR_CACHE_DIR`` if set (to other than torch's
    temporary default), else
    ``$STABLERESNET_CACHE_DIR`` or the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache`` on
    Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows) + ``stableresnet``, then
    ``torch-<version>``."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    # Torch sets the variable to its temporary default itself (creating a fused optimiser does): not a choice.
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR") not in (None, "", default_cache_dir()):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    if os.environ.get("STABLERESNET_CACHE_DIR"):
        root = Path(os.environ["STABLERESNET_CACHE_DIR"])
    elif sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "stableresnet"
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "stableresnet"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stableresnet"
    return root / f"torch-{torch.__version__}"


def use_cache_folder() -> Path:
    """Point TorchInductor's on-disk caches at `cache_folder` (before anything compiles); returns it."""
    folder = cache_folder()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    return folder


# The modules whose code the compiled training step traces: a change to any of them is a new graph.
ENGINE_MODULES = tuple(f"{__package__}.{name}" for name in ("blocks", "model", "step_size", "train"))


@functools.cache
def engine_fingerprint() -> str:
    """A digest of the source of ``ENGINE_MODULES``: shapes compiled by another version of the
    engine (whose graphs TorchInductor keys by their code, so they compile anew) project cold."""
    digest = hashlib.sha256()
    for name in ENGINE_MODULES:
        digest.update(Path(importlib.util.find_spec(name).origin).read_bytes())
    return digest.hexdigest()[:16]


def shape_key(model, batch_size: int, device: torch.device) -> str:
    """What a compiled training step depends on: the engine's code (`engine_fingerprint`), the
    network's shape and kind (not its values: step sizes and seeds are tensors the graph reads),
    the batch, the device and, on the CPU, the thread count the kernels were generated for."""
    config = {name: value for name, value in model.config().items()
              if name not in ("step_size", "seed", "max_step_size")}
    threads = torch.get_num_threads() if device.type == "cpu" else None
    return json.dumps({**config, "members": model.n_members, "batch_size": batch_size, "device": device.type,
                       "threads": threads, "dtype": str(model.step_size.dtype), "engine": engine_fingerprint()},
                      sort_keys=True)


def _shapes_file() -> Path:
    return cache_folder() / "compiled-shapes.json"


def compiled_shapes() -> dict[str, float]:
    """The shapes compiled into the cache so far, with the seconds their first compilation took."""
    try:
        shapes = json.loads(_shapes_file().read_text())
    except (OSError, ValueError):
        return {}
    return shapes if isinstance(shapes, dict) else {}


def remember(key: str, seconds: float) -> None:
    """Add ``key`` to the cache's list of compiled shapes (a lost race or an unwritable folder only
    means the next run projects a cold compilation)."""
    shapes = compiled_shapes()
    if key in shapes:
        return
    try:
        _shapes_file().parent.mkdir(parents=True, exist_ok=True)
        write_atomically(_shapes_file(), lambda p: p.write_text(json.dumps({**shapes, key: round(seconds, 1)},
                                                                           indent=1) + "\n"))
    except OSError as error:
        logger.warning("could not list a compiled shape in %s: %s", _shapes_file(), error)


def choose(setting: bool | str, model, steps: int, batch_size: int, device: torch.device) -> Choice:
    """Compile or not: ``setting`` True or False forces it; ``"auto"`` compiles when ``steps``
    eager steps project to more than ``PAYS_AT`` compilations of this shape (see the module)."""
    if setting is True:
        return Choice(True, "compiled (forced)")
    if setting is False:
        return Choice(False, "eager (forced)")
    warm = shape_key(model, batch_size, device) in compiled_shapes()
    rows = model.n_members * batch_size
    eager = steps * model.depth * (EAGER_SECONDS_PER_LAYER_STEP + rows * EAGER_SECONDS_PER_ROW)
    compiling = model.depth * (WARM_SECONDS_PER_LAYER if warm else COLD_SECONDS_PER_LAYER)
    pays = eager > PAYS_AT * compiling
    return Choice(pays, f"{'compiled' if pays else 'eager'} (auto: {steps} steps ≈ {eager:.0f} s eager "
                        f"{'>' if pays else '≤'} {PAYS_AT} × {compiling:.0f} s to compile from a "
                        f"{'warm' if warm else 'cold'} cache)")

