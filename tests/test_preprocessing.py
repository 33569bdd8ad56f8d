"""Imputation and one-hot encoding (handnet.data.preprocessing): learned on training rows,
applied to new ones, kept as plain JSON values and checked when read back."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from handnet.data.preprocessing import Preprocessor, check_model_spec, columns_of


def _table() -> dict[str, Any]:
    return {
        "size": np.array([1.0, np.nan, 3.0, 3.0, 10.0]),
        "colour": np.array(["red", "blue", None, "red", ""], dtype=object),
    }


@pytest.mark.parametrize(
    ("strategy", "fill"), [("mean", 4.25), ("median", 3.0), ("most_frequent", 3.0)]
)
def test_missing_numbers_are_filled_with_the_training_statistic(strategy: str, fill: float) -> None:
    pre = Preprocessor(impute=strategy).fit(_table())
    assert pre.fill_ == [fill, None]
    X = pre.transform(_table())
    assert X[:, 0].tolist() == [1.0, fill, 3.0, 3.0, 10.0]


def test_most_frequent_ties_go_to_the_smallest_value() -> None:
    pre = Preprocessor(impute="most_frequent").fit({"a": np.array([5.0, 2.0, 5.0, 2.0])})
    assert pre.fill_ == [2.0]


def test_text_is_one_hot_encoded_and_unknown_or_missing_give_zeros() -> None:
    pre = Preprocessor().fit({"colour": np.array(["red", "blue", "red"], dtype=object)})
    assert pre.feature_names_out_ == ["colour=blue", "colour=red"]
    new = {"colour": np.array(["blue", "purple", None, "", "red"], dtype=object)}
    assert pre.transform(new).tolist() == [[1, 0], [0, 0], [0, 0], [0, 0], [0, 1]]


def test_statistics_come_from_the_rows_fitted_on_only() -> None:
    train = {"a": np.array([1.0, 3.0, np.nan])}
    pre = Preprocessor(impute="mean").fit(train)
    # New rows with another mean are filled with the training mean.
    assert pre.transform({"a": np.array([np.nan, 100.0])}).ravel().tolist() == [2.0, 100.0]


def test_a_missing_number_without_impute_is_a_clear_error() -> None:
    pre = Preprocessor().fit({"a": np.array([1.0, 2.0])})
    with pytest.raises(ValueError, match=r"column 'a' has 1 missing value\(s\).*--impute"):
        pre.transform({"a": np.array([1.0, np.nan])})


def test_inputs_are_never_modified() -> None:
    table = _table()
    copies = {name: values.copy() for name, values in table.items()}
    Preprocessor(impute="mean").fit_transform(table)
    np.testing.assert_array_equal(table["size"], copies["size"])
    assert table["colour"].tolist() == copies["colour"].tolist()


def test_to_dict_is_json_and_round_trips() -> None:
    pre = Preprocessor(impute="median").fit(_table())
    spec = json.loads(json.dumps(pre.to_dict()))
    again = Preprocessor.from_dict(spec)
    np.testing.assert_array_equal(again.transform(_table()), pre.transform(_table()))
    assert again.feature_names_out_ == pre.feature_names_out_


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(impute="mode"), "unknown impute"),
        (lambda d: d.update(version=2), "unknown preprocessing version"),
        (lambda d: d.update(extra=1), "must have the keys"),
        (lambda d: d["kinds"].__setitem__(0, "date"), "kind must be"),
        (lambda d: d["fill"].__setitem__(0, float("nan")), "finite fill value"),
        (lambda d: d["fill"].__setitem__(0, "3"), "finite fill value"),
        (lambda d: d["categories"].__setitem__(1, ["red", "blue"]), "sorted and distinct"),
        (lambda d: d["categories"].__setitem__(1, "red"), "needs its categories"),
        (lambda d: d["columns"].append("x"), "one entry per column"),
        (lambda d: d["columns"].__setitem__(1, "size"), "distinct"),
    ],
)
def test_from_dict_refuses_what_to_dict_never_writes(change: Any, message: str) -> None:
    spec = Preprocessor(impute="mean").fit(_table()).to_dict()
    change(spec)
    with pytest.raises(ValueError, match=message):
        Preprocessor.from_dict(spec)


def test_the_model_spec_must_agree_with_the_model() -> None:
    pre = Preprocessor(impute="mean").fit(_table())
    spec = {"preprocessor": pre.to_dict(), "header": True, "file_columns": ["size", "colour", "y"],
            "target": "y", "id_column": None, "decimal": "."}
    assert check_model_spec(spec, 1 + 2)["target"] == "y"
    with pytest.raises(ValueError, match="gives 3 features, the model takes 4"):
        check_model_spec(spec, 4)
    with pytest.raises(ValueError, match="target must be one of the file's columns"):
        check_model_spec(dict(spec, target="label"), 3)
    with pytest.raises(ValueError, match="decimal"):
        check_model_spec(dict(spec, decimal=";"), 3)


def test_columns_of_takes_text_columns_by_name() -> None:
    X = np.array([[1.0, np.nan], [2.0, np.nan]])
    text = {"b": np.array(["x", "y"], dtype=object)}
    columns = columns_of(X, ["a", "b"], text)
    assert columns["a"].tolist() == [1.0, 2.0] and columns["b"] is text["b"]
