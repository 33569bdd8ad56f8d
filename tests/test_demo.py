"""The seed's experiment end to end: `handnet demo` and the functions behind it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from handnet import demo
from handnet.datasets import TEACHER_BIAS, TEACHER_WEIGHTS

SEEDS = [1, 2, 3, 4, 5]


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_experiment_gd_learns_the_teachers_direction(seed: int) -> None:
    result = demo.run_logistic(optimizer="gd", seed=seed, print_line=demo.quiet)
    assert result.test_accuracy >= 0.97
    assert result.cosine is not None and result.cosine >= 0.99


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_experiment_sgd_learns_the_teachers_direction(seed: int) -> None:
    result = demo.run_logistic(optimizer="sgd", seed=seed, print_line=demo.quiet)
    assert result.test_accuracy >= 0.97
    assert result.cosine is not None and result.cosine >= 0.99


def test_round_labels_only_fix_the_direction_the_norm_keeps_growing() -> None:
    # Separable data: no finite optimum, so more iterations give a longer w.
    short = demo.run_logistic(iterations=1000, seed=1, print_line=demo.quiet)
    long = demo.run_logistic(iterations=5001, seed=1, print_line=demo.quiet)
    assert short.weights is not None and long.weights is not None
    assert np.linalg.norm(long.weights) > 1.5 * np.linalg.norm(short.weights)
    assert np.linalg.norm(long.weights) > 2 * np.linalg.norm(TEACHER_WEIGHTS)


def test_bernoulli_labels_recover_the_teacher_itself() -> None:
    result = demo.run_logistic(
        labels="bernoulli", n_samples=100_000, learning_rate=1.0, iterations=300,
        seed=1, print_line=demo.quiet,
    )
    assert result.weights is not None and result.bias is not None
    np.testing.assert_allclose(result.weights, TEACHER_WEIGHTS, atol=0.05)
    np.testing.assert_allclose(result.bias, [TEACHER_BIAS], atol=0.05)


def test_demo_prints_the_seeds_lines(capsys: pytest.CaptureFixture[str]) -> None:
    demo.run_logistic(seed=3)
    out = capsys.readouterr().out
    progress = [line for line in out.splitlines() if line.startswith("loss after iteration")]
    # iterations 0, 100, ..., 5000: 51 lines, each with a fresh test accuracy
    assert len(progress) == 51
    assert progress[0].startswith("loss after iteration 0:")
    assert progress[-1].startswith("loss after iteration 5000:")
    assert all("test accuracy" in line for line in progress)
    assert "w: [" in out and "b: [" in out and "cosine(learned w, teacher w)" in out


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handnet", "demo", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_cli_demo_same_seed_same_output_and_quiet() -> None:
    first = _run_cli("--seed", "7", "--quiet", "--iterations", "500")
    second = _run_cli("--seed", "7", "--quiet", "--iterations", "500")
    other = _run_cli("--seed", "8", "--quiet", "--iterations", "500")
    assert first.returncode == 0, first.stderr

    def strip_time(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if "time" not in line)

    assert strip_time(first.stdout) == strip_time(second.stdout)
    assert strip_time(first.stdout) != strip_time(other.stdout)
    assert "loss after iteration" not in first.stdout  # --quiet drops the progress lines
    assert "cosine(learned w, teacher w)" in first.stdout


def test_cli_demo_sgd_and_bad_flags() -> None:
    result = _run_cli("--optimizer", "sgd", "--epochs", "3", "--seed", "2")
    assert result.returncode == 0, result.stderr
    assert "SGD (one example per step)" in result.stdout
    assert "loss after iteration 2" in result.stdout
    bad = _run_cli("--learning-rate", "-1")
    assert bad.returncode != 0 and "positive" in bad.stderr
    bad = _run_cli("--optimizer", "adam")
    assert bad.returncode != 0 and "gd or sgd" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("model", ["softmax", "mlp"])
def test_cli_demo_variants(model: str) -> None:
    result = _run_cli("--model", model, "--iterations", "50", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout


def test_softmax_demo_recovers_the_teacher_direction() -> None:
    result = demo.run_softmax(seed=1, print_line=demo.quiet)
    assert result.cosine is not None and result.cosine >= 0.98
    assert result.test_accuracy >= result.extra["teacher_test_accuracy"] - 0.01


def test_mlp_demo_beats_a_linear_model_on_spirals() -> None:
    result = demo.run_mlp(seed=0, print_line=demo.quiet)
    assert result.test_accuracy >= 0.95
    assert result.extra["linear_test_accuracy"] <= 0.6
