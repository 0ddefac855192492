"""stableresnet: residual networks as ODE solvers (Zhang & Wynter 2018)."""

from .blocks import INTEGRATORS, VECTOR_FIELDS
from .estimator import StableResNetClassifier
from .init import INITIALIZERS
from .errors import ConfigError, ModelFileError
from .model import StableResNet
from .serialization import load_model, save_model
from .step_size import STEP_SIZE_POLICIES
from .train import TrainConfig, TrainResult, evaluate, fit
from .tuning import StableResNetClassifierCV

__version__ = "0.1.0"

__all__ = [
    "INITIALIZERS",
    "INTEGRATORS",
    "STEP_SIZE_POLICIES",
    "VECTOR_FIELDS",
    "ConfigError",
    "ModelFileError",
    "StableResNet",
    "StableResNetClassifier",
    "StableResNetClassifierCV",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "fit",
    "load_model",
    "save_model",
    "__version__",
]
