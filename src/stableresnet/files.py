"""Atomic file writes: every result file appears whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` in ``path``'s folder, then rename the result to ``path``.

    The rename is atomic, so an interrupted run never leaves a half-written file; the
    temporary file is removed on any failure, Ctrl-C included. The temporary name keeps
    ``path``'s suffix, because writers such as matplotlib and Pillow choose the format from it.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
