"""The ``stableresnet`` command line (typer + rich): one module per command group, one shared app."""

# Imported in the order `stableresnet --help` lists the commands; each module registers its own.
from . import train, predict, tune, sweep, reproduce, diagnose, propagate, drift, atlas  # noqa: F401, I001
from .common import app

__all__ = ["app", "main"]


def main() -> None:
    app()
