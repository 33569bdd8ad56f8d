"""The ``handnet`` command line, driven through subprocesses on files the tests write.

Every command runs as ``python -m handnet ...`` in a child process, the way a user
runs it: the tests check exit codes, what is printed, and what is written (model
files, prediction CSVs, PNGs). Model files need :mod:`handnet.io`; tests that save
or load one are skipped while it is missing.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import select
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handnet.cli import TrainingProgress, fold_standardization, main
from handnet.data.files import (
    DataFileError,
    detect_format,
    load_dataset,
    read_csv,
    read_npz,
    write_predictions,
)
from handnet.datasets import make_moons, make_spirals, save_idx
from handnet.metrics import classification_report, confusion_matrix, log_loss
from handnet.models import MLPClassifier, SoftmaxRegression

ROOT = Path(__file__).resolve().parents[1]
# Single-threaded BLAS in the children too (conftest does it in-process): small matrices,
# and threads only add contention on a loaded machine.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
try:
    import handnet.io  # noqa: F401  (model files: handnet.save / handnet.load)
except ImportError:
    HAVE_MODEL_FILES = False
else:
    HAVE_MODEL_FILES = True
needs_model_files = pytest.mark.skipif(
    not HAVE_MODEL_FILES, reason="handnet.io (model files) is not available yet"
)


def run(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m handnet ARGS`` in a child process, stdout and stderr captured."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="100", **ONE_THREAD)
    return subprocess.run(
        [sys.executable, "-m", "handnet", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``handnet ...: error: ...`` line a user error must produce."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert re.match(r"handnet \w+: error: ", lines[0]), lines[0]
    return lines[0]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, checking the signature on the way."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# --- data the tests write ----------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A moons CSV with string labels, a 3-class NPZ and an IDX image/label pair."""
    folder = tmp_path_factory.mktemp("cli")
    X, y = make_moons(300, noise=0.15, random_state=0)
    # The second feature is on another scale and offset: --standardize matters.
    names = np.array(["left", "right"])
    rows = [[f"{a:.6f}", f"{100 * b + 50:.4f}", names[label]]
            for (a, b), label in zip(X, y, strict=True)]
    moons = write_csv(folder / "moons.csv", ["x1", "x2", "label"], rows)

    X3, y3 = make_spirals(300, n_classes=3, noise=0.1, turns=0.3, random_state=1)
    spirals = folder / "spirals.npz"
    np.savez(spirals, X=X3, y=y3)

    # 8x8 "images" of three classes: a bright row, a bright column or a bright diagonal.
    rng = np.random.default_rng(2)
    images = rng.integers(0, 60, size=(150, 8, 8)).astype(np.uint8)
    labels = np.repeat(np.arange(3, dtype=np.uint8), 50)
    for image, label in zip(images, labels, strict=True):
        k = int(rng.integers(1, 7))
        if label == 0:
            image[k, :] = 250
        elif label == 1:
            image[:, k] = 250
        else:
            np.fill_diagonal(image, 250)
    save_idx(folder / "images.idx", images)
    save_idx(folder / "labels.idx", labels)
    return {
        "folder": folder,
        "moons": moons,
        "spirals": spirals,
        "images": folder / "images.idx",
        "labels": folder / "labels.idx",
    }


