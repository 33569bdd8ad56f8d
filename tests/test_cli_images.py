"""``handnet train --model cnn`` on image files, and ``handnet demo --model cnn``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import handnet
from handnet.datasets import save_idx

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="100", **ONE_THREAD)
    return subprocess.run(
        [sys.executable, "-m", "handnet", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def _images(n: int = 240, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8-bit images of a bright bar, horizontal (label 0) or vertical (1), anywhere."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(n, size, size)).astype(np.uint8)
    labels = rng.integers(0, 2, size=n)
    for image, label in zip(images, labels, strict=True):
        row, col = rng.integers(0, size - 3, size=2)
        if label == 0:
            image[row, col : col + 4] = 255
        else:
            image[row : row + 4, col] = 255
    return images, labels


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    images, labels = _images()
    np.savez(folder / "bars.npz", X=images, y=labels)
    np.savez(folder / "bars4d.npz", X=images[:, None], y=labels)
    save_idx(folder / "bars-images.idx", images)
    save_idx(folder / "bars-labels.idx", labels.astype(np.uint8))
    np.savez(folder / "flat.npz", X=images.reshape(len(images), -1), y=labels)
    return folder


@pytest.mark.parametrize(
    "data",
    [("bars.npz",), ("bars4d.npz",), ("bars-images.idx", "--labels", "bars-labels.idx")],
)
def test_train_a_cnn_on_image_files_then_evaluate_and_predict(
    image_files: Path, data: tuple[str, ...]
) -> None:
    model = f"cnn-{data[0]}.hnm"
    trained = run(
        "train", *data, "--model", "cnn", "--epochs", "12", "--batch-size", "32",
        "--learning-rate", "0.01", "--save", model, "--quiet", cwd=image_files,
    )
    assert trained.returncode == 0, trained.stderr
    assert "NeuralNetClassifier Reshape((1, 8, 8)) -> Conv2D(1, 16" in trained.stdout
    loaded = handnet.load(image_files / model)
    assert loaded.input_shape_ == (1, 8, 8)
    images, labels = _images()
    assert loaded.score(images[:, None] / 255.0, labels) > 0.9
    evaluated = run("evaluate", model, *data, cwd=image_files)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "accuracy" in evaluated.stdout
    predicted = run("predict", model, *data[:1], "--output", f"{model}.csv", cwd=image_files)
    assert predicted.returncode == 0, predicted.stderr
    lines = (image_files / f"{model}.csv").read_text().splitlines()
    assert len(lines) == len(labels) + 1


def test_a_cnn_needs_images(image_files: Path) -> None:
    result = run("train", "flat.npz", "--model", "cnn", cwd=image_files)
    assert result.returncode != 0
    assert "--model cnn trains on images, but flat.npz holds rows of features" in result.stderr
    result = run("train", "bars.npz", "--model", "cnn", "--standardize", cwd=image_files)
    assert result.returncode != 0
    assert "--standardize scales each column (each pixel) on its own" in result.stderr


def test_channels_last_images_are_named_as_such(image_files: Path) -> None:
    images, labels = _images()
    rgb = np.repeat(images[..., None], 3, axis=3)  # (n, 8, 8, 3): height, width, channels
    np.savez(image_files / "rgb-last.npz", X=rgb, y=labels)
    result = run("train", "rgb-last.npz", "--model", "cnn", cwd=image_files)
    assert result.returncode == 2, result.stderr
    assert "holds images of shape (8, 8, 3), read as (channels, height, width)" in result.stderr
    assert "save X.transpose(0, 3, 1, 2) instead" in result.stderr


def test_images_of_another_shape_are_refused_by_their_shapes(image_files: Path) -> None:
    trained = run("train", "bars.npz", "--model", "cnn", "--epochs", "1", "--save",
                  "gray.hnm", "--quiet", cwd=image_files)
    assert trained.returncode == 0, trained.stderr
    images, labels = _images()
    np.savez(image_files / "rgb.npz", X=np.repeat(images[:, None], 3, axis=1), y=labels)
    for command in ("evaluate", "predict"):
        result = run(command, "gray.hnm", "rgb.npz", cwd=image_files)
        assert result.returncode != 0
        assert ("rgb.npz holds images of shape (3, 8, 8) (channels, height, width), but the "
                "model was trained on images of shape (1, 8, 8)") in result.stderr


def test_training_on_8_bit_images_says_they_are_read_as_x_over_255(image_files: Path) -> None:
    """The scaling happens as the file is read, not in the model: the note says so."""
    images, labels = _images()
    np.savez(image_files / "float-bars.npz", X=images / 255.0, y=labels)
    note = "holds 8-bit values, read as x / 255"
    for data, scaled in (("bars.npz", True), ("float-bars.npz", False)):
        result = run("train", data, "--model", "cnn", "--epochs", "1", cwd=image_files)
        assert result.returncode == 0, result.stderr
        assert (note in result.stderr) == scaled, result.stderr
        assert ("from Python, pass X / 255" in result.stderr) == scaled


def test_the_cnn_demo_trains_on_digits_and_beats_nothing_by_chance(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    result = run("demo", "--model", "cnn", "--epochs", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "handnet demo: CNN on 8x8 digits (1437 training, 360 test images)" in result.stdout
    accuracy = float(result.stdout.split("accuracy: train ")[1].split(",")[0])
    assert accuracy > 0.8  # ten classes: chance is 0.1
