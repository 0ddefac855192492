"""Saving and loading: round trip with the input schema, and foreign, truncated or tampered files refused."""

import pickle

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from stableresnet import StableResNet, StableResNetClassifier
from stableresnet.data import DataError, InputColumn, InputSchema
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


SCHEMA = InputSchema(
    (InputColumn("height", "numeric", fill=170.5), InputColumn("colour", "categorical", ("blue", "red"))),
    one_hot=True, target="label",
)


def test_schema_is_kept_in_the_checksummed_header(tmp_path):
    model = StableResNet(3, 2, depth=2, seed=0).eval()
    path = save_model(tmp_path / "m.safetensors", model, classes=["no", "yes"], extra={"note": "x"}, schema=SCHEMA)
    _, _, extra = load_model(path)
    assert extra["note"] == "x"
    assert InputSchema.from_json(extra["schema"]) == SCHEMA
    data = path.read_bytes()
    assert data.count(b'\\"blue\\"') == 1
    path.write_bytes(data.replace(b'\\"blue\\"', b'\\"bleu\\"'))  # same length, valid JSON: only the digest sees it
    with pytest.raises(ModelFileError, match="altered"):
        load_model(path)


def test_a_file_without_schema_keeps_the_old_header(saved):
    """Saving without a schema writes exactly the header keys of files from before schemas, so both load."""
    _, path = saved
    with safe_open(str(path), framework="pt") as handle:
        assert set(handle.metadata()) == {"format", "format_version", "config", "classes", "extra", "sha256"}


def test_schema_must_describe_the_models_features(tmp_path):
    model = StableResNet(4, 2, depth=2, seed=0)  # SCHEMA has 3 features
    with pytest.raises(DataError, match="describes 3 features .* model takes 4"):
        save_model(tmp_path / "m.safetensors", model, schema=SCHEMA)
    assert not any(tmp_path.iterdir())


def test_classifier_save_and_load_carry_the_schema(tmp_path):
    X = np.column_stack([np.linspace(150, 190, 20), np.arange(20) % 2, 1 - np.arange(20) % 2])
    y = np.arange(20) >= 10
    clf = StableResNetClassifier(depth=2, epochs=2, random_state=0).fit(X, y)
    assert StableResNetClassifier.load(clf.save(tmp_path / "with.safetensors", schema=SCHEMA)).schema_ == SCHEMA
    assert StableResNetClassifier.load(clf.save(tmp_path / "without.safetensors")).schema_ is None


def test_an_unreadable_stored_schema_is_a_model_file_error(tmp_path):
    """A header whose (checksummed) schema entry does not parse, e.g. from a future version, is refused clearly."""
    model = StableResNet(3, 2, depth=2, seed=0)
    path = save_model(tmp_path / "m.safetensors", model, classes=[0, 1],
                      extra={"params": {}, "schema": {**SCHEMA.to_json(), "version": 99}})
    with pytest.raises(ModelFileError, match="unreadable input schema .*version 99"):
        StableResNetClassifier.load(path)
