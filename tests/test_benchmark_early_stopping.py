"""The early-stopping benchmark runs (``--quick``), prints its tables, and its rules are right."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("sklearn")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "early_stopping.py"


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip("|").split("|")]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """The benchmark script as a module (for its offline stopping rules)."""
    spec = importlib.util.spec_from_file_location("benchmark_early_stopping", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_quick_run_prints_and_writes_the_tables(tmp_path: Path) -> None:
    output = tmp_path / "early_stopping.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The script exits non-zero when its offline new rule disagrees with a real fit.
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert table[0].startswith("| data set |") and "kept epoch" in table[0]
    rows = [line for line in table if line.startswith(("| iris |", "| moons |"))]
    results = [row for row in rows if len(_cells(row)) == 10]
    checks = [row for row in rows if len(_cells(row)) == 4]
    # Two data sets, two configurations, three rules (old, new, none).
    assert len(results) == 12 and len(checks) == 2
    for row in results:
        cells = _cells(row)
        assert cells[2] in ("MLPClassifier defaults", "handnet train defaults"), row
        assert cells[3] in ("old", "new", "none"), row
        stop, kept = (int(cells[i].split()[0]) for i in (4, 5))
        assert 1 <= kept <= stop, row
        assert 0.0 <= float(cells[7]) <= 1.0 and 0.0 <= float(cells[8]) <= 1.0, row
        assert float(cells[6]) > 0 and float(cells[9]) > 0, row
    for row in checks:
        # The offline new rule gives the real fit's n_iter_, best_epoch_ and parameters.
        for cell in _cells(row)[1:]:
            agreed, total = cell.split(" of ")
            assert agreed == total, row
    assert "python benchmarks/early_stopping.py --quick" in result.stdout
    assert output.read_text(encoding="utf-8") == result.stdout.rstrip("\n") + "\n"


def test_old_rule_keeps_the_earliest_best_accuracy(script: ModuleType) -> None:
    # The accuracy reaches its top at epoch 3 and then only ties it: the old rule
    # stops n_iter_no_change epochs later and keeps epoch 3.
    scores = [0.5, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0]
    assert script.old_rule(scores, 1e-4, 3) == (6, 3)
    assert script.old_rule(scores, None, 3) == (9, 9)  # tol=None: every epoch runs
    # A rise smaller than tol does not reset the counter, but is kept.
    assert script.old_rule([0.5, 0.6, 0.60001, 0.6, 0.6], 1e-3, 3) == (5, 3)


def test_new_rule_keeps_the_lowest_validation_loss(script: ModuleType) -> None:
    losses = [1.0, 0.5, 0.4, 0.45, 0.41, 0.39, 0.5, 0.6, 0.7, 0.8]
    # 0.39 is an improvement of 0.01 >= tol over 0.4: the counter restarts at epoch 6.
    assert script.new_rule(losses, 1e-4, 3) == (9, 6)
    # With a tol of 0.05 it is not: the stop comes three epochs after epoch 3, but the
    # lowest loss up to the stop (epoch 6) is still the one kept, as the trainer does.
    assert script.new_rule(losses, 0.05, 3) == (6, 6)
    assert script.new_rule(losses, None, 3) == (10, 6)
    assert script.new_rule([0.5, 0.5, 0.5], None, 1) == (3, 1)  # the earliest of equal ones
