"""The command line on CSV files as people have them (issue 16, items 1-6; issue 14).

Regression targets, files without a header row, choosing columns, identifiers,
missing cells, text columns, decimal commas, hints; each test fails on the
command line as it was before these options existed.
"""

from __future__ import annotations

import ast
import csv
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handnet
from handnet.cli import build_parser, main
from handnet.exceptions import ModelFileError


def write_rows(path: Path, rows: list[list[Any]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        csv.writer(stream, delimiter=delimiter).writerows(rows)
    return path


def handnet_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``handnet ARGS`` in this process: the exit status, stdout and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def regression_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = 3 x0 - 2 x1 + 50 rounded to whole numbers: an integer target that is continuous."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = np.rint(30 * X[:, 0] - 20 * X[:, 1] + 50).astype(int)
    rows = [["x0", "x1", "y"], *[[f"{a:.5f}", f"{b:.5f}", int(t)] for (a, b), t in zip(X, y,
                                                                                       strict=True)]]
    return write_rows(tmp_path_factory.mktemp("regression") / "reg.csv", rows)


@pytest.fixture(scope="module")
def wine_like(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A headerless file (class first, 3 features), and the same rows without the class."""
    rng = np.random.default_rng(1)
    labels = rng.integers(1, 4, size=150)
    X = rng.normal(size=(150, 3)) + labels[:, None]
    folder = tmp_path_factory.mktemp("wine")
    rows = [[int(t), *[f"{v:.3f}" for v in x]] for t, x in zip(labels, X, strict=True)]
    return {"train": write_rows(folder / "wine.csv", rows),
            "new": write_rows(folder / "new.csv", [row[1:] for row in rows[:4]])}


# --- 1. regression -------------------------------------------------------------------------


def test_a_continuous_integer_target_trains_a_regressor_with_a_note(
    regression_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_path = tmp_path / "reg.npz"
    code, out, err = handnet_cli(capsys, "train", str(regression_csv), "--target", "y",
                                 "--epochs", "200", "--save", str(model_path))
    assert code == 0, err
    assert "treated as a continuous value (regression)" in err
    assert "MLPRegressor 2-1" in out and "a continuous target (regression)" in out
    r2 = float(re.search(r"validation: R\^2 ([-\d.]+)\s+MAE [\d.]+\s+RMSE [\d.]+", out)[1])
    assert r2 > 0.99  # the target's scale is learned (folded into the output layer)
    code, out, err = handnet_cli(capsys, "evaluate", str(model_path), str(regression_csv))
    assert code == 0, err
    assert re.search(r"R\^2: 0\.99\d+", out) and "mean absolute error (MAE)" in out
    assert "root mean squared error (RMSE)" in out
    code, out, _ = handnet_cli(capsys, "predict", str(model_path), str(regression_csv))
    predictions = [float(line) for line in out.splitlines()[1:]]
    assert len(predictions) == 300 and abs(predictions[0] - round(predictions[0])) > 0


def test_task_and_model_options_override_the_rule(
    regression_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", str(regression_csv), "--target", "y", "--epochs", "3", "--quiet"]
    code, out, _ = handnet_cli(capsys, *base, "--task", "classification")
    assert code == 0 and "SoftmaxRegression" in out and "classes" in out
    code, out, _ = handnet_cli(capsys, *base, "--model", "mlp", "--hidden", "4")
    assert code == 0 and "MLPRegressor 2-4-1" in out
    code, out, err = handnet_cli(capsys, *base, "--model", "logistic", "--task", "regression")
    assert code == 2 and "--model logistic is for classification" in error_line(err)


def test_few_integer_values_stay_classes_and_text_cannot_be_regressed(
    wine_like: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rows(tmp_path / "t.csv", [["a", "y"], [1, "cat"], [2, "dog"], [3, "cat"]])
    code, _, err = handnet_cli(capsys, "train", str(path), "--target", "y", "--task",
                               "regression")
    assert code == 2 and "--task regression needs a numeric target" in error_line(err)
    code, out, _ = handnet_cli(capsys, "train", str(wine_like["train"]), "--no-header",
                               "--target", "0", "--epochs", "2", "--quiet")
    assert code == 0 and "3 classes [1, 2, 3]" in out


# --- 2. files without a header -------------------------------------------------------------


def test_a_missing_header_is_detected_and_no_header_reads_columns_by_position(
    wine_like: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = str(wine_like["train"])
    code, _, err = handnet_cli(capsys, "train", train, "--target", "0")
    line = error_line(err)
    assert code == 1 and "seems to have no header row" in line and "--no-header" in line
    model_path = tmp_path / "wine.npz"
    code, out, err = handnet_cli(capsys, "train", train, "--no-header", "--target", "0",
                                 "--epochs", "50", "--save", str(model_path), "--quiet")
    assert code == 0, err
    assert "150 rows" not in out and "135 training and 15 validation rows, 3 features" in out
    # New rows without the class column: the columns are the training file's, less the target.
    code, out, err = handnet_cli(capsys, "predict", str(model_path), str(wine_like["new"]))
    assert code == 0, err
    assert out.splitlines()[0] == "prediction" and len(out.splitlines()) == 5
    code, out, err = handnet_cli(capsys, "evaluate", str(model_path), train)
    assert code == 0 and "examples: 150" in out, err


def test_a_position_beyond_the_columns_is_a_clear_error(
    wine_like: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = handnet_cli(capsys, "train", str(wine_like["train"]), "--no-header",
                               "--target", "13")
    assert code == 1 and "the file has 4 columns, at positions 0 to 3" in error_line(err)


# --- 3. choosing columns -------------------------------------------------------------------


@pytest.fixture
def with_id(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    rows: list[list[Any]] = [["id", "a", "b", "noise", "label"]]
    for i in range(80):
        a, b = rng.normal(size=2)
        rows.append([f"r{i:02d}", f"{a:.4f}", f"{b:.4f}", f"{rng.normal():.4f}", int(a + b > 0)])
    return write_rows(tmp_path / "ids.csv", rows)


def test_drop_features_and_id_column(
    with_id: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_path = tmp_path / "m.npz"
    code, out, err = handnet_cli(capsys, "train", str(with_id), "--target", "label",
                                 "--id-column", "id", "--drop", "noise", "--save",
                                 str(model_path), "--quiet")
    assert code == 0, err
    assert "2 features" in out
    assert handnet.load(model_path).feature_names_in_.tolist() == ["a", "b"]
    code, out, err = handnet_cli(capsys, "predict", str(model_path), str(with_id))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "id,prediction" and lines[1].startswith("r00,")
    # Features by position, and the id column by position too.
    code, out, err = handnet_cli(capsys, "train", str(with_id), "--target", "4",
                                 "--features", "1,2", "--quiet")
    assert code == 0 and "2 features" in out, err


def test_abbreviated_options_are_refused(with_id: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # '--drop' is an option of its own, never '--dropout'; prefixes are not expanded.
    for command in ("train", "predict", "evaluate", "info", "gradcheck", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "x", "--epoc", "3"] if command != "demo" else [command, "--epoc",
                                                                             "3"])
        assert exit_info.value.code == 2
        assert "unrecognized arguments: --epoc" in capsys.readouterr().err


def test_csv_options_on_other_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, X=np.eye(4), y=np.array([0, 1, 0, 1]))
    code, _, err = handnet_cli(capsys, "train", str(path), "--drop", "1")
    assert code == 2 and "--drop is for CSV files, but" in error_line(err)
    np.save(tmp_path / "X.npy", np.eye(4))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    code, _, err = handnet_cli(capsys, "train", str(tmp_path / "X.npy"), "--labels",
                               str(tmp_path / "y.npy"), "--impute", "mean")
    assert code == 2 and "--impute is for CSV files" in error_line(err)


# --- 4. missing values, text columns, decimal commas ----------------------------------------


MESSY = """\
P01;5,1;red;3,5;0
P02;4,9;blue;;0
P03;6,2;red;3,4;1
P04;;green;2,9;1
P05;5,8;blue;2,7;1
P06;4,7;red;3,2;0
P07;6,1;green;2,8;1
P08;5,0;blue;3,6;0
P09;6,4;red;3,1;1
P10;4,8;green;3,3;0
P11;6,0;blue;3,0;1
P12;5,2;red;3,5;0
"""


def test_a_messy_file_trains_and_predicts_raw_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    base = ["train", str(path), "--no-header", "--target", "4", "--id-column", "0"]
    code, _, err = handnet_cli(capsys, *base)
    assert code == 1 and "is written with a decimal comma: pass --decimal ," in error_line(err)
    code, _, err = handnet_cli(capsys, *base, "--decimal", ",")
    assert code == 1 and "empty cell (missing value)" in error_line(err) and "--impute" in err
    model_path = tmp_path / "m.npz"
    code, out, err = handnet_cli(capsys, *base, "--decimal", ",", "--impute", "median",
                                 "--validation-fraction", "0", "--save", str(model_path))
    assert code == 0, err
    assert "one-hot encoded into 3 columns ([blue, green, red])" in err
    assert "5 features" in out
    model = handnet.load(model_path)
    assert model.preprocessing_["preprocessor"]["impute"] == "median"
    assert model.feature_names_in_.tolist() == ["1", "2=blue", "2=green", "2=red", "3"]
    code, out, _ = handnet_cli(capsys, "info", str(model_path))
    assert "CSV read: no header row, columns by position (5 columns), target '4', id column " \
        "'0', decimal comma" in out
    assert "one-hot: '2' -> 3 columns [blue, green, red]" in out and "median" in out
    new = tmp_path / "new.csv"
    new.write_text("Q1;5,5;purple;\nQ2;;red;3,0\n", encoding="utf-8")  # no target, unknown colour
    code, out, err = handnet_cli(capsys, "predict", str(model_path), str(new), "--proba")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "0,prediction,proba_0,proba_1" and lines[1].startswith("Q1,")
    # The same rows encoded by hand give the same probabilities: median fill, zeros for purple.
    fill = model.preprocessing_["preprocessor"]["fill"]
    X = np.array([[5.5, 0, 0, 0, fill[2]], [fill[0], 0, 0, 1, 3.0]])
    with warnings.catch_warnings():  # a bare array for a model fitted on named columns
        warnings.simplefilter("ignore")
        expected = model.predict_proba(X)
    assert [float(v) for v in lines[1].split(",")[2:]] == pytest.approx(expected[0].tolist())
    assert [float(v) for v in lines[2].split(",")[2:]] == pytest.approx(expected[1].tolist())


def test_an_identifier_like_text_column_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [["name", "a", "y"], *[[f"n{i}", i % 5, i % 2] for i in range(20)]]
    path = write_rows(tmp_path / "names.csv", rows)
    code, _, err = handnet_cli(capsys, "train", str(path), "--target", "y")
    assert code == 2 and "--id-column name" in error_line(err)


def test_a_forged_preprocessing_spec_is_refused_on_load(tmp_path: Path) -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    model = handnet.LogisticRegression(max_iter=5, tol=None).fit(X, np.array([0, 1, 1, 0]))
    model.preprocessing_ = {"preprocessor": None, "header": "yes", "file_columns": ["a", "b"],
                            "target": None, "id_column": None, "decimal": "."}
    path = tmp_path / "forged.npz"
    message = r"preprocessing_\.header must be true or false"
    with pytest.raises(ValueError, match=message):
        handnet.save(model, path)  # save writes no file that load refuses
    # Written anyway (as a forger could), load refuses it.
    from handnet.io.atomic import _write_atomic
    from handnet.io.describe import _describe

    arrays: dict[str, np.ndarray] = {}
    _write_atomic(path, _describe(model, arrays, True), arrays)
    with pytest.raises(ModelFileError, match=message):
        handnet.load(path)


# --- 5. one loss, one name ------------------------------------------------------------------


def test_the_summary_says_its_scores_leave_out_the_l2_term(
    with_id: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", str(with_id), "--target", "label", "--id-column", "id", "--epochs", "3",
            "--progress", "log"]
    code, out, err = handnet_cli(capsys, *args, "--l2", "0.1")
    assert code == 0 and "objective (loss + L2)" in err and "log loss" in out
    assert "the progress report's objective adds the L2 penalty" in out
    code, out, _ = handnet_cli(capsys, *args)
    assert code == 0 and "L2 penalty" not in out  # no L2 term: nothing to tell apart


# --- 6. hints ------------------------------------------------------------------------------


def test_hints_for_unscaled_features_and_a_misspelt_target(
    with_id: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list(csv.reader(with_id.read_text(encoding="utf-8").splitlines()))
    scaled = [rows[0]] + [[r[0], str(float(r[1]) * 1000), *r[2:]] for r in rows[1:]]
    path = write_rows(tmp_path / "scales.csv", scaled)
    args = ["train", str(path), "--target", "label", "--id-column", "id", "--epochs", "2"]
    code, _, err = handnet_cli(capsys, *args)
    assert code == 0 and "hint: the features' scales differ by a factor of" in err
    assert "'a'" in err and "--standardize" in err
    code, _, err = handnet_cli(capsys, *args, "--standardize")
    assert code == 0 and "hint:" not in err
    code, _, err = handnet_cli(capsys, "train", str(path), "--target", "Label")
    assert code == 1 and error_line(err).endswith("did you mean 'label'?")


# --- 7 (issue 14). --model from the estimators registry ---------------------------------------


def test_model_choices_come_from_the_registry(
    with_id: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from handnet.base import ESTIMATORS
    from handnet.models import MLPClassifier

    class WideMLPClassifier(MLPClassifier):
        pass

    class NeedsWidthClassifier(MLPClassifier):
        def __init__(self, width: int, **params: Any) -> None:
            super().__init__(**params)
            self.width = width

    ESTIMATORS.register("WideMLPClassifier", WideMLPClassifier)
    ESTIMATORS.register("NeedsWidthClassifier", NeedsWidthClassifier)
    try:
        parser = build_parser()
        train = next(action.choices["train"] for action in parser._actions
                     if isinstance(action.choices, dict) and "train" in action.choices)
        choices = next(a.choices for a in train._actions if a.dest == "model")
        assert {"logistic", "softmax", "mlp", "linear", "MLPRegressor"} <= set(choices)
        assert "WideMLPClassifier" in choices
        # It trains as any model does, with the mlp's options.
        code, out, err = handnet_cli(capsys, "train", str(with_id), "--target", "label",
                                     "--id-column", "id", "--model", "WideMLPClassifier",
                                     "--hidden", "5", "--epochs", "3", "--quiet")
        assert code == 0 and "WideMLPClassifier 3-5-1" in out, err
        # One whose constructor needs more than the command line gives is refused clearly.
        code, _, err = handnet_cli(capsys, "train", str(with_id), "--target", "label",
                                   "--id-column", "id", "--model", "NeedsWidthClassifier")
        line = error_line(err)
        assert code == 2 and "cannot be built from the command line" in line and "width" in line
    finally:
        del ESTIMATORS["WideMLPClassifier"], ESTIMATORS["NeedsWidthClassifier"]


# --- 8 (issue 14). read_csv in small steps ------------------------------------------------------


def test_no_function_of_the_csv_reader_is_longer_than_80_lines() -> None:
    """read_csv was one function of 144 lines; its steps are functions of their own now."""
    from handnet.data import csv_reader, files

    for module in (csv_reader, files):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node, clean=False) or ""
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length - docstring.count("\n") <= 80, node.name
