"""The scaling benchmark runs (``--quick``) and prints every measurement and target."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_scaling_run_prints_every_row_and_target() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--quick"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout
    for row in ("floor: one pass over X", "in memory, plain", "in memory, blocked + threads",
                "memmap (.npy)", "SGD epoch (batch 256), in memory",
                "SGD epoch (batch 256), streamed from the memmap"):
        assert row in text, row
    assert "blocked GD iteration / floor" in text
    assert "streamed SGD epoch / in-memory epoch" in text
    if importlib.util.find_spec("distributed") is not None:
        assert "2-worker LocalCluster" in text
        assert "cluster GD iteration / blocked" in text
