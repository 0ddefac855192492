"""`predict_file` and `stableresnet predict`: a saved model labels a table read by column name, in chunks."""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

from stableresnet import StableResNet, StableResNetClassifier, save_model
from stableresnet.cli import app
from stableresnet.data import DataError, load_table
from stableresnet.predict import predict_file
from stableresnet.serialization import ModelFileError

runner = CliRunner()
N_ROWS = 150


def table(n=N_ROWS):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"height": rng.normal(170, 10, n), "colour": rng.choice(["red", "blue", "green"], n),
                          "age": rng.integers(18, 90, n)})
    frame["label"] = np.where((frame.height > 170) ^ (frame.colour == "red"), "tall", "short")
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The training CSV, a model fitted on its train split and saved with the schema, and in-process results."""
    folder = tmp_path_factory.mktemp("predict")
    csv = folder / "people.csv"
    table().to_csv(csv, index=False)
    data = load_table(csv, "label", seed=3, one_hot=True)
    clf = StableResNetClassifier(depth=3, epochs=20, learning_rate=0.01, random_state=0)
    clf.fit(data.X_train, np.array(data.class_names)[data.y_train])
    model = clf.save(folder / "model.safetensors", schema=data.schema)
    # The file's rows in file order, as build_dataset encoded them: undo its seeded stratified split.
    labels = np.unique(table()["label"], return_inverse=True)[1]
    train_rows, test_rows = train_test_split(np.arange(N_ROWS), test_size=0.2, stratify=labels, random_state=3)
    X = np.empty((N_ROWS, data.n_features))
    X[train_rows], X[test_rows] = data.X_train, data.X_test
    return csv, model, clf.predict(X), clf.predict_proba(X)


def read(path):
    return pd.read_csv(path, keep_default_na=False)


def run(*args):
    result = runner.invoke(app, ["predict", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_predict_on_the_training_csv_reproduces_in_process_predictions(trained, tmp_path):
    csv, model, labels, probabilities = trained
    out = tmp_path / "preds.csv"
    summary = predict_file(model, csv, out, proba=True)
    assert summary.rows == N_ROWS and summary.ignored_columns == ("label",)
    result = read(out)
    assert list(result.columns) == ["prediction", "proba_short", "proba_tall"]
    np.testing.assert_array_equal(result["prediction"], labels)
    np.testing.assert_array_equal(result[["proba_short", "proba_tall"]].to_numpy(), probabilities)  # bit for bit
    assert len(set(labels)) == 2  # a model predicting one class would prove little


@pytest.mark.parametrize("chunk_rows", [7, 40])
def test_small_chunks_change_probabilities_by_rounding_only(trained, tmp_path, chunk_rows):
    """BLAS may sum a 7-row product in another order than a 150-row one: same labels, last-bit differences."""
    csv, model, labels, probabilities = trained
    predict_file(model, csv, tmp_path / "preds.csv", proba=True, chunk_rows=chunk_rows)
    result = read(tmp_path / "preds.csv")
    np.testing.assert_array_equal(result["prediction"], labels)
    np.testing.assert_allclose(result[["proba_short", "proba_tall"]].to_numpy(), probabilities, rtol=0, atol=1e-15)


def test_chunks_of_whole_8192_row_batches_are_bit_identical_across_chunks(trained, tmp_path):
    """Chunks that are multiples of predict_logits' 8192-row batches (the default is) split rows exactly
    as in-process prediction on the whole table does, so a many-chunk file still matches bit for bit."""
    _, model, _, _ = trained
    frame = table(20_000)
    frame.to_csv(tmp_path / "big.csv", index=False)
    summary = predict_file(model, tmp_path / "big.csv", tmp_path / "preds.csv", proba=True, chunk_rows=8192)
    assert summary.rows == 20_000
    clf = StableResNetClassifier.load(model)
    expected = clf.predict_proba(clf.schema_.encode(frame))
    np.testing.assert_array_equal(read(tmp_path / "preds.csv")[["proba_short", "proba_tall"]].to_numpy(), expected)


def test_cli_writes_labels_only_and_names_the_extra_column_once(trained, tmp_path):
    csv, model, labels, _ = trained
    out = tmp_path / "preds.csv"
    code, stdout, stderr = run("--model", model, "--data", csv, "--out", out)
    assert code == 0, stderr
    assert list(read(out).columns) == ["prediction"]
    np.testing.assert_array_equal(read(out)["prediction"], labels)
    assert stderr.count("label") == 1 and "ignored columns" in stderr
    assert f"wrote {N_ROWS} predictions" in stdout


def test_cli_without_out_streams_csv_to_stdout(trained, tmp_path):
    csv, model, labels, probabilities = trained
    code, stdout, stderr = run("--model", model, "--data", csv, "--proba", "--chunk-rows", 40)
    assert code == 0, stderr
    (tmp_path / "stdout.csv").write_text(stdout)
    result = read(tmp_path / "stdout.csv")
    np.testing.assert_array_equal(result["prediction"], labels)
    # Chunks of 40 rows meet the network in other batches than in-process prediction, so BLAS may sum
    # in another order: equal to the last few ulps, not bit for bit (the default chunk size is bit-exact).
    np.testing.assert_allclose(result[["proba_short", "proba_tall"]].to_numpy(), probabilities, rtol=1e-12, atol=0)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reordered_columns_and_parquet_give_the_same_output(trained, tmp_path, suffix):
    csv, model, _, _ = trained
    predict_file(model, csv, tmp_path / "reference.csv", proba=True, chunk_rows=50)
    shuffled = pd.read_csv(csv)[["label", "age", "colour", "height"]].assign(note="ignored")
    path = tmp_path / f"shuffled{suffix}"
    shuffled.to_csv(path, index=False) if suffix == ".csv" else shuffled.to_parquet(path, row_group_size=32)
    summary = predict_file(model, path, tmp_path / "shuffled.csv", proba=True, chunk_rows=50)
    assert summary.ignored_columns == ("label", "note")
    assert (tmp_path / "shuffled.csv").read_bytes() == (tmp_path / "reference.csv").read_bytes()


# Each bad value sits in data row 120 of 150, so with 25-row chunks it is found in the fifth chunk,
# after four chunks of predictions were already written to the temporary file.
@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns="colour"), r"missing column\(s\) \['colour'\] that the model needs"),
    (lambda f: f.assign(colour=f.colour.where(f.index != 119, "pink")),
     r"'colour' has a category the model never saw \(data row 120 holds 'pink'\)"),
    (lambda f: f.assign(height=f.height.where(f.index != 119, np.nan)),
     r"column 'height' has 1 missing values \(first at data row 120\)"),
    (lambda f: f.assign(height=f.height.where(f.index != 119, np.inf)),
     r"column 'height' has 1 infinite values \(first at data row 120\)"),
    (lambda f: f.assign(age=f.age.astype(object).where(f.index != 119, "forty")),
     r"numeric column 'age' holds text \(data row 120 holds 'forty'\)"),
])
def test_bad_input_is_one_line_exit_2_and_no_output_file(trained, tmp_path, change, message):
    _, model, _, _ = trained
    path = tmp_path / "new.csv"
    change(table()).to_csv(path, index=False)
    out = tmp_path / "preds.csv"
    code, _, stderr = run("--model", model, "--data", path, "--out", out, "--chunk-rows", 25)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and str(path) in stderr, stderr
    assert re.search(message, stderr), stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv"]  # no output, no temporary file


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not a model"), "not a readable safetensors"),
    (lambda p: save_file({"w": torch.zeros(2)}, str(p), metadata={"format": "pt"}), "not a stableresnet model"),
    (lambda p: None, "does not exist"),
])
def test_a_model_file_that_is_not_ours_is_refused(trained, tmp_path, make, message):
    csv, _, _, _ = trained
    model = tmp_path / "other.safetensors"
    make(model)
    code, _, stderr = run("--model", model, "--data", csv, "--out", tmp_path / "preds.csv")
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "preds.csv").exists()


@pytest.mark.parametrize("out, message", [
    ("", "is a folder"),
    ("missing/preds.csv", "does not exist; create it first"),
])
def test_out_is_checked_before_anything_is_read(tmp_path, out, message):
    code, _, stderr = run("--model", tmp_path / "nope.safetensors", "--data", tmp_path / "nope.csv",
                          "--out", tmp_path / out)
    assert code == 2 and "--out" in stderr and message in stderr, stderr


def test_out_may_not_overwrite_the_data(trained):
    csv, model, _, _ = trained
    code, _, stderr = run("--model", model, "--data", csv, "--out", csv)
    assert code == 2 and "is the --data file" in stderr
    assert "label" in csv.read_text().splitlines()[0]


def test_an_old_file_with_feature_names_reads_columns_as_numbers(tmp_path):
    """Before schemas, `train --save` recorded only feature names: predict reads those columns as numbers."""
    model = StableResNet(2, 2, depth=2, seed=0).double().eval()
    path = save_model(tmp_path / "old.safetensors", model, classes=["a", "b"], extra={"feature_names": ["x", "y"]})
    frame = pd.DataFrame({"y": [0.5, -1.0, 2.0], "x": [1.0, 3.0, -2.0], "z": ["p", "q", "r"]})
    frame.to_csv(tmp_path / "rows.csv", index=False)
    summary = predict_file(path, tmp_path / "rows.csv", tmp_path / "preds.csv", proba=True)
    assert summary.ignored_columns == ("z",)
    with torch.no_grad():  # the network by hand, on the columns in the model's order x, y
        expected = torch.softmax(model(torch.tensor([[1.0, 0.5], [3.0, -1.0], [-2.0, 2.0]])), dim=-1).numpy()
    np.testing.assert_allclose(read(tmp_path / "preds.csv")[["proba_a", "proba_b"]].to_numpy(), expected,
                               rtol=1e-12)


def test_a_file_with_neither_schema_nor_feature_names_is_refused(tmp_path):
    path = save_model(tmp_path / "bare.safetensors", StableResNet(2, 2, depth=2, seed=0), classes=["a", "b"])
    pd.DataFrame({"x": [1.0], "y": [2.0]}).to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(ModelFileError, match="no input schema or feature names.*schema=dataset.schema"):
        predict_file(path, tmp_path / "rows.csv", tmp_path / "preds.csv")
    assert not (tmp_path / "preds.csv").exists()


def test_unsupported_extension_is_refused(trained, tmp_path):
    _, model, _, _ = trained
    (tmp_path / "rows.txt").write_text("height\n1\n")
    with pytest.raises(DataError, match=r"unsupported extension '\.txt'"):
        predict_file(model, tmp_path / "rows.txt", tmp_path / "preds.csv")


def test_train_save_then_predict_round_trip(tmp_path):
    """`train --save` stores the schema too: predicting its training CSV equals the saved model on the encoded rows."""
    csv = tmp_path / "people.csv"
    table().to_csv(csv, index=False)
    model = tmp_path / "m.safetensors"
    result = runner.invoke(app, ["train", "--data", str(csv), "--target", "label", "--one-hot", "--depth", "2",
                                 "--epochs", "2", "--save", str(model)])
    assert result.exit_code == 0, result.stdout
    clf = StableResNetClassifier.load(model)
    assert clf.schema_.target == "label" and clf.schema_.one_hot
    assert clf.schema_.feature_names == load_table(csv, "label", one_hot=True).feature_names
    code, stdout, stderr = run("--model", model, "--data", csv, "--proba")
    assert code == 0, stderr
    (tmp_path / "preds.csv").write_text(stdout)
    X = np.column_stack([table()["height"], table()["colour"].to_numpy()[:, None] == ["blue", "green", "red"],
                         table()["age"]]).astype(np.float64)  # one-hot by hand, vocabulary sorted
    np.testing.assert_array_equal(read(tmp_path / "preds.csv")[["proba_short", "proba_tall"]].to_numpy(),
                                  clf.predict_proba(X))
