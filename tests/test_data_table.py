"""User tables: CSV and Parquet in, Dataset out; every bad file gives a DataError naming it."""

import numpy as np
import pandas as pd
import pytest

from stableresnet.data import DataError, load_table


def good_frame(n=40):
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "height": rng.normal(170, 10, n),
        "colour": np.where(np.arange(n) % 3 == 0, "red", "blue"),
        "count": np.arange(n),
        "label": np.where(np.arange(n) % 4 == 0, "yes", "no"),
    })


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_reads_and_encodes(tmp_path, suffix):
    path = tmp_path / f"people{suffix}"
    frame = good_frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    data = load_table(path, "label", seed=0)
    assert data.name == "people"
    assert data.feature_names == ("height", "colour", "count") and data.class_names == ("no", "yes")
    assert data.X_train.shape == (32, 3) and data.X_test.shape == (8, 3)
    assert tuple(np.bincount(data.y_test)) == (6, 2)  # stratified: 30/10 classes, 20% each
    colours = np.unique(np.concatenate([data.X_train[:, 1], data.X_test[:, 1]]))
    np.testing.assert_array_equal(colours, [0, 1])  # blue, red
    one_hot = load_table(path, "label", one_hot=True)
    assert one_hot.feature_names == ("height", "colour=blue", "colour=red", "count")
    again = load_table(path, "label", seed=0)
    np.testing.assert_array_equal(again.X_train, data.X_train)
    assert not np.array_equal(load_table(path, "label", seed=1).X_train, data.X_train)


def write(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD_ROWS = "".join(f"{i},{i % 2}\n" for i in range(10))


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("x,label\n", "no data rows, only a header"),
    ("x,label\n1,0\n2,1,7\n3,0\n", "malformed CSV"),
    ("x;label\n" + GOOD_ROWS.replace(",", ";"), r"no target column 'label'.*\['x;label'\].*wrong separator"),
    ("x,y\n" + GOOD_ROWS, r"no target column 'label'; columns are \['x', 'y'\]"),
    ("x,label\n" + GOOD_ROWS + ",1\n,0\n", "column 'x' has 2 missing values"),
    ("x,label\n" + GOOD_ROWS + "3,\n", "target column 'label' has 1 missing values"),
    ("x,label\n" + GOOD_ROWS + "inf,1\n", "column 'x' has 1 infinite values"),
    ("x,label\n" + GOOD_ROWS.replace("3,1", "3x,1"), r"column 'x' mixes numbers and text \(data row 4 holds '3x'\)"),
    ("x,label\n" + "".join(f"{i},a\n" for i in range(10)), "single class 'a'"),
    ("x,label\n" + GOOD_ROWS + "5,2\n", "cannot make a stratified"),
    ("label\n0\n1\n", "no feature columns"),
])
def test_bad_csv_raises_data_error_naming_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as error:
        load_table(path, "label")
    assert str(path) in str(error.value)


def test_bad_parquet_and_unknown_formats(tmp_path):
    with pytest.raises(DataError, match="bad.parquet: cannot read as Parquet"):
        load_table(write(tmp_path, "not parquet", "bad.parquet"), "label")
    with pytest.raises(DataError, match=r"bad.xlsx: unsupported extension '.xlsx'"):
        load_table(write(tmp_path, "x", "bad.xlsx"), "label")
    with pytest.raises(DataError, match="nothing.csv: file not found"):
        load_table(tmp_path / "nothing.csv", "label")
    frame = good_frame()
    frame.loc[3, "height"] = np.nan
    frame.to_parquet(tmp_path / "gap.parquet")
    with pytest.raises(DataError, match="gap.parquet: column 'height' has 1 missing values"):
        load_table(tmp_path / "gap.parquet", "label")
