"""The picture figures (2-7) as settings: a `PropagationConfig` from a spec's settings, and one seed's
numbers, the ones the picture claims are checked on (``claims``, ``atlas``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ConfigError
from .propagation import DEFAULT_READER, PropagationConfig, figure_preset, reader


def propagation_config(settings: dict) -> PropagationConfig:
    """The engine config of a picture's settings (``figure`` a paper preset, then overrides); ``frames``,
    ``compare_depth`` and ``reader`` are checked here too, so that nothing fails after training."""
    from ..viz.propagation import frame_layers

    frames, compare_depth = settings.get("frames"), settings.get("compare_depth")
    reader(settings.get("reader", DEFAULT_READER))  # an unknown reader fails here
    settings = {k: v for k, v in settings.items() if k not in ("frames", "compare_depth", "reader")}
    preset = figure_preset(settings.pop("figure")) if "figure" in settings else None
    base = dataclasses.asdict(preset) if preset else {}
    config = PropagationConfig(**{**base, **settings})
    frame_layers(config.depth, frames)  # a bad frame count fails here, not after training
    if compare_depth is not None:
        dataclasses.replace(config, depth=compare_depth)  # a bad depth fails here too
    return config


def member_numbers(record, reader_key: str | None = None) -> dict:
    """One seed's numbers: accuracies, the first layer at accuracy "1.0", feature scale, dead units, and
    the signal before training. ``max_layer_accuracy`` and ``first_layer_accuracy_1`` are read by the
    reader ``reader_key`` (``propagation.READERS``; the head on the test points, exactly 1.0, by default)."""
    read = reader(reader_key or DEFAULT_READER)
    accuracy = read.accuracy(record)
    if np.isnan(accuracy).all():
        raise ConfigError(f"reader {read.key!r} needs the per-layer {read.classifier} accuracies on the "
                          f"{read.points} points, which this record does not hold")
    perfect = np.flatnonzero(accuracy >= read.perfect)
    return {
        "seed": record.seed,
        "test_accuracy": record.test_accuracy,
        "knn_accuracy": record.knn_accuracy,
        "reader": read.key,
        "max_layer_accuracy": float(np.nanmax(accuracy)),
        "first_layer_accuracy_1": int(perfect[0]) if len(perfect) else None,
        "max_abs_feature_first": float(record.max_abs_feature[0]),
        "max_abs_feature_last": float(record.max_abs_feature[-1]),
        "first_nonfinite_layer": record.first_nonfinite_layer,
        "inactive_share_mean": float(np.nanmean(record.inactive_share[1:])),
        "init_scale_ratio": record.init_scale_ratio,
        "init_gradient_norm": record.init_gradient_norm,
        "depth": record.depth,
    }
