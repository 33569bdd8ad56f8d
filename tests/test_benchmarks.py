"""The benchmark suite runs (``--quick``), prints its ratios and writes its markdown report."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run.py"


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], str]:
    """One ``--quick`` run of every case, shared by the tests below."""
    output = tmp_path_factory.mktemp("benchmarks") / "b.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, output.read_text(encoding="utf-8")


def test_quick_run_prints_the_ratios(
    quick_run: tuple[subprocess.CompletedProcess[str], str],
) -> None:
    result, _ = quick_run
    ratios = [line for line in result.stdout.splitlines() if line.startswith("ratio ")]
    names = " ".join(ratios)
    for expected in ("seed handnet/plain loop", "GD iteration/memory floor", "handnet/floor"):
        assert expected in names
    if _installed("sklearn"):
        assert "time-to-loss/sklearn" in names
    if _installed("torch"):
        assert "handnet/torch" in names
    else:
        assert "PyTorch is not installed" in result.stdout
    for line in ratios:
        value = line.split(": ", 1)[1].split(" x", 1)[0]
        assert value == "n/a" or float(value) >= 0.0, line
    assert "== summary ==" in result.stdout


def test_quick_run_writes_the_markdown_report(
    quick_run: tuple[subprocess.CompletedProcess[str], str],
) -> None:
    _, report = quick_run
    assert report.startswith("# Benchmarks\n")
    assert "`python benchmarks/run.py --quick --output " in report  # the exact command line
    for section in (
        "## Machine",
        "## Targets (issues 7 and 18)",
        "## Seed experiment",
        "## MLP",
        "## Memory",
    ):
        assert section in report
    assert "| CPU |" in report and "| numpy |" in report and "OpenBLAS kernel" in report
    if _installed("numba"):  # the run's own `handnet compile`, used by every case
        assert "| handnet's compiled kernels | built by `handnet compile` in" in report
    mlp = report.split("## MLP", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in mlp.splitlines() if line.startswith("| architecture"))
    assert header == "| architecture | run | median epoch | best epoch | x floor | x torch |"
    rows = [line for line in mlp.splitlines() if line.startswith("| 784-")]
    assert any("handnet" in row for row in rows)
    assert any("PyTorch" in row for row in rows) == _installed("torch")
    assert any("scikit-learn" in row for row in rows) == _installed("sklearn")


def test_unknown_case_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--cases", "seed,nope"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "unknown case" in result.stderr


def test_the_tree_comparison_times_a_workload_with_the_tree_it_is_given() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import trees
    finally:
        sys.path.remove(str(ROOT))
    seconds = trees.time_workload(str(ROOT / "src"), "seed GD, 5001 iterations, 1000 x 4", 1)
    assert 0.0 < seconds < 60.0
    with pytest.raises(ValueError, match="holds no handnet package"):
        trees.time_workload(str(ROOT / "no-such-tree"), "seed GD, 5001 iterations, 1000 x 4", 1)
