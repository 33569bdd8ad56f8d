"""The CNN accuracy benchmark runs (``--quick``) and prints its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "cnn_accuracy.py"


def test_quick_run_prints_and_writes_the_table(tmp_path: Path) -> None:
    output = tmp_path / "cnn.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 4
    assert sum("digits 8x8" in row for row in rows) == 2
    assert sum("pattern anywhere" in row for row in rows) == 2
    for row in rows:
        mean = float(row.split("|")[4].split("±")[0])
        assert 0.0 <= mean <= 1.0
    assert output.read_text(encoding="utf-8") == result.stdout.rstrip("\n") + "\n"


def test_the_patterns_sit_anywhere_and_carry_their_class() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from cnn_accuracy import PATTERNS, make_patterns
    finally:
        sys.path.remove(str(SCRIPT.parent))
    images, labels = make_patterns(300, noise=0.0, rng=np.random.default_rng(0))
    assert images.shape == (300, 1, 28, 28)
    stamps = list(PATTERNS.values())
    corners = set()
    for image, label in zip(images, labels, strict=True):
        rows, cols = np.nonzero(image[0])
        top, left = rows.min(), cols.min()
        corners.add((top, left))
        np.testing.assert_array_equal(image[0, top : top + 5, left : left + 5], stamps[label])
    assert len(corners) > 100  # placed all over the image, not in one spot
