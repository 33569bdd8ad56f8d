"""docs/scaling.md runs and prints what it shows; the names it quotes exist."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from tests.test_docs import _references, _resolve, python_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"


def expected_output(block: str) -> list[str]:
    """The ``# ...`` lines right after each ``print(...)`` call, indented or not.

    (tests/test_docs.py reads top-level prints only; the cluster example prints
    inside its ``if __name__ == "__main__":`` guard.)
    """
    expected: list[str] = []
    in_print = False
    for line in block.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("print("):
            in_print = True
            continue
        if in_print and line.startswith("# "):
            expected.append(line[2:])
            continue
        if in_print and line.startswith(" ") and not stripped.startswith("#"):
            continue  # the print call's continuation lines
        in_print = False
    return expected


def test_the_three_ways_run_and_print_what_they_show() -> None:
    pytest.importorskip("distributed")
    blocks = python_blocks(DOC)
    assert len(blocks) == 3  # in memory, from disk, on a cluster
    # "__main__": the cluster example guards its LocalCluster as a script must.
    namespace: dict[str, object] = {"__name__": "__main__"}
    checked = 0
    for number, block in enumerate(blocks):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block, f"scaling.md block {number}", "exec"), namespace)
        expected = expected_output(block)
        assert expected, f"block {number} shows no output"
        assert output.getvalue().splitlines() == expected, f"block {number}"
        checked += len(expected)
    assert checked == 5


def test_every_name_the_doc_quotes_exists() -> None:
    references = _references(DOC.read_text(encoding="utf-8"))
    assert len(references) >= 8
    missing = []
    for dotted in sorted(references):
        try:
            _resolve(dotted)
        except (ImportError, AttributeError):
            missing.append(dotted)
    assert not missing, missing


def test_the_doc_names_its_test() -> None:
    assert re.search(r"tests/test_docs_scaling\.py", DOC.read_text(encoding="utf-8"))
