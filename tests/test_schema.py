"""InputSchema: learnt by build_dataset, encodes new rows exactly as training did, by column name."""

import json

import numpy as np
import pandas as pd
import pytest

from stableresnet.data import DATASETS, DataError, InputColumn, InputSchema, load_dataset
from stableresnet.data.dataset import build_dataset

# Ten rows; the split below sends rows 0..7 to training and rows 8, 9 to the test set.
FRAME = pd.DataFrame({
    "size": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, np.nan],
    "colour": ["red", "blue", "red", "green", "blue", "red", "red", "blue", "green", "violet"],
    "count": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
})


def built(one_hot):
    """FRAME through build_dataset with rows 0..7 as train and 8, 9 as an 'official' test set."""
    return build_dataset("toy", FRAME.iloc[:8], np.arange(8) % 2, ("a", "b"), seed=0, test_size=None,
                         one_hot=one_hot, test_features=FRAME.iloc[8:], test_labels=[0, 1], target="label")


def test_learnt_schema_by_hand():
    schema = built(one_hot=False).schema
    # size has gaps, so it keeps the median of the *training* rows 1,2,4,5,6,7,8 (NaN skipped) = 5.
    assert schema.columns == (
        InputColumn("size", "numeric", fill=5.0),
        InputColumn("colour", "categorical", ("blue", "green", "red", "violet")),  # sorted, test rows too
        InputColumn("count", "numeric"),
    )
    assert schema.one_hot is False and schema.target == "label"


def test_build_dataset_encodes_through_the_schema():
    ordinal, one_hot = built(one_hot=False), built(one_hot=True)
    # Row 2 (size NaN -> 5, colour red -> code 2) and test row 9 (size NaN -> 5, violet -> code 3), by hand.
    np.testing.assert_array_equal(ordinal.X_train[2], [5.0, 2.0, 4.0])
    np.testing.assert_array_equal(ordinal.X_test, [[9.0, 1.0, 5.0], [5.0, 3.0, 3.0]])
    assert one_hot.feature_names == ("size", "colour=blue", "colour=green", "colour=red", "colour=violet", "count")
    np.testing.assert_array_equal(one_hot.X_test, [[9, 0, 1, 0, 0, 5], [5, 0, 0, 0, 1, 3]])
    for data in (ordinal, one_hot):
        assert data.schema.feature_names == data.feature_names
        np.testing.assert_array_equal(data.schema.encode(FRAME.iloc[:8]), data.X_train)


def test_columns_are_matched_by_name_and_extra_columns_ignored():
    schema = built(one_hot=True).schema
    shuffled = FRAME[["count", "colour", "size"]].assign(note="x", label=1)
    np.testing.assert_array_equal(schema.encode(shuffled), schema.encode(FRAME))
    assert schema.extra_columns(shuffled) == ["note", "label"]
    assert schema.extra_columns(FRAME) == []


GOOD = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"]})
USER_SCHEMA = InputSchema((InputColumn("x", "numeric"), InputColumn("colour", "categorical", ("blue", "red"))),
                          one_hot=False)


@pytest.mark.parametrize("frame, message", [
    (GOOD.drop(columns="colour"), r"missing column\(s\) \['colour'\]"),
    (GOOD.assign(colour=["red", "pink", "red"]),
     r"'colour' has a category the model never saw \(data row 2 holds 'pink'\)"),
    (GOOD.assign(colour=["red", None, "red"]),
     r"categorical column 'colour' has 1 missing values \(first at data row 2\)"),
    (GOOD.assign(x=[1.0, np.nan, np.nan]), r"column 'x' has 2 missing values \(first at data row 2\)"),
    (GOOD.assign(x=[1.0, 2.0, np.inf]), r"column 'x' has 1 infinite values \(first at data row 3\)"),
    (GOOD.assign(x=["1", "2", "3x"]), r"numeric column 'x' holds text \(data row 3 holds '3x'\)"),
])
def test_bad_rows_are_refused_naming_column_and_row(frame, message):
    with pytest.raises(DataError, match=message):
        USER_SCHEMA.encode(frame)


def test_numbers_given_as_text_encode_like_numbers():
    np.testing.assert_array_equal(USER_SCHEMA.encode(GOOD.assign(x=["1", "2.5", "-3e2"])),
                                  [[1, 1], [2.5, 0], [-300, 1]])


def test_row_numbers_count_from_first_row():
    with pytest.raises(DataError, match="data row 1001 holds 'pink'"):
        USER_SCHEMA.encode(GOOD.assign(colour=["pink", "red", "red"]), first_row=1001)


def test_json_round_trip_is_exact():
    schema = built(one_hot=True).schema
    again = InputSchema.from_json(json.loads(json.dumps(schema.to_json())))
    assert again == schema
    assert again.feature_names == schema.feature_names


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d["columns"][1].update(categories=["red", "blue"]), "sorted, distinct"),
    (lambda d: d["columns"][0].update(kind="text"), "kind must be one of"),
    (lambda d: d["columns"][0].update(fill="5"), "gap fill must be a finite number"),
    (lambda d: d["columns"].append({"name": "size", "kind": "numeric"}), r"repeated: \['size'\]"),
    (lambda d: d.pop("one_hot"), "malformed input schema"),
])
def test_from_json_refuses_malformed_schemas(change, message):
    data = built(one_hot=False).schema.to_json()
    change(data)
    with pytest.raises(DataError, match=message):
        InputSchema.from_json(data)


def test_a_numeric_column_with_no_training_values_cannot_fill_its_gaps():
    frame = pd.DataFrame({"x": [np.nan, np.nan, 1.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="toy: numeric column 'x' has no values in the training rows"):
        build_dataset("toy", frame.iloc[:2], [0, 1], ("a", "b"), seed=0, test_size=None, one_hot=False,
                      test_features=frame.iloc[2:], test_labels=[0])


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_loader_gives_a_schema_matching_its_features(name):
    data = load_dataset(name, seed=0)
    assert data.schema.feature_names == data.feature_names
    assert InputSchema.from_json(json.loads(json.dumps(data.schema.to_json()))) == data.schema


def test_dataset_without_schema_gets_an_all_numeric_one():
    data = load_dataset("circles", seed=0)  # builds its features itself
    assert data.schema == InputSchema.numeric(("x1", "x2"))
