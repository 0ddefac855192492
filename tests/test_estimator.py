import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from stableresnet.estimator import StableResNetClassifier
from stableresnet.serialization import ModelFileError


@parametrize_with_checks([StableResNetClassifier(depth=3, epochs=30, batch_size=16, learning_rate=1e-2, random_state=0)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
