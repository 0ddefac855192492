"""stableresnet: residual networks as ODE solvers (Zhang & Wynter 2018)."""

from .blocks import INTEGRATORS, VECTOR_FIELDS
from .model import ConfigError, StableResNet
from .train import TrainConfig, TrainResult, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "INTEGRATORS",
    "VECTOR_FIELDS",
    "ConfigError",
    "StableResNet",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "fit",
    "__version__",
]
