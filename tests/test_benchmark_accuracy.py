"""The accuracy benchmark runs (``--quick``) and prints its markdown table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"


def test_quick_run_prints_and_writes_the_table(tmp_path: Path) -> None:
    output = tmp_path / "accuracy.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert table[0].startswith("| data set |") and "scikit-learn accuracy" in table[0]
    rows = table[2:]
    # Four data sets, three models each (logistic/softmax regression, an MLP, and the
    # handnet.sklearn drop-in MLP against scikit-learn's with the same arguments).
    assert len(rows) == 12
    for name in ("iris", "wine", "breast cancer", "digits"):
        assert sum(row.startswith(f"| {name} |") for row in rows) == 3
        assert sum(row.startswith(f"| {name} |") and "drop-in" in row for row in rows) == 1
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        handnet_mean = float(cells[4].split("±")[0])
        sklearn_mean = float(cells[5].split("±")[0])
        assert 0.0 <= handnet_mean <= 1.0 and 0.0 <= sklearn_mean <= 1.0
        if "regression" in cells[3]:
            # Same objective, optimised to a tight tolerance: the same accuracy.
            assert abs(handnet_mean - sklearn_mean) < 0.02, row
        if "drop-in" in cells[3]:
            # Same arguments, same initial weights and batches: within one point,
            # nearly every test prediction the same.
            assert abs(handnet_mean - sklearn_mean) <= 0.01, row
            assert float(cells[7]) >= 0.99, row
    assert output.read_text(encoding="utf-8") == result.stdout.rstrip("\n") + "\n"
    assert "python benchmarks/accuracy.py --quick" in result.stdout
