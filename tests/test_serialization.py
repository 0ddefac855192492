"""Saving and loading: round trip, and foreign, truncated or tampered files refused without running code."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from stableresnet import StableResNet
from stableresnet.serialization import ModelFileError, load_model, save_model


@pytest.fixture
def saved(tmp_path):
    model = StableResNet(3, 4, depth=3, width=5, block="batchnorm", step_size=0.2, seed=9).eval()
    path = save_model(tmp_path / "model.safetensors", model, classes=["a", 2, 3.5, True], extra={"note": "x"})
    return model, path


def test_round_trip_restores_weights_config_and_labels(saved):
    model, path = saved
    loaded, classes, extra = load_model(path)
    assert classes == ["a", 2, 3.5, True]
    assert extra == {"note": "x"}
    assert loaded.config() == model.config()
    x = torch.randn(7, 3)
    assert torch.equal(loaded(x), model(x))
    assert not any(p.name.startswith(".") for p in path.parent.iterdir())  # no temporary file left


def test_file_that_is_not_safetensors_is_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle was executed')",))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        load_model(path)


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not a stableresnet model"):
        load_model(path)


def test_truncated_file_is_refused(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        load_model(path)


def test_tampered_weights_are_refused(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="altered"):
        load_model(path)


def test_tampered_header_is_refused(saved):
    """Relabelling the classes in the header (same length, valid JSON) is caught by the checksum."""
    _, path = saved
    data = path.read_bytes()
    original = b'[\\"a\\", 2'
    assert data.count(original) == 1
    path.write_bytes(data.replace(original, b'[\\"b\\", 2'))
    with pytest.raises(ModelFileError, match="altered"):
        load_model(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")
