"""``history_``: what a fit records per epoch, named so that like is compared with like."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

import handnet
from handnet.datasets import make_moons
from handnet.metrics import log_loss
from handnet.models import LogisticRegression, MLPClassifier, MLPRegressor
from handnet.nn.penalties import l2_penalty
from handnet.training import History

X, Y = make_moons(120, noise=0.25, random_state=3)


def _gd(max_iter: int, alpha: float = 0.05, **extra: object) -> MLPClassifier:
    settings: dict[str, object] = dict(
        hidden_layer_sizes=(6,), optimizer="gd", learning_rate=0.1, batch_size=None,
        alpha=alpha, max_iter=max_iter, tol=None, random_state=0,
    )
    settings.update(extra)
    return MLPClassifier(**settings).fit(X, Y)  # type: ignore[arg-type]


def test_every_series_has_one_entry_per_epoch() -> None:
    model = MLPClassifier((6,), max_iter=12, tol=None, random_state=0, early_stopping=True,
                          schedule="exponential", learning_rate=0.01).fit(X, Y)
    record = model.history_.to_dict()
    assert list(record) == list(History.KEYS)
    assert {len(values) for values in record.values()} == {12}
    assert record["epoch"] == [float(i) for i in range(1, 13)]
    assert record["loss"] == model.loss_curve_
    assert record["validation_score"] == model.validation_scores_
    assert record["validation_loss"] == model.validation_loss_curve_
    rates = record["learning_rate"]
    assert rates[0] == 0.01 and all(b < a for a, b in itertools.pairwise(rates))
    times = record["time"]
    assert times[0] >= 0 and all(b >= a for a, b in itertools.pairwise(times))
    assert model.history_.best_epoch == model.best_epoch_


def test_the_data_loss_is_the_objective_without_the_l2_term() -> None:
    """Full batch: epoch k's loss is taken at the parameters epoch k-1 left."""
    before, after = _gd(4), _gd(5)
    data_loss = after.history_.data_loss[4]
    assert data_loss == pytest.approx(
        log_loss(Y, before.predict_log_proba(X), before.classes_), rel=1e-10
    )
    penalty = l2_penalty(before.network_.weights, 0.05)
    assert after.history_.loss[4] - data_loss == pytest.approx(penalty, rel=1e-9)
    assert penalty > 1e-3  # a real gap: the objective is not the data loss
    without = _gd(5, alpha=0.0)
    assert without.history_.data_loss == without.history_.loss


@pytest.mark.parametrize("settings", [
    {"batch_size": 16, "optimizer": "adam", "learning_rate": 0.01},
    {"batch_size": None, "optimizer": "lbfgs"},
])
def test_minibatch_and_lbfgs_record_the_data_loss(settings: dict[str, object]) -> None:
    model = MLPClassifier((6,), alpha=0.05, max_iter=8, tol=None, random_state=0,
                          **settings).fit(X, Y)  # type: ignore[arg-type]
    history = model.history_
    gaps = np.subtract(history.loss, history.data_loss)
    assert len(gaps) == model.n_iter_ and np.all(gaps > 0)
    if settings["optimizer"] == "lbfgs":  # the last iterate is the model: exact
        assert gaps[-1] == pytest.approx(l2_penalty(model.network_.weights, 0.05), rel=1e-9)


def test_the_seed_kernels_record_it_too() -> None:
    """The seed's lean kernels (one sigmoid unit, plain SGD) take their steps elsewhere."""
    model = LogisticRegression(optimizer="sgd", learning_rate=0.1, batch_size=None,
                               alpha=0.1, max_iter=3, tol=None, init="normal",
                               random_state=0).fit(X, Y)
    assert model._trainer._seed_kernel_applies()
    gaps = np.subtract(model.history_.loss, model.history_.data_loss)
    assert np.all(gaps > 0)


def test_a_regressor_records_r2() -> None:
    target = X[:, 0] - X[:, 1]
    model = MLPRegressor((6,), max_iter=5, tol=None, random_state=0, learning_rate=0.01,
                         early_stopping=True).fit(X, target)
    scores = model.history_.to_dict()["validation_score"]
    assert scores == model.validation_scores_ and len(scores) == 5


def test_the_history_is_saved_in_model_files(tmp_path: Path) -> None:
    model = _gd(6, early_stopping=True)
    path = tmp_path / "model.npz"
    handnet.save(model, path)
    loaded = handnet.load(path)
    assert loaded.history_ == model.history_  # time is not compared by ==
    assert loaded.history_.data_loss == model.history_.data_loss
    assert loaded.history_.time == model.history_.time


def test_a_state_without_the_new_series_still_loads() -> None:
    """Files written before data_loss and time were recorded: NaN in to_dict."""
    model = _gd(3)
    state = model._trainer.state_dict()
    del state["history"]["data_loss"], state["history"]["time"]
    model._trainer.load_state_dict(state)
    record = model._trainer.history.to_dict()
    assert all(math.isnan(v) for v in record["data_loss"] + record["time"])
    model.partial_fit(X, Y)  # the same run goes on: its new epoch has them
    record = model.history_.to_dict()
    assert len(record["data_loss"]) == 4 and all(math.isnan(v) for v in record["data_loss"][:3])
    assert math.isfinite(record["data_loss"][3]) and math.isfinite(record["time"][3])


def test_partial_fit_continues_the_clock() -> None:
    model = MLPClassifier((6,), random_state=0)
    for _ in range(3):
        model.partial_fit(X, Y, classes=[0, 1])
    times = model.history_.time
    assert len(times) == 3 and times[0] <= times[1] <= times[2]


def test_verbose_names_each_loss(capsys: pytest.CaptureFixture[str]) -> None:
    _gd(2, verbose=True, early_stopping=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"epoch 2: training loss [\d.]+ \(objective with the L2 term [\d.]+\), "
        r"validation loss [\d.]+, validation score [\d.]+", lines[1]
    ), lines[1]
    _gd(1, alpha=0.0, verbose=True)
    assert re.fullmatch(r"epoch 1: training loss [\d.]+", capsys.readouterr().out.strip())


def test_info_names_the_objective_and_the_data_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from handnet.cli import main

    path = tmp_path / "model.npz"
    handnet.save(_gd(4), path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"objective \(loss \+ penalty\): first [\d.]+", out)
    assert re.search(r"data loss \(no penalty, like the validation loss\): last [\d.]+", out)
    handnet.save(_gd(4, alpha=0.0), path)
    assert main(["info", str(path)]) == 0
    assert "data loss" not in capsys.readouterr().out
