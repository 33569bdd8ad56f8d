"""The docs say what the code does: the tutorial runs and prints what it shows, every
function the docs name exists, links and anchors resolve, the committed pictures are there."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Written with this test; the others have their own.
OWN_DOCS = ("math.md", "tutorial.md", "cli.md", "cnn.md")


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def expected_output(block: str) -> list[str]:
    """The ``# ...`` comment lines right after each top-level ``print(...)`` statement."""
    expected: list[str] = []
    after_print = False
    for line in block.splitlines():
        if line.startswith("print(") or (after_print and line.startswith(" ")):
            after_print = True  # a print call, possibly continued on indented lines
            continue
        if after_print and line.startswith("# "):
            expected.append(line[2:])
            continue
        after_print = False
    return expected


def test_tutorial_runs_and_prints_what_it_says() -> None:
    namespace: dict[str, object] = {}
    blocks = python_blocks(DOCS / "tutorial.md")
    assert len(blocks) >= 8
    checked = 0
    for number, block in enumerate(blocks):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block, f"tutorial.md block {number}", "exec"), namespace)
        expected = expected_output(block)
        if expected:
            assert output.getvalue().splitlines() == expected, f"block {number}"
            checked += 1
    assert checked >= 8


def _references(text: str) -> set[str]:
    """Dotted names ``handnet.module.name`` quoted in backticks."""
    found = set()
    for quoted in re.findall(r"`([^`\n]+)`", text):
        for name in re.findall(r"\bhandnet(?:\.[A-Za-z_][A-Za-z0-9_]*)+", quoted):
            found.add(name)
    return found


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


@pytest.mark.parametrize("name", OWN_DOCS)
def test_every_function_the_docs_name_exists(name: str) -> None:
    references = _references((DOCS / name).read_text(encoding="utf-8"))
    assert references, f"{name} names no handnet function"
    missing = []
    for dotted in sorted(references):
        try:
            _resolve(dotted)
        except (ImportError, AttributeError):
            missing.append(dotted)
    assert not missing, f"{name} names what does not exist: {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("name", OWN_DOCS)
def test_links_and_anchors_resolve(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, anchor = target.partition("#")
        path = (DOCS / file_part) if file_part else DOCS / name
        assert path.exists(), f"{name}: broken link {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{name}: no anchor {target}"


def test_math_covers_every_topic_next_to_its_code() -> None:
    text = (DOCS / "math.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    topics = {
        "gradient descent and sgd": "handnet.optim.optimizers.SGD",
        "binary cross-entropy": "handnet.nn.losses.binary_cross_entropy",
        "softmax cross-entropy": "handnet.nn.losses.softmax_cross_entropy",
        "dense layer": "handnet.nn.layers.Dense.backward",
        "each activation": "handnet.nn.activations.relu_backward",
        "l2 penalty": "handnet.nn.penalties.add_l2",
        "dropout": "handnet.nn.layers.Dropout.backward",
        "momentum": "handnet.optim.optimizers.Momentum",
        "adam": "handnet.optim.optimizers.Adam",
        "l-bfgs": "handnet.optim.optimizers.LBFGS",
    }
    for topic, code in topics.items():
        section = next((s for s in sections if topic in s.splitlines()[0].lower()), None)
        assert section is not None, f"no section on {topic}"
        assert f"`{code}" in section, f"the {topic} section does not name {code}"


def test_committed_figures_are_pngs_of_the_expected_size() -> None:
    sizes = {"seed.png": (1500, 400), "spirals.png": (1000, 400)}
    for name, size in sizes.items():
        data = (DOCS / "images" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == size


def test_cli_doc_holds_the_csv_example() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    block = text.split("<!-- csv-example-start -->", 1)[1].split("<!-- csv-example-end -->", 1)[0]
    assert "handnet train data.csv --target label" in block


def test_the_reference_tables_are_generated_from_the_registries() -> None:
    from handnet import catalog

    committed = catalog.DOC.read_text(encoding="utf-8")
    assert committed == catalog.markdown(), (
        "docs/reference.md is stale: run python -m handnet.catalog"
    )


def test_the_convolution_by_hand_example_agrees_with_the_layers() -> None:
    """examples/conv_by_hand.py: loops over the formulas against Conv2D and BatchNorm."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "examples" / "conv_by_hand.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 7
    assert all(line.endswith(": True") for line in lines), result.stdout


def test_an_installed_catalog_prints_the_tables_instead_of_writing_outside_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from handnet import catalog

    monkeypatch.setattr(catalog, "DOC", tmp_path / "site-packages" / "docs" / "reference.md")
    assert catalog.main([]) == 0
    assert capsys.readouterr().out.startswith("# Reference: every registered block")
    assert not (tmp_path / "site-packages").exists()


def test_the_own_csv_walk_through_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/cli.md "Your own CSV": its files are written, its Python runs, and each ``handnet``
    command exits 0, or fails with exactly the error line shown under it (``# handnet ...``)."""
    import shlex

    from handnet.cli import main

    pytest.importorskip("sklearn")  # the regression example writes scikit-learn's diabetes data
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    chapter = text.split("<!-- own-csv-start -->", 1)[1].split("<!-- own-csv-end -->", 1)[0]
    monkeypatch.chdir(tmp_path)
    for name, content in re.findall(r"<!-- file: (\S+) -->\n```text\n(.*?)```", chapter, re.S):
        Path(name).write_text(content, encoding="utf-8")
    blocks = re.findall(r"```(bash|python)\n(.*?)```", chapter, re.S)
    commands = 0
    for kind, block in blocks:
        if kind == "python":
            exec(compile(block, "cli.md own CSV", "exec"), {})
            continue
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("handnet "):
                continue
            expected = lines[i + 1][2:] if i + 1 < len(lines) and lines[i + 1].startswith(
                "# handnet ") else None
            code = main(shlex.split(line)[1:])
            err = capsys.readouterr().err
            commands += 1
            if expected is None:
                assert code == 0, (line, err)
            else:
                assert code != 0 and expected in err.splitlines(), (line, err)
    assert commands >= 9
    assert Path("plants.npz").exists() and Path("predictions.csv").exists()
