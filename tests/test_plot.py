"""Pictures: each plot is a valid PNG of the expected size, the GIF has several frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from handnet import plot
from handnet.datasets import make_moons
from handnet.models import LogisticRegression, MLPClassifier

PANEL = (int(plot.PANEL_WIDTH * plot.DPI), int(plot.PANEL_HEIGHT * plot.DPI))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, checking the signature on the way."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Single-threaded BLAS in the child too, as conftest does in-process.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "handnet", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120, env=env)


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, np.ndarray]:
    return make_moons(200, noise=0.2, random_state=0)


@pytest.fixture(scope="module")
def fitted(moons: tuple[np.ndarray, np.ndarray]) -> MLPClassifier:
    X, y = moons
    return MLPClassifier((8,), max_iter=30, random_state=0, tol=None).fit(
        X, y, validation_data=(X[:50], y[:50])
    )


def test_training_figure_sizes(
    tmp_path: Path, fitted: MLPClassifier, moons: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = moons
    curves = plot.TrainingCurves.from_model(fitted)
    assert len(curves.series["training loss"][1]) == 30
    assert curves.last("validation accuracy") == fitted.validation_scores_[-1]
    for extra, panels in (({}, 2), ({"model": fitted, "X": X, "y": y}, 3),
                          ({"model": fitted, "X": X, "y": y,
                            "weights": ([1.0, 2.0], [0.5, 1.0], ["a", "b"])}, 4)):
        figure = plot.training_figure(curves, title="test", **extra)  # type: ignore[arg-type]
        path = plot.save_figure(figure, tmp_path / f"{panels}.png")
        assert png_size(Path(path)) == (panels * PANEL[0], PANEL[1])


def test_decision_boundary_of_any_classifier(
    tmp_path: Path, moons: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = moons
    labels = np.array(["blue", "red"])[y]  # string classes
    figure, axes = plot.new_figure(2)
    ours = LogisticRegression(max_iter=50, tol=None).fit(X, labels)
    plot.plot_decision_boundary(ours, X, labels, ax=axes[0], resolution=50, title="handnet")
    sklearn_tree = pytest.importorskip("sklearn.tree")
    theirs = sklearn_tree.DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, labels)
    plot.plot_decision_boundary(theirs, X, labels, ax=axes[1], resolution=50,
                                feature_names=["x", "y"])
    assert axes[1].get_xlabel() == "x"
    path = tmp_path / "boundaries.png"
    plot.save_figure(figure, path)
    assert png_size(path) == (2 * PANEL[0], PANEL[1])
    with pytest.raises(ValueError, match="2-D data"):
        plot.plot_decision_boundary(ours, np.zeros((3, 3)))


def test_weights_and_curves_alone(tmp_path: Path) -> None:
    ax = plot.plot_weights([1.0, -2.0, 0.5], [0.3, -0.6, 0.2])
    assert len(ax.patches) == 9  # teacher, learned, rescaled
    curves = plot.TrainingCurves()
    curves.add("training loss", 1, 0.5)
    ax_loss, ax_accuracy = plot.plot_curves(curves, *plot.new_figure(2)[1])
    assert ax_loss is not None and ax_loss.get_yscale() == "log"
    assert ax_accuracy is not None and "no accuracy recorded" in ax_accuracy.texts[0].get_text()
    with pytest.raises(ValueError, match="3 values"):
        plot.plot_weights([1.0, 2.0, 3.0], [1.0])
    path = plot.save_figure(ax.figure, tmp_path / "weights.svg")  # other formats by extension
    assert Path(path).read_text().lstrip().startswith("<?xml")


def test_animation_writes_a_gif_with_frames(
    tmp_path: Path, fitted: MLPClassifier, moons: tuple[np.ndarray, np.ndarray]
) -> None:
    from PIL import Image

    X, y = moons
    animation = plot.BoundaryAnimation(tmp_path / "b.gif", X, y, classes=[0, 1], resolution=40,
                                       size=2.0)
    for title in ("one", "two", "three"):
        animation.add_frame(fitted, title)
    with Image.open(animation.close()) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3 and gif.size == (200, 200)


def test_no_matplotlib_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(plot.MissingDependencyError, match=r'pip install "handnet\[plot\]"'):
        plot.new_figure(1)
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from handnet.cli import main\n"
        "sys.exit(main(['demo', '--iterations', '5', '--plot', 'x.png']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        'handnet demo: error: pictures need matplotlib: pip install "handnet[plot]" '
        "(or pip install matplotlib)"
    )


def test_demo_plot_and_output_unchanged(tmp_path: Path) -> None:
    plain = run("demo", "--iterations", "300", "--seed", "2", cwd=tmp_path)
    pictured = run("demo", "--iterations", "300", "--seed", "2", "--plot", "seed.png",
                   cwd=tmp_path)
    assert pictured.returncode == 0, pictured.stderr
    assert png_size(tmp_path / "seed.png") == (3 * PANEL[0], PANEL[1])  # curves + weights

    def numbers(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith(("training time",
                                                                           "plot written"))]

    # Recording the curves must not change a single printed number.
    assert numbers(pictured.stdout) == numbers(plain.stdout)
    assert "plot written to seed.png" in pictured.stdout


def test_demo_mlp_plot_and_animation(tmp_path: Path) -> None:
    from PIL import Image

    result = run("demo", "--model", "mlp", "--iterations", "12", "--frames", "4", "--quiet",
                 "--plot", "spirals.png", "--animate", "spirals.gif", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert png_size(tmp_path / "spirals.png") == (3 * PANEL[0], PANEL[1])
    with Image.open(tmp_path / "spirals.gif") as gif:
        assert gif.n_frames >= 4 and gif.size == (400, 400)
    assert "animation written to spirals.gif" in result.stdout
    wrong = run("demo", "--animate", "x.gif", cwd=tmp_path)
    assert wrong.returncode == 2 and "--model mlp" in wrong.stderr


def test_the_kept_epoch_is_marked_in_both_panels() -> None:
    """Early stopping keeps one epoch's parameters: the curves show which."""
    X, y = make_moons(200, noise=0.3, random_state=0)
    model = MLPClassifier(hidden_layer_sizes=(8,), learning_rate=0.02, early_stopping=True,
                          validation_fraction=0.2, max_iter=60, tol=None,
                          random_state=0).fit(X, y)
    curves = plot.TrainingCurves.from_model(model)
    assert curves.kept_epoch == model.best_epoch_
    assert "validation loss" in curves.series
    ax_loss, ax_accuracy = plot.plot_curves(curves, *plot.new_figure(2)[1])
    for ax in (ax_loss, ax_accuracy):
        assert ax is not None
        marks = [line for line in ax.get_lines() if line.get_label().startswith("kept")]
        assert len(marks) == 1
        assert list(marks[0].get_xdata()) == [model.best_epoch_] * 2



