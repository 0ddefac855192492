"""Result files: written atomically (whole or not at all), and their paths checked before any work."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError


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


def check_output_file(path: str | Path, option: str) -> Path:
    """Refuse, before any work is done, a file path that could not be written at the end.

    ``option`` names the setting in the message (e.g. ``"--save"``). Refused: an existing
    folder, a parent folder that does not exist (or is a file), a parent without write permission.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {str(path)!r} is a folder; give a file name, e.g. {str(path / 'model.safetensors')!r}")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {str(path)!r}: folder {str(parent)!r} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{option} {str(path)!r}: folder {str(parent)!r} is not writable")
    return path


def check_output_folder(path: str | Path, option: str) -> Path:
    """Refuse, before any work is done, a results folder that could not be created or written.

    A missing folder is fine (it is created, with its parents, when results are written); refused:
    an existing file at ``path`` or at one of its ancestors, or a nearest existing ancestor
    without write permission.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "it" if existing == path else repr(str(existing))
        raise ConfigError(f"{option} {str(path)!r} must be a folder, but {what} is a file")
    if not os.access(existing, os.W_OK):
        raise ConfigError(f"{option} {str(path)!r}: folder {str(existing)!r} is not writable")
    return path
