"""``model.summary()``, the Jupyter view, and ``help()`` listing every choice and attribute."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

from handnet import MLPClassifier, MLPRegressor, NeuralNetClassifier
from handnet.datasets import make_moons
from handnet.exceptions import NotFittedError
from handnet.models.neural_net import small_cnn
from handnet.models.summary import summarize
from handnet.nn.activations import hidden_activations
from handnet.nn.initializers import INITIALIZERS
from handnet.optim.optimizers import OPTIMIZERS
from handnet.optim.schedules import SCHEDULES

X, Y = make_moons(80, noise=0.2, random_state=0)


@pytest.fixture(scope="module")
def mlp() -> MLPClassifier:
    return MLPClassifier((8, 4), max_iter=5, tol=None, random_state=0,
                         early_stopping=True).fit(X, Y)


def test_the_summary_of_an_mlp(mlp: MLPClassifier) -> None:
    summary = mlp.summary()
    assert [layer.kind for layer in summary.layers] == [
        "Dense", "Activation(relu)", "Dense", "Activation(relu)", "Dense"]
    assert [layer.output_shape for layer in summary.layers] == [(8,), (8,), (4,), (4,), (1,)]
    assert [layer.n_parameters for layer in summary.layers] == [24, 0, 36, 0, 5]
    assert summary.n_parameters == mlp.network_.n_parameters == 65
    text = str(summary)
    assert text.startswith("MLPClassifier: 2 features -> 2 classes")
    assert re.search(r"dense_2\s+Dense\s+\(None, 4\)\s+36$", text, re.M)
    assert "Total parameters: 65 (520 B, float64)" in text
    assert repr(summary) == text
    page = summary._repr_html_()
    assert page.count("<tr>") == 1 + 5 and "<th>output shape</th>" in page
    assert summary.to_rows()[0] == {"layer": "dense_1", "type": "Dense", "output shape": (8,),
                                    "parameters": 24, "non-trainable": 0}


def test_a_convolutional_network_and_its_plan() -> None:
    images = np.random.default_rng(0).normal(size=(40, 1, 8, 8))
    labels = np.arange(40) % 3
    model = NeuralNetClassifier(layers=small_cnn((4,), hidden=8), input_shape=(1, 8, 8),
                                max_iter=1, tol=None, random_state=0)
    planned = model.summary()  # before fit: the network fit will build
    assert planned.planned and planned.layers[-1].output_shape is None
    assert "?" in str(planned) and "sized from the targets" in str(planned)
    model.fit(images, labels)
    fitted = model.summary()
    shapes = [layer.output_shape for layer in fitted.layers]
    assert shapes[:3] == [(1, 8, 8), (4, 8, 8), (4, 8, 8)] and shapes[-1] == (3,)
    batchnorm = fitted.layers[2]
    assert batchnorm.kind == "BatchNorm" and batchnorm.n_parameters == 8
    assert batchnorm.n_buffers == 8  # running mean and variance: not trained
    assert fitted.n_parameters == model.network_.n_parameters
    for plan, built in zip(planned.layers[:-1], fitted.layers[:-1], strict=True):
        assert (plan.name, plan.output_shape, plan.n_parameters) == (
            built.name, built.output_shape, built.n_parameters)
    with pytest.raises(ValueError, match="layer"):
        NeuralNetClassifier(layers=small_cnn(), input_shape=(1, 1, 1)).summary()


def test_before_fit_a_clear_error() -> None:
    for model in (MLPClassifier(), MLPRegressor(), NeuralNetClassifier()):
        with pytest.raises(NotFittedError, match=r"not fitted yet.*Call 'fit' first"):
            model.summary()
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    with pytest.raises(sklearn_exceptions.NotFittedError):
        MLPClassifier().summary()


def test_summarize_any_network() -> None:
    from handnet import Activation, Dense, Sequential

    network = Sequential([Dense(3, 5, random_state=0), Activation("tanh"), Dense(5, 2)])
    assert summarize(network, (3,)).n_parameters == network.n_parameters == 32


def test_the_jupyter_view(mlp: MLPClassifier) -> None:
    page = mlp._repr_html_()
    assert "<b>MLPClassifier</b> (fitted)" in page
    assert "<td>hidden_layer_sizes</td><td><b>(8, 4)</b></td>" in page  # changed: bold
    assert "<td>activation</td><td>&#x27;relu&#x27;</td>" in page  # default: plain
    assert mlp.summary().to_html() in page
    fresh = MLPClassifier()._repr_html_()
    assert "(not fitted)" in fresh and "not fitted: the network is built by" in fresh
    assert "dense_1" in NeuralNetClassifier(input_shape=(2,))._repr_html_()


def test_scikit_learns_own_display_still_works(mlp: MLPClassifier) -> None:
    """A handnet model inside a Pipeline: scikit-learn draws its diagram, unbothered."""
    pytest.importorskip("sklearn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import estimator_html_repr

    pipeline = make_pipeline(StandardScaler(), MLPClassifier((8, 4), max_iter=3, tol=None))
    for _ in range(2):  # before and after fit
        page = estimator_html_repr(pipeline)
        assert "StandardScaler" in page and "MLPClassifier(" in page
        shown = pipeline._repr_html_()  # scikit-learn's view of the pipeline, not handnet's
        assert "sk-top-container" in shown and "handnet-estimator" not in shown
        pipeline.fit(X, Y)
    assert "handnet-summary" in pipeline[-1]._repr_html_()  # the step alone: handnet's


@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor])
def test_help_lists_every_choice_and_fitted_attribute(estimator: type) -> None:
    doc = estimator.__doc__
    assert doc is not None
    names = [*hidden_activations(), *OPTIMIZERS, "lbfgs", *SCHEDULES, *INITIALIZERS]
    missing = [name for name in names if f'``"{name}"``' not in doc]
    assert not missing, f"not in help({estimator.__name__}): {missing}"
    for parameter in estimator().get_params():
        assert re.search(rf"^    {parameter} : ", doc, re.M), parameter
    target = Y if estimator is MLPClassifier else X[:, 0]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b"])
    fitted = estimator((4,), max_iter=3, tol=None, random_state=0, early_stopping=True)
    fitted.fit(frame, target)
    attributes = {name for name in vars(fitted) if name.endswith("_") and not name.startswith("_")}
    attributes |= {"coefs_", "intercepts_"}
    assert {"loss_curve_", "n_iter_", "validation_scores_", "history_", "best_loss_",
            "t_"} <= attributes
    undocumented = sorted(name for name in attributes if not re.search(
        rf"^    {name} : ", doc, re.M))
    assert not undocumented, f"not in help({estimator.__name__}): {undocumented}"
    assert "Examples\n    --------" in doc and "model.history_" in doc


def test_the_notebook_page_runs_and_prints_what_it_says() -> None:
    """docs/notebook.md: every block runs; each print is followed by its output."""
    pytest.importorskip("matplotlib")
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "notebook.md").read_text("utf-8")
    namespace: dict[str, object] = {}
    checked = 0
    for number, block in enumerate(re.findall(r"```python\n(.*?)```", page, re.S)):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block, f"notebook.md block {number}", "exec"), namespace)
        lines = block.splitlines()
        expected = [line[2:] for i, line in enumerate(lines) if line.startswith("# ") and any(
            earlier.startswith("print(") for earlier in lines[:i])]
        if expected:
            assert output.getvalue().splitlines() == expected, f"block {number}"
            checked += 1
    assert checked == 2
