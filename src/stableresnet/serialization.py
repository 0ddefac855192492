"""Saving and loading trained models: safetensors weights, JSON config and labels in its header.

One file holds everything. Its metadata carries a format tag, the model's
constructor arguments, the class labels and a SHA-256 digest of every tensor's
bytes, so a foreign, truncated or tampered file is refused with a clear message.
safetensors never executes code (no pickle is involved anywhere).

The input schema (`stableresnet.data.InputSchema`: raw column names and order, categorical
vocabularies and encoding, gap fills, target name) is kept as ``extra["schema"]``, inside the
checksummed header, so an altered schema is refused like altered weights. The standardisation
needs no extra entry: it is the model's ``input_mean`` and ``input_scale`` buffers. Files saved
before schemas existed have no such entry and load as before.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .data import InputSchema
from .errors import ConfigError, DataError, ModelFileError
from .files import write_atomically
from .model import StableResNet

FORMAT = "stableresnet-model"
FORMAT_VERSION = "1"


def _digest(tensors: dict[str, torch.Tensor], header: dict[str, str]) -> str:
    """SHA-256 over the header's JSON fields and every tensor's name, shape, dtype and bytes."""
    sha = hashlib.sha256()
    for key in ("config", "classes", "extra"):
        sha.update(header.get(key, "").encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous().cpu()
        sha.update(name.encode())
        sha.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        sha.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def save_model(
    path: str | Path, model: StableResNet, classes: list | None = None, extra: dict | None = None,
    schema: InputSchema | None = None,
) -> Path:
    """Write ``model`` (weights, buffers, config), its class labels and ``extra`` JSON to ``path``.

    A ``schema`` is stored as ``extra["schema"]``; it must describe ``model.in_features`` features.
    The file is written to a temporary name and renamed, so an interrupted save never
    leaves a half-written model behind.
    """
    path = Path(path)
    if schema is not None:
        if schema.n_features != model.in_features:
            raise DataError(f"the input schema describes {schema.n_features} features "
                            f"{list(schema.feature_names)[:10]}, but the model takes {model.in_features}")
        extra = {**(extra or {}), "schema": schema.to_json()}
    tensors = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config()),
        "classes": json.dumps(classes),
        "extra": json.dumps(extra or {}),
    }
    metadata["sha256"] = _digest(tensors, metadata)
    return write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def _header(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


def load_model(path: str | Path) -> tuple[StableResNet, list | None, dict]:
    """Read a file written by :func:`save_model`; returns (model in eval mode, classes, extra)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    try:
        metadata = _header(path)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{str(path)!r} is not a readable safetensors model file ({error})") from None
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is a safetensors file but not a stableresnet model")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{str(path)!r} has model format version {metadata.get('format_version')!r}; "
            f"this stableresnet reads version {FORMAT_VERSION}"
        )
    if _digest(tensors, metadata) != metadata.get("sha256"):
        raise ModelFileError(f"{str(path)!r} was altered after saving: its contents do not match their checksum")
    try:
        config = json.loads(metadata["config"])
        classes = json.loads(metadata["classes"])
        extra = json.loads(metadata["extra"])
        # Refuse a config that disagrees with the tensors before building anything from it.
        stored_shape = tuple(tensors["field.K1"].shape)
        expected_shape = (len(config["seed"]), config["depth"], config["width"], config["width"])
        if stored_shape != expected_shape:
            raise ModelFileError(f"{str(path)!r}: config expects K1 of shape {expected_shape}, file holds {stored_shape}")
        model = StableResNet(**config)
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, json.JSONDecodeError, RuntimeError, ConfigError) as error:
        raise ModelFileError(f"{str(path)!r} has an inconsistent model header ({error})") from None
    return model.eval(), classes, extra


def stored_schema(path: str | Path, extra: dict, model: StableResNet) -> InputSchema | None:
    """The input schema in ``extra`` (from `load_model`), or None for a file saved without one."""
    if "schema" not in extra:
        return None
    try:
        schema = InputSchema.from_json(extra["schema"])
    except DataError as error:
        raise ModelFileError(f"{str(path)!r} has an unreadable input schema ({error})") from None
    if schema.n_features != model.in_features:
        raise ModelFileError(f"{str(path)!r}: its input schema describes {schema.n_features} features, "
                             f"its model takes {model.in_features}")
    return schema