# --- issue 16: curves in one call, like with like; shaded boundaries; hidden units;
# --- confusion matrix; frames where the change is; no clipped labels ----------------------


@pytest.fixture(scope="module")
def stopped(moons: tuple[np.ndarray, np.ndarray]) -> MLPClassifier:
    """Early stopping kept an epoch before the last; a strong L2 term (alpha)."""
    X, y = moons
    return MLPClassifier((8,), learning_rate=0.05, alpha=0.05, early_stopping=True,
                         validation_fraction=0.3, max_iter=80, tol=None,
                         random_state=0).fit(X, y)


def test_plot_curves_takes_a_model(stopped: MLPClassifier) -> None:
    """It returned (None, None) for a model, and raised AttributeError given axes."""
    ax_loss, ax_accuracy = plot.plot_curves(stopped)
    assert ax_loss is not None and ax_accuracy is not None and ax_loss.figure is ax_accuracy.figure
    assert {line.get_label() for line in ax_loss.get_lines()} >= {"training loss",
                                                                  "validation loss"}
    axes = plot.new_figure(2)[1]
    assert plot.plot_curves(stopped, *axes) == tuple(axes)
    assert plot.plot_curves(stopped.history_, *plot.new_figure(2)[1])[0] is not None
    with pytest.raises(TypeError, match="not fitted yet"):
        plot.plot_curves(MLPClassifier())


def test_curves_in_one_call_like_with_like(stopped: MLPClassifier) -> None:
    figure = stopped.plot()
    assert figure is not None and [ax.get_ylabel() for ax in figure.axes] == [
        "loss", "accuracy", "learning rate"]
    assert plot.curves(stopped).axes[0].get_ylabel() == "loss"
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    # The training *data* loss, comparable with the validation loss; not the objective.
    training = list(lines["training loss"].get_ydata())
    assert training == stopped.history_.data_loss != stopped.loss_curve_
    assert list(lines["validation loss"].get_ydata()) == stopped.validation_loss_curve_
    assert stopped.best_epoch_ < stopped.n_iter_
    for ax in figure.axes:
        marks = [line for line in ax.get_lines() if line.get_label().startswith("kept")]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [stopped.best_epoch_] * 2
    assert f"{stopped.n_iter_} epochs in" in figure.get_suptitle()
    assert plot.clipped_texts(figure) == []


