"""What a result was computed on: package versions and hardware, recorded beside reports and benchmarks."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def environment() -> dict:
    """Package versions and hardware of this run."""
    import numpy
    import sklearn
    import torch

    from . import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "stableresnet": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "scikit-learn": sklearn.__version__, "platform": platform.platform(),
        "cpu": cpu, "logical cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