# --- help --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (None, ["demo", "train", "predict", "evaluate", "info", "gradcheck"]),
        ("demo", ["--plot", "--animate", "--explain", "--seed"]),
        ("train", ["--target", "--model", "--hidden", "--optimizer", "--learning-rate",
                   "--epochs", "--batch-size", "--validation-fraction", "--seed", "--save",
                   "--standardize", "--quiet", "--plot", "--labels", "--checkpoint",
                   "--checkpoint-every", "--resume"]),
        ("predict", ["--proba", "--output"]),
        ("evaluate", ["--target", "--labels"]),
        ("info", ["MODEL"]),
        ("gradcheck", ["--tolerance", "--hidden"]),
    ],
)
def test_help_reads_well(
    command: str | None, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"] if command else ["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for word in expected:
        assert word in text
    assert "example" in text  # every page shows how it is used


def test_help_through_the_console_entry_point() -> None:
    result = run("--help")
    assert result.returncode == 0 and "train" in result.stdout


# --- train, predict, evaluate, info on a CSV ---------------------------------------------


@needs_model_files
def test_csv_train_predict_evaluate_info(files: dict[str, Path], tmp_path: Path) -> None:
    model_file = tmp_path / "moons.npz"
    plot = tmp_path / "moons.png"
    result = run(
        "train", str(files["moons"]), "--target", "label", "--model", "mlp", "--hidden", "16",
        "--standardize", "--epochs", "150", "--learning-rate", "0.02", "--seed", "3",
        "--save", str(model_file), "--plot", str(plot), "--progress", "log",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MLPClassifier 2-16-1 (relu)" in out
    assert "270 training and 30 validation rows, 2 features, 2 classes [left, right]" in out
    assert re.search(r"trained 150 epochs in [\d.]+ s: adam", out)
    train_accuracy = float(re.search(r"training:\s+accuracy ([\d.]+)\s+log loss ([\d.]+)", out)[1])
    assert train_accuracy > 0.9
    kept = re.search(r"validation: accuracy [\d.]+\s+log loss [\d.]+\s+\(epoch (\d+) of "
                     r"(\d+) kept: the lowest validation loss\)", out)
    assert kept, out
    assert f"model saved to {model_file}" in out
    assert model_file.exists()
    # The progress log goes to stderr, stdout keeps the summary.
    assert "epoch 1/150" in result.stderr and "epoch 150/150" in result.stderr
    assert png_size(plot) == (1500, 400)  # loss, accuracy, decision boundary

    # The standardisation travels inside the model: it predicts raw rows.
    import handnet.io as model_files

    model = model_files.load(model_file)
    data = read_csv(files["moons"], target="label")
    with pytest.warns(UserWarning, match="feature names"):
        accuracy = model.score(data.X, data.y)  # a bare array: the model names its columns
    assert accuracy == pytest.approx(train_accuracy, abs=0.05)
    assert list(model.feature_names_in_) == ["x1", "x2"]

    predictions = tmp_path / "predictions.csv"
    result = run("predict", str(model_file), str(files["moons"]), "--proba",
                 "--output", str(predictions))
    assert result.returncode == 0, result.stderr
    assert "300 predictions written" in result.stderr
    with open(predictions, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 300 and list(rows[0]) == ["prediction", "proba_left", "proba_right"]
    proba = np.array([[float(r["proba_left"]), float(r["proba_right"])] for r in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    predicted = np.array([r["prediction"] for r in rows])
    assert np.all(predicted == np.where(proba[:, 1] > 0.5, "right", "left"))
    file_accuracy = float(np.mean(predicted == data.y))

    # To stdout, the same predictions.
    result = run("predict", str(model_file), str(files["moons"]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "prediction"
    assert result.stdout.splitlines()[1:] == list(predicted)

    # evaluate finds the label column on its own (the one column that is not a feature).
    result = run("evaluate", str(model_file), str(files["moons"]))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"accuracy: {file_accuracy:.4f}" in out
    assert "confusion matrix (rows: true class, columns: predicted class)" in out
    matrix = [[int(v) for v in re.search(rf"^\s*{name}\s+(\d+)\s+(\d+)$", out, re.M).groups()]
              for name in ("left", "right")]
    assert sum(map(sum, matrix)) == 300
    assert matrix[0][0] + matrix[1][1] == round(300 * file_accuracy)
    for word in ("precision", "recall", "f1", "support", "log loss", "macro avg"):
        assert word in out

    result = run("info", str(model_file))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "model: MLPClassifier" in out
    assert "Dense(2, 16)" in out and "Dense(16, 1)" in out
    assert "parameters: 65 (48 weights, 17 biases)" in out
    assert "hidden_layer_sizes = (16,)" in out and "learning_rate = 0.02" in out
    assert "classes: 2 [left, right]" in out and "inputs: 2 features [x1, x2]" in out
    # The kept epoch (the lowest validation loss) is named, as train named it.
    saved = model_files.load(model_file)
    assert saved.best_epoch_ == int(kept[1])
    assert saved.validation_loss_curve_[saved.best_epoch_ - 1] == min(saved.validation_loss_curve_)
    assert f"kept epoch: {kept[1]} of {kept[2]} (the lowest validation loss" in out

    result = run("gradcheck", str(model_file))
    assert result.returncode == 0, result.stderr
    assert "passed" in result.stdout and "0: Dense(2, 16)" in result.stdout


@needs_model_files
def test_npz_softmax_and_idx_mlp(files: dict[str, Path], tmp_path: Path) -> None:
    model_file = tmp_path / "spirals.npz"
    result = run("train", str(files["spirals"]), "--model", "softmax", "--epochs", "50",
                 "--quiet", "--save", str(model_file), "--validation-fraction", "0")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --quiet: no progress at all
    assert "SoftmaxRegression 2-3" in result.stdout and "3 classes [0, 1, 2]" in result.stdout
    assert "validation:" not in result.stdout
    result = run("evaluate", str(model_file), str(files["spirals"]))
    assert result.returncode == 0, result.stderr
    assert "examples: 300" in result.stdout

    model_file = tmp_path / "digits.npz"
    result = run("train", str(files["images"]), "--labels", str(files["labels"]), "--hidden",
                 "16", "--epochs", "40", "--quiet", "--save", str(model_file))
    assert result.returncode == 0, result.stderr
    assert "MLPClassifier 64-16-3" in result.stdout  # --hidden alone picks the mlp
    result = run("evaluate", str(model_file), str(files["images"]), "--labels",
                 str(files["labels"]))
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"accuracy: ([\d.]+)", result.stdout)[1])
    assert accuracy > 0.9
    result = run("predict", str(model_file), str(files["images"]))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 151


@needs_model_files
def test_columns_are_read_by_name_and_labels_must_match(
    files: dict[str, Path], tmp_path: Path
) -> None:
    import handnet

    data = read_csv(files["moons"], target="label")
    model = MLPClassifier((8,), max_iter=40, tol=None, random_state=0)
    model.fit(data.X, data.y)
    model.feature_names_in_ = np.asarray(["x1", "x2"], dtype=object)  # as handnet train does
    model_file = tmp_path / "named.npz"
    handnet.save(model, model_file)
    # Another column order, an id column, the labels first: read by name all the same.
    shuffled = write_csv(tmp_path / "shuffled.csv", ["label", "id", "x2", "x1"],
                         [[label, i, b, a] for i, ((a, b), label)
                          in enumerate(zip(data.X.tolist(), data.y.tolist(), strict=True))])
    result = run("predict", str(model_file), str(shuffled))
    assert result.returncode == 0, result.stderr
    with pytest.warns(UserWarning, match="feature names"):
        expected = model.predict(data.X)
    assert result.stdout.split()[1:] == expected.tolist()
    line = one_line_error(run("evaluate", str(model_file), str(shuffled)))
    assert "name the label column with --target" in line  # two columns are not features
    result = run("evaluate", str(model_file), str(shuffled), "--target", "label")
    assert result.returncode == 0 and "examples: 300" in result.stdout
    # Labels from another problem altogether: an error, not a table of zeros.
    line = one_line_error(run("evaluate", str(model_file), str(shuffled), "--target", "id"))
    assert "have nothing in common with the model's classes [left, right]" in line
    missing = write_csv(tmp_path / "missing.csv", ["x1", "label"], [[0.5, "left"]])
    line = one_line_error(run("predict", str(model_file), str(missing)))
    assert "no feature column 'x2'" in line


def test_lbfgs_summary(files: dict[str, Path]) -> None:
    result = run("train", str(files["moons"]), "--target", "label", "--optimizer", "lbfgs",
                 "--standardize", "--quiet")
    assert result.returncode == 0, result.stderr
    pattern = r"trained \d+ iterations (\(converged\) )?in .*: lbfgs, full batch"
    assert re.search(pattern, result.stdout)
    # L-BFGS scores the validation rows every iteration too, and keeps the best one.
    assert re.search(r"\(epoch \d+ of \d+ kept: the lowest validation loss\)", result.stdout)


def test_train_without_saving_logistic_default(files: dict[str, Path]) -> None:
    result = run("train", str(files["moons"]), "--target", "label", "--epochs", "20",
                 "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert "LogisticRegression 2-1" in result.stdout  # two classes, no mlp flags
    assert "model not saved" in result.stdout
    assert result.stderr == ""


# --- progress ----------------------------------------------------------------------------


class _Trainer:
    def __init__(self) -> None:
        self.epoch = 0
        self.history = type("History", (), {"loss": [], "validation_score": []})()


def test_progress_log_lines_and_none() -> None:
    stream = io.StringIO()
    progress = TrainingProgress(100, mode="auto", stream=stream, interval=0.0)
    trainer = _Trainer()
    for epoch in range(1, 101):
        trainer.epoch = epoch
        trainer.history.loss.append(1.0 / epoch)
        trainer.history.validation_score.append(0.5 + epoch / 400)
        progress(trainer)
    progress.close()
    lines = stream.getvalue().splitlines()
    # The objective the trainer minimises (the L2 term included) is named as such, never
    # plain "loss", which the summary keeps for the data's log loss.
    assert lines[0].startswith(
        "epoch 1/100: objective (loss + L2) 1, validation accuracy 0.5025 ("
    )
    assert "left)" in lines[0]
    assert lines[-1].startswith("epoch 100/100: objective (loss + L2) 0.01,")
    assert len(lines) == 21  # epoch 1, then every 5th
    silent = io.StringIO()
    quiet = TrainingProgress(10, mode="none", stream=silent)
    quiet(trainer)
    quiet.close()
    assert silent.getvalue() == ""


def test_progress_log_ends_with_the_last_epoch_when_stopped_early() -> None:
    stream = io.StringIO()
    progress = TrainingProgress(1000, mode="log", stream=stream, interval=1e9)
    trainer = _Trainer()
    for epoch in range(1, 8):
        trainer.epoch = epoch
        trainer.history.loss.append(0.1)
        progress(trainer)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/1000", "epoch 7/1000"]


def test_progress_bar_on_a_terminal(files: dict[str, Path]) -> None:
    pytest.importorskip("tqdm")
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "handnet", "train", str(files["moons"]), "--target", "label",
         "--epochs", "30"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
        env=dict(os.environ, **ONE_THREAD),
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    stdout, _ = process.communicate(timeout=60)
    os.close(master)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert process.returncode == 0, terminal
    assert "training: 100%" in terminal and "30/30" in terminal and "epoch" in terminal
    assert "objective=" in terminal and "val=" in terminal and "loss=" not in terminal
    assert "epoch 1/30" not in terminal  # a bar, not log lines
    assert b"trained 30 epochs" in stdout


# --- errors a user can cause -------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(files: dict[str, Path]) -> dict[str, Path]:
    folder = files["folder"]
    text = write_csv(folder / "text.csv", ["a", "color", "y"],
                     [[1, 2, 0], [2, "red", 1], [3, 4, 0]])
    ragged = folder / "ragged.csv"
    ragged.write_text("a,b,y\n1,2,0\n3,4\n", encoding="utf-8")
    junk = folder / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    return {"text": text, "ragged": ragged, "junk": junk}


@pytest.mark.parametrize(
    ("case", "expected_code", "pattern"),
    [
        ("missing data", 1, r"nope\.csv: no such file"),
        ("unknown column", 1, r"no target column 'species'; the columns are: x1, x2, label"),
        ("no target", 1, r"name its label column with --target \(the columns are: x1, x2, label\)"),
        ("non-numeric", 1, r"text\.csv, line 3, column 'color': 'red' is not a number"),
        ("ragged", 1, r"ragged\.csv, line 3: 2 fields, but the header has 3"),
        ("corrupt npz", 1, r"junk\.npz: cannot read the \.npz archive"),
        ("missing model", 1, r"nope\.npz: no such model file"),
        ("three classes for logistic", 2, r"--model logistic is for two classes"),
        ("folder to save into is missing", 1, r"no/such/dir/m\.npz: the folder to write into"),
        ("bad learning rate", 2, r"--learning-rate: expected a positive number"),
        ("mlp flag on a linear model", 2, r"--hidden is for --model mlp"),
    ],
)
def test_user_errors_are_one_line(
    case: str, expected_code: int, pattern: str, files: dict[str, Path],
    bad_files: dict[str, Path], tmp_path: Path,
) -> None:
    moons, folder = str(files["moons"]), files["folder"]
    args = {
        "missing data": ["train", str(folder / "nope.csv"), "--target", "y"],
        "unknown column": ["train", moons, "--target", "species"],
        "no target": ["train", moons],
        "non-numeric": ["train", str(bad_files["text"]), "--target", "y"],
        "ragged": ["train", str(bad_files["ragged"]), "--target", "y"],
        "corrupt npz": ["train", str(bad_files["junk"])],
        "missing model": ["predict", str(folder / "nope.npz"), moons],
        "three classes for logistic": ["train", str(files["spirals"]), "--model", "logistic"],
        "folder to save into is missing": ["train", moons, "--target", "label",
                                           "--save", "no/such/dir/m.npz"],
        "bad learning rate": ["train", moons, "--target", "label", "--learning-rate", "-1"],
        "mlp flag on a linear model": ["train", moons, "--target", "label", "--model",
                                       "softmax", "--hidden", "8"],
    }[case]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == expected_code, result.stderr
    if case == "bad learning rate":  # argparse's own message, after its usage line
        assert re.search(pattern, result.stderr) and "Traceback" not in result.stderr
        return
    assert re.search(pattern, one_line_error(result)), result.stderr


@needs_model_files
def test_a_file_that_is_not_a_model(files: dict[str, Path]) -> None:
    for not_a_model in (files["moons"], files["spirals"]):
        commands = (["info", str(not_a_model)],
                    ["predict", str(not_a_model), str(files["moons"])])
        for command in commands:
            line = one_line_error(run(*command))
            assert str(not_a_model) in line


# --- gradcheck and demo --explain ----------------------------------------------------------


def test_gradcheck_builds_a_network_and_reports_each_layer() -> None:
    result = run("gradcheck", "--hidden", "6,5", "--classes", "2", "--dropout", "0.3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for layer in ("0: Dense(4, 6)", "3: Dense(6, 5)", "6: Dense(5, 1)"):
        assert re.search(rf"{re.escape(layer)}\s+\d\.\d+e-\d+\s+ok", out), out
    assert "BinaryCrossEntropy" in out and out.strip().splitlines()[-1].startswith("passed")
    failed = run("gradcheck", "--tolerance", "1e-30")
    assert failed.returncode == 1 and "FAILED" in failed.stdout


def test_demo_explain_walks_through_the_demos_first_step() -> None:
    explained = run("demo", "--explain", "--seed", "4")
    assert explained.returncode == 0, explained.stderr
    text = explained.stdout
    for step in ("Step 1 - prepare", "Step 2 - forward", "Step 3 - loss", "Step 4 - optimize",
                 "Step 5 - predict"):
        assert step in text
    assert "shape (1000, 4)" in text and "shape (4, 1)" in text and "shape (1000, 1)" in text
    loss = re.search(r"L = mean over the 1000 examples = ([\d.]+)", text)[1]
    demo = run("demo", "--seed", "4", "--iterations", "1")
    assert f"loss after iteration 0: {loss}" in demo.stdout
    # The updated w is the demo's w after one iteration.
    w_explained = re.search(r"w <- w - 0.01 \* dL/dw\s+shape \(4, 1\): (.*)", text)[1]
    values = [float(v) for v in re.findall(r"-?\d+\.\d+", w_explained)]
    w_demo = [float(v) for v in re.search(r"^w: \[(.*)\]", demo.stdout, re.M)[1].split()]
    np.testing.assert_allclose(values, w_demo, atol=1e-4)
    assert run("demo", "--explain", "--model", "mlp").returncode == 2


@pytest.mark.parametrize(
    ("model", "option", "value"),
    [
        ("cnn", "--hidden", "8"),
        ("cnn", "--n-samples", "100"),
        ("cnn", "--labels", "round"),
        ("logistic", "--hidden", "8"),
        ("softmax", "--optimizer", "adam"),
        ("mlp", "--labels", "round"),
    ],
)
def test_demo_refuses_options_its_model_does_not_take(model: str, option: str, value: str) -> None:
    """An option a demo would ignore is an error naming the demos that take it."""
    result = run("demo", "--model", model, option, value)
    assert result.returncode == 2, result.stderr
    assert f"{option} does not apply to --model {model}: only --model" in result.stderr


# --- the README's "train on your CSV" example, run as written ------------------------------


def readme_example() -> str:
    """The shell snippet between the markers in README.md (or docs/cli.md without them)."""
    start, end = "<!-- csv-example-start -->", "<!-- csv-example-end -->"
    for source in (ROOT / "README.md", ROOT / "docs" / "cli.md"):
        if source.exists():
            text = source.read_text(encoding="utf-8")
            if start in text and end in text:
                block = text.split(start, 1)[1].split(end, 1)[0]
                code = re.search(r"```(?:bash|sh|console)?\n(.*?)```", block, re.S)
                assert code, f"no code block between the markers in {source}"
                return code.group(1)
    raise AssertionError("no csv example between markers in README.md or docs/cli.md")


@needs_model_files
def test_readme_csv_example_runs_as_written(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is needed to run the README's shell example")
    X, y = make_moons(200, noise=0.1, random_state=5)
    write_csv(tmp_path / "data.csv", ["x1", "x2", "label"],
              [[f"{a:.5f}", f"{b:.5f}", ["no", "yes"][k]] for (a, b), k in zip(X, y, strict=True)])
    script = textwrap.dedent(
        f"""\
        set -euo pipefail
        # The command as installed may not be on PATH in a test run: same interpreter instead.
        handnet() {{ "{sys.executable}" -m handnet "$@"; }}
        """
    ) + readme_example()
    result = subprocess.run([bash, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env=dict(os.environ, **ONE_THREAD))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "model.npz").exists()
    assert (tmp_path / "predictions.csv").read_text().startswith("prediction,")


# --- pieces, in process ------------------------------------------------------------------


def test_folding_the_standardisation_keeps_the_function(rng: np.random.Generator) -> None:
    X = rng.normal(loc=[5.0, -300.0, 0.0], scale=[0.01, 50.0, 3.0], size=(200, 3))
    y = (X[:, 0] - 5 + 0.01 * X[:, 1] > -3).astype(int)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    model = MLPClassifier((5,), max_iter=5, random_state=0, tol=None).fit((X - mean) / scale, y)
    before = model.predict_proba((X - mean) / scale)
    fold_standardization(model.network_, mean, scale)
    np.testing.assert_allclose(model.predict_proba(X), before, rtol=1e-9, atol=1e-12)


def test_read_csv_variants(tmp_path: Path) -> None:
    semicolons = tmp_path / "semi.csv"
    semicolons.write_bytes('\ufeffa;"b c";y\n1.5;2;cat\n\n3; 4e1 ;dog\n'.encode())
    data = read_csv(semicolons, target="y")
    assert data.feature_names == ["a", "b c"]  # BOM dropped, quotes honoured
    assert data.X.tolist() == [[1.5, 2.0], [3.0, 40.0]]
    assert data.y.tolist() == ["cat", "dog"]
    gz = tmp_path / "data.csv.gz"
    with gzip.open(gz, "wt") as stream:
        stream.write("f1,f2,t\n0.5,1,1\n1.5,2,0\n")
    assert detect_format(gz) == "csv"
    data = load_dataset(gz, target="t")
    assert data.y.dtype == np.int64 and data.X.shape == (2, 2)
    # A target column can be picked with features by name (other columns ignored).
    data = read_csv(gz, features=["f2"])
    assert data.X.ravel().tolist() == [1.0, 2.0] and data.y is None
    empty_cell = write_csv(tmp_path / "empty.csv", ["a", "y"], [[1, 0], ["", 1]])
    with pytest.raises(DataFileError, match=r"line 3, column 'a': empty cell"):
        read_csv(empty_cell, target="y")
    nan_cell = write_csv(tmp_path / "nan.csv", ["a", "y"], [[1, 0], ["nan", 1]])
    with pytest.raises(DataFileError, match=r"'nan' is not a finite number"):
        read_csv(nan_cell, target="y")


def test_read_csv_semicolon_decimal_is_rejected_clearly(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n1,5;2;0\n3;4;1\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"line 2, column 'a': '1,5' is not a number"):
        read_csv(path, target="y")


def test_npz_reading_refuses_pickles(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataFileError, match=r"cannot read the \.npz archive"):
        read_npz(path)
    named = tmp_path / "named.npz"
    np.savez(named, features=np.zeros((2, 2)))
    with pytest.raises(DataFileError, match=r"no array named 'X' .*\['features'\]"):
        read_npz(named)
    images = tmp_path / "images.npz"
    np.savez(images, X=np.full((3, 2, 2), 255, dtype=np.uint8), y=np.array([0.0, 1.0, 1.0]))
    data = read_npz(images)
    assert data.X.shape == (3, 4) and data.X.max() == 1.0 and data.y.dtype == np.int64


def test_write_predictions_round_trips_probabilities() -> None:
    buffer = io.StringIO()
    proba = np.array([[0.1, 0.9], [1 / 3, 2 / 3]])
    write_predictions(buffer, np.array(["b", "b"]), proba, ["a", "b"])
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows[0] == ["prediction", "proba_a", "proba_b"]
    assert [float(v) for v in rows[2][1:]] == proba[1].tolist()


def test_metrics_match_scikit_learn(rng: np.random.Generator) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    X = rng.standard_normal((120, 3))
    y = np.array(["a", "b", "c"])[np.argmax(X @ rng.standard_normal((3, 3)), axis=1)]
    model = SoftmaxRegression(max_iter=30, tol=None).fit(X[:60], y[:60])
    predicted, log_proba = model.predict(X), model.predict_log_proba(X)
    labels = ["a", "b", "c"]
    np.testing.assert_array_equal(
        confusion_matrix(y, predicted, labels),
        sklearn_metrics.confusion_matrix(y, predicted, labels=labels),
    )
    assert log_loss(y, log_proba, model.classes_) == pytest.approx(
        sklearn_metrics.log_loss(y, np.exp(log_proba), labels=model.classes_), rel=1e-10
    )
    report = classification_report(y, predicted, labels, log_proba)
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    np.testing.assert_allclose(report.precision, precision)
    np.testing.assert_allclose(report.recall, recall)
    np.testing.assert_allclose(report.f1, f1)
    np.testing.assert_array_equal(report.support, support)
    assert report.accuracy == pytest.approx(sklearn_metrics.accuracy_score(y, predicted))
    # A class never predicted: precision 0, not a division by zero.
    report = classification_report(["a", "b"], ["a", "a"], ["a", "b"])
    assert report.precision.tolist() == [0.5, 0.0] and report.f1[1] == 0.0


# --- checkpoints: --checkpoint, --checkpoint-every, --resume -----------------------------


@needs_model_files
def test_checkpoint_options_and_resume_errors(files: dict[str, Path], tmp_path: Path) -> None:
    moons = str(files["moons"])
    train = ("train", moons, "--target", "label", "--model", "mlp", "--hidden", "8",
             "--epochs", "6", "--standardize", "--progress", "none")
    checkpoint = tmp_path / "run.npz"

    # Options that cannot work: one line, status 2, nothing trained.
    for options, pattern in [
        (["--resume"], r"--resume needs --checkpoint PATH"),
        (["--checkpoint-every", "2"], r"--checkpoint-every needs --checkpoint PATH"),
        (["--checkpoint", str(checkpoint), "--save", str(checkpoint)], r"name the same file"),
        (["--checkpoint", str(tmp_path / "no" / "run.npz")], r"the folder to write into"),
    ]:
        result = run(*train, *options, cwd=tmp_path)
        assert re.search(pattern, one_line_error(result)), result.stderr
        assert not checkpoint.exists()
    assert run(*train, "--checkpoint-every", "0").returncode == 2  # argparse: positive

    # --resume without a checkpoint file yet starts the run (and says so) ...
    result = run(*train, "--checkpoint", str(checkpoint), "--checkpoint-every", "2", "--resume")
    assert result.returncode == 0, result.stderr
    assert f"{checkpoint} does not exist yet: starting a new run" in result.stderr
    import handnet.io as model_files

    assert model_files.load(checkpoint).n_iter_ == 6
    # ... an existing one is never overwritten without --resume ...
    line = one_line_error(run(*train, "--checkpoint", str(checkpoint)))
    assert "exists: add --resume" in line
    # ... and with it a finished run is not trained again; --epochs may grow.
    result = run(*train, "--checkpoint", str(checkpoint), "--resume")
    assert result.returncode == 0 and "trained 6 epochs" in result.stdout, result.stderr
    longer = [*train[:-5], "--epochs", "8", *train[-3:]]
    result = run(*longer, "--checkpoint", str(checkpoint), "--resume")
    assert result.returncode == 0 and "trained 8 epochs" in result.stdout, result.stderr

    # Resuming with other data or other options: one clear line, status 1, no traceback.
    other = tmp_path / "other.csv"
    with files["moons"].open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    write_csv(other, rows[0], rows[1:-1])  # one row fewer
    for command, pattern in [
        ([*longer[:1], str(other), *longer[2:]], r"the data differs"),
        ([*longer, "--learning-rate", "0.1"], r"learning_rate=0\.01 there but 0\.1 here"),
        ([*longer, "--seed", "1"], r"the data differs|random_state"),
        ([*longer[:4], "--model", "softmax", *longer[8:]], r"cannot resume a SoftmaxRegression"),
    ]:
        result = run(*command, "--checkpoint", str(checkpoint), "--resume")
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, result.stderr
        assert re.search(pattern, errors[0]) and "--resume continues a run" in errors[0]
    # A file that is no checkpoint at all.
    result = run(*longer, "--checkpoint", moons, "--resume")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error:" in result.stderr and moons in result.stderr


# --- issue 13: hostile files, huge sizes, unwritable paths --------------------------------

# Control characters that must never reach a terminal from a file: C0 (but the line breaks
# the output is laid out in), DEL and C1.
LIVE_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
HOSTILE_LABELS = ["\x1b[2J\x1b[31mA", "\x1b]0;pwned\x07B"]


@needs_model_files
def test_labels_and_names_from_files_reach_the_terminal_escaped(tmp_path: Path) -> None:
    # A label that clears the screen and one that retitles the window; a feature name
    # with a C1 control (CSI, 0x9b). Every command prints them as inert escapes.
    X, y = make_moons(80, noise=0.1, random_state=0)
    rows = [[f"{a:.5f}", f"{b:.5f}", HOSTILE_LABELS[label]]
            for (a, b), label in zip(X, y, strict=True)]
    data = write_csv(tmp_path / "hostile.csv", ["x\x9b1", "x2", "label"], rows)
    model = tmp_path / "model.npz"
    outputs = {
        "train": run("train", str(data), "--target", "label", "--save", str(model),
                     "--epochs", "5", "--progress", "none"),
        "info": run("info", str(model)),
        "predict": run("predict", str(model), str(data), "--proba"),
        "evaluate": run("evaluate", str(model), str(data), "--target", "label"),
        "error": run("train", str(data), "--target", "nope"),
    }
    for command, result in outputs.items():
        shown = result.stdout + result.stderr
        assert "Traceback" not in shown, shown
        assert not LIVE_CONTROLS.search(shown), (command, shown)
    assert r"classes: 2 [\x1b[2J\x1b[31mA, \x1b]0;pwned\x07B]" in outputs["info"].stdout
    assert r"inputs: 2 features [x\x9b1, x2]" in outputs["info"].stdout
    assert r"\x1b]0;pwned\x07B" in outputs["predict"].stdout
    assert r"\x1b[2J\x1b[31mA" in outputs["evaluate"].stdout
    assert r"the columns are: x\x9b1, x2, label" in one_line_error(outputs["error"])
    # A file written with --output is data, not terminal text: the labels stay as they are.
    output = tmp_path / "predictions.csv"
    assert run("predict", str(model), str(data), "--output", str(output)).returncode == 0
    with output.open(encoding="utf-8", newline="") as stream:
        written = {row[0] for row in csv.reader(stream)}
    assert written - {"prediction"} <= set(HOSTILE_LABELS)


@needs_model_files
def test_integer_labels_beyond_2_to_the_53_stay_exact_through_the_cli(tmp_path: Path) -> None:
    X, y = make_moons(60, noise=0.1, random_state=1)
    rows = [[f"{a:.5f}", f"{b:.5f}", 2**53 + int(label)]
            for (a, b), label in zip(X, y, strict=True)]
    data = write_csv(tmp_path / "ids.csv", ["x1", "x2", "label"], rows)
    model = tmp_path / "model.npz"
    trained = run("train", str(data), "--target", "label", "--save", str(model),
                  "--progress", "none")
    assert trained.returncode == 0, trained.stderr
    assert "2 classes [9007199254740992, 9007199254740993]" in trained.stdout
    predicted = run("predict", str(model), str(data))
    assert predicted.returncode == 0, predicted.stderr
    assert set(predicted.stdout.split()[1:]) <= {"9007199254740992", "9007199254740993"}
    assert "9007199254740993" in predicted.stdout


def test_a_stray_quote_stops_training_with_its_line_number(tmp_path: Path) -> None:
    X, y = make_moons(100, noise=0.1, random_state=2)
    lines = ["x1,x2,label"] + [f"{a:.5f},{b:.5f},{label}"
                               for (a, b), label in zip(X, y, strict=True)]
    lines[50] = lines[50].rsplit(",", 1)[0] + ',"1'  # row 50 ends ,"1
    data = tmp_path / "stray.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("train", str(data), "--target", "label", "--progress", "none")
    assert result.returncode == 1 and result.stdout == ""
    assert re.search(r"stray\.csv, line 51: .*quote", one_line_error(result))


def run_limited(*args: str, memory: int = 2 * 2**30) -> subprocess.CompletedProcess[str]:
    """:func:`run` with the child's address space limited (a runaway stays harmless)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="100", **ONE_THREAD)
    return subprocess.run([sys.executable, "-m", "handnet", *args], capture_output=True,
                          text=True, timeout=300, env=env, preexec_fn=limit)


def test_a_gzip_bomb_is_refused_by_the_cli(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.csv.gz"
    block = b"0,0,1\n0,0,0\n" * (2**20 // 12)
    with gzip.open(bomb, "wb", compresslevel=9) as stream:
        stream.write(b"a,b,y\n")
        for _ in range(150):  # 150 MiB of text in a few hundred KB
            stream.write(block)
    result = run_limited("train", str(bomb), "--target", "y", "--progress", "none")
    line = one_line_error(result)
    assert "bomb.csv.gz: the gzip data expands to more than" in line
    assert "--max-expansion" in line and result.returncode == 1


@pytest.mark.parametrize(
    "command",
    [
        ["train", "DATA", "--target", "label", "--hidden", "99999999999"],
        ["train", "DATA", "--target", "label", "--hidden", "100000,100000"],
        ["gradcheck", "--hidden", "99999999999"],
        ["gradcheck", "--features", "100000000000"],
        ["demo", "--model", "mlp", "--hidden", "99999999999"],
    ],
)
def test_networks_too_large_for_memory_are_refused_before_allocating(
    command: list[str], files: dict[str, Path]
) -> None:
    args = [str(files["moons"]) if arg == "DATA" else arg for arg in command]
    result = run_limited(*args)
    assert result.returncode == 2, result.stderr
    line = one_line_error(result)
    assert re.search(r"network has [\d,]+ parameters and training it needs about .* of "
                     r"memory .* more than this machine's", line), line


@pytest.mark.parametrize(
    ("error", "pattern"),
    [
        (MemoryError("Unable to allocate 745. GiB for an array"), r"out of memory: Unable"),
        (OverflowError("Python int too large to convert to C long"), r"a number is too large"),
    ],
)
def test_memory_and_overflow_errors_are_one_line(
    error: BaseException, pattern: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import handnet.cli as cli

    def fail(args: Any, out: Any) -> int:
        raise error

    monkeypatch.setattr(cli, "_run_info", fail)
    assert main(["info", "model.npz"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.match(r"handnet info: error: " + pattern, lines[0]), lines


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Any:
    """A folder this process cannot write into (as root: an immutable one, via chattr)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    made = chattr is not None and subprocess.run(
        [chattr, "+i", str(folder)], capture_output=True, check=False).returncode == 0
    if not made:
        pytest.skip("running as root without chattr +i: no folder is read-only to root")
    try:
        yield folder
    finally:
        subprocess.run([str(chattr), "-i", str(folder)], capture_output=True, check=False)


@needs_model_files
def test_unwritable_output_paths_are_refused_before_any_work(
    files: dict[str, Path], read_only_folder: Path, tmp_path: Path
) -> None:
    moons = str(files["moons"])
    train = ["train", moons, "--target", "label", "--epochs", "3", "--progress", "none"]
    model = tmp_path / "model.npz"
    assert run(*train, "--save", str(model)).returncode == 0
    for command, path in [
        ([*train, "--save", "SAVE"], read_only_folder / "model.npz"),
        ([*train, "--checkpoint", "SAVE"], read_only_folder / "run.npz"),
        ([*train, "--plot", "SAVE"], read_only_folder / "curves.png"),
        (["predict", str(model), moons, "--output", "SAVE"], read_only_folder / "p.csv"),
        (["demo", "--iterations", "2", "--plot", "SAVE"], read_only_folder / "demo.png"),
    ]:
        result = run(*[str(path) if arg == "SAVE" else arg for arg in command])
        line = one_line_error(result)
        assert result.returncode == 1 and result.stdout == "", result.stdout  # nothing trained
        assert line.split(": error: ", 1)[1].startswith(f"{path}: cannot write into the folder")
        assert not list(read_only_folder.iterdir())


@needs_model_files
def test_gradcheck_of_a_model_with_huge_weights_reports_round_off(tmp_path: Path) -> None:
    # Weights of about 4e11 (a model trained far into a separable problem): the check
    # used to die with a ZeroDivisionError, x + eps being x - eps in float64.
    import handnet.io as model_files

    X, y = make_moons(100, noise=0.1, random_state=0)
    model = MLPClassifier((4,), max_iter=3, random_state=0, tol=None).fit(X, y)
    parameters = model.network_.flat_parameters
    parameters *= 4e11 / np.abs(parameters).max()
    path = tmp_path / "huge.npz"
    model_files.save(model, path)
    result = run("gradcheck", str(path))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1 and result.stderr == ""
    assert re.search(r"2: Dense\(4, 1\)\s+\S+\s+round-off", result.stdout), result.stdout
    assert re.search(r"0: Dense\(2, 4\)\s+\S+\s+ok", result.stdout), result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("inconclusive:")


def test_evaluate_plots_a_confusion_matrix_or_predicted_against_true(
    files: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    model_file = tmp_path / "spirals.npz"
    trained = run("train", str(files["spirals"]), "--model", "softmax", "--epochs", "20",
                  "--save", str(model_file), "--quiet")
    assert trained.returncode == 0, trained.stderr
    picture = tmp_path / "confusion.png"
    result = run("evaluate", str(model_file), str(files["spirals"]), "--plot", str(picture))
    assert result.returncode == 0, result.stderr
    assert f"plot: {picture}" in result.stdout
    width, height = png_size(picture)
    assert width > 200 and height > 200

    # A regressor: its predictions against the true values.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    target = 3 * X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(120)
    table = write_csv(tmp_path / "line.csv", ["a", "b", "target"],
                      [[f"{a:.5f}", f"{b:.5f}", f"{t:.5f}"] for (a, b), t in zip(X, target,
                                                                                 strict=True)])
    regressor = tmp_path / "line.npz"
    trained = run("train", str(table), "--target", "target", "--model", "linear",
                  "--epochs", "50", "--save", str(regressor), "--quiet")
    assert trained.returncode == 0, trained.stderr
    scatter = tmp_path / "scatter.png"
    result = run("evaluate", str(regressor), str(table), "--target", "target",
                 "--plot", str(scatter))
    assert result.returncode == 0, result.stderr
    assert "R^2" in result.stdout and scatter.exists()
    # A path that cannot be written is refused before any work.
    refused = run("evaluate", str(regressor), str(table), "--plot", str(tmp_path / "no" / "x.png"))
    assert refused.returncode != 0 and "x.png" in refused.stderr