def test_the_boundary_is_shaded_by_probability(
    stopped: MLPClassifier, moons: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = moons
    ax = plot.plot_decision_boundary(stopped, X, y, resolution=40)
    (image,) = ax.images
    shown = np.asarray(image.get_array())
    assert shown.shape == (40, 40) and len(np.unique(shown)) > 100  # not two flat colours
    grid = plot.decision_grid(X, 40)[2]
    np.testing.assert_allclose(shown.ravel(), stopped.predict_proba(grid)[:, 1])
    assert [list(c.levels) for c in ax.collections if hasattr(c, "levels")] == [[0.5]]
    assert any(a.get_ylabel() == "P(class 1)" for a in ax.figure.axes)  # the colour bar
    flat = plot.plot_decision_boundary(stopped, X, y, resolution=40, shade="class")
    assert len(np.unique(np.ma.getdata(flat.images[0].get_array()))) == 2
    assert plot.clipped_texts(ax.figure) == []


def test_more_classes_blend_the_class_colour_by_confidence() -> None:
    from handnet.datasets import make_spirals

    X, y = make_spirals(150, n_classes=3, random_state=0)
    model = MLPClassifier((16,), max_iter=60, tol=None, random_state=0,
                          learning_rate=0.02).fit(X, y)
    ax = plot.plot_decision_boundary(model, X, y, resolution=30)
    rgb = np.asarray(ax.images[0].get_array())
    assert rgb.shape == (30, 30, 3) and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100
    sure = plot.confidence_image(np.array([[1.0, 0, 0], [1 / 3, 1 / 3, 1 / 3]]),
                                 plot.class_colors(3))
    np.testing.assert_allclose(sure[0], plot.class_colors(3)[0][:3])
    np.testing.assert_allclose(sure[1], [1.0, 1.0, 1.0])  # no idea: white


def test_what_each_hidden_unit_computes(
    stopped: MLPClassifier, moons: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = moons
    figure = plot.plot_hidden_units(stopped, X, y, resolution=20)
    panels = [ax for ax in figure.axes if ax.images and ax.get_title().startswith("unit")]
    assert len(panels) == 8
    grid = plot.decision_grid(X, 20)[2]
    hidden = np.maximum(grid @ stopped.coefs_[0] + stopped.intercepts_[0], 0.0)  # ReLU
    np.testing.assert_allclose(np.asarray(panels[2].images[0].get_array()).ravel(),
                               hidden[:, 2], atol=1e-12)
    assert plot.clipped_texts(figure) == []
    with pytest.raises(ValueError, match="no hidden layer"):
        plot.plot_hidden_units(LogisticRegression(max_iter=5, tol=None).fit(X, y), X)


def test_confusion_matrix_plot() -> None:
    from handnet.metrics import confusion_matrix as counts

    truth = ["cat", "dog", "dog", "bird", "cat", "dog"]
    guess = ["cat", "dog", "cat", "bird", "dog", "dog"]
    labels = ["bird", "cat", "dog"]
    ax = plot.confusion_matrix(truth, guess, labels)
    cells = [int(text.get_text()) for text in ax.texts]
    assert cells == counts(truth, guess, labels).ravel().tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert ax.get_xlabel() == "predicted class" and "accuracy 0.667" in ax.get_title()
    normalized = plot.confusion_matrix(truth, guess, labels, normalize=True)
    assert normalized.texts[4].get_text() == "1\n50%"
    assert plot.clipped_texts(ax.figure) == []


def test_frames_go_where_the_change_is() -> None:
    epochs = plot.frame_epochs(500, 43)
    assert epochs[0] == 1 and epochs[-1] == 500 and epochs == sorted(set(epochs))
    assert 30 <= len(epochs) <= 43
    # Evenly spaced, 38 of 43 frames showed epochs past 50, where nothing moves any more.
    assert sum(epoch <= 50 for epoch in epochs) > len(epochs) / 2
    assert plot.frame_epochs(3, 40) == [1, 2, 3] and plot.frame_epochs(7, 1) == [7]


def test_animation_frames_shaded_and_unclipped(
    tmp_path: Path, stopped: MLPClassifier, moons: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = moons
    animation = plot.BoundaryAnimation(tmp_path / "a.gif", X, y, classes=[0, 1],
                                       resolution=30, size=3.0)
    animation.add_frame(stopped, "epoch 12345: training accuracy 0.987")
    shown = np.asarray(animation.image.get_array())
    assert shown.shape == (30, 30, 3) and len(np.unique(shown.reshape(-1, 3), axis=0)) > 50
    assert plot.clipped_texts(animation.figure) == []
    animation.close()


def test_a_warm_started_model_is_drawn_whole(moons: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = moons
    model = MLPClassifier((8,), alpha=0.0, max_iter=5, tol=None, random_state=0,
                          warm_start=True, validation_fraction=0.2, early_stopping=True)
    model.fit(X, y).fit(X, y)
    assert len(model.history_.loss) == 5 and len(model.loss_curve_) == 10
    curves = plot.TrainingCurves.from_model(model)
    for name in ("training loss", "validation loss", "validation accuracy"):
        assert curves.series[name][0] == list(range(1, 11)), name
    assert curves.series["training loss"][1] == model.loss_curve_  # alpha=0: the data loss


def test_predicted_vs_true_draws_the_points_the_diagonal_and_r2() -> None:
    truth = np.array([0.0, 1.0, 2.0, 3.0])
    predicted = np.array([0.5, 1.0, 2.0, 2.5])
    ax = plot.predicted_vs_true(truth, predicted)
    points = ax.collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(points), np.c_[truth, predicted])
    r2 = 1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert ax.get_title() == f"predicted vs true (R² {r2:.3f})"
    assert ax.lines[0].get_label() == "y = x"
    assert plot.clipped_texts(ax.figure) == []
