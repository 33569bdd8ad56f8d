"""``handnet playground`` in a real browser: headless Chromium driven by Playwright.

The page is loaded from a real server (``handnet playground`` in a subprocess), spirals
are chosen, two hidden layers added, play pressed until the test accuracy on the page
reaches 0.9; then the numbers on the page are checked against a handnet run with the
same settings in Python, the step panel against the step's arrays, and malformed
messages against the page's error box (while the server keeps serving).

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it when
it runs as root) and ``playwright`` (Python package only: ``playwright install`` is never
run, the system's Chromium is used). Without them the tests are skipped with a loud
reason, except in CI (``CI=true``), where they fail: CI always has a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handnet.playground.sessions import Session
from handnet.playground.settings import parse_settings

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("HANDNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 60_000  # generous: a loaded 2-core machine


def _missing() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install -e '.[test]')"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    message = f"BROWSER TESTS NOT RUN: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " -- CI must have a browser (.ci/run installs chromium as root)")
    print(f"\n*** {message} ***", file=sys.stderr)
    pytest.skip(message)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    _require_browser()
    process = subprocess.Popen(
        [sys.executable, "-m", "handnet", "playground", "--no-browser"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,  # its stderr: pytest's captured output
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("handnet playground: http://"), line
        yield line.split()[2]
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, server_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server_url)
    page.wait_for_function("window.handnetPlayground?.state.firstFrameAt != null")
    yield page
    context.close()
    assert not errors, errors  # no JavaScript error on the page


def _state(page: Any, expression: str) -> Any:
    return page.evaluate(f"window.handnetPlayground.state.{expression}")


def _number(page: Any, cell: str) -> float:
    return float(page.get_attribute(f"#{cell}", "data-value"))


def _boundary_pixels(page: Any) -> Any:
    """Every 10th pixel of the boundary picture, each way (whole images are slow to ship)."""
    data = page.evaluate("""() => { const c = document.getElementById('boundary');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, out = [];
        for (let y = 5; y < c.height; y += 10) for (let x = 5; x < c.width; x += 10)
            out.push(d[4 * (y * c.width + x)], d[4 * (y * c.width + x) + 1]);
        return out; }""")
    return np.asarray(data, dtype=np.uint8)


def test_spirals_learn_and_the_page_shows_handnets_numbers(page: Any, tmp_path: Path) -> None:
    page.select_option("#dataset", "spirals")
    page.wait_for_function("window.handnetPlayground.state.settings.dataset === 'spirals'")
    for layers in (1, 2):
        page.click("#add-layer")
        page.wait_for_function(
            f"window.handnetPlayground.state.settings.hidden.length === {layers}")
    page.wait_for_function("window.handnetPlayground.state.drawn?.step === 0")
    before = _boundary_pixels(page)

    page.click("#play")
    page.wait_for_function("Number(document.getElementById('test-score').dataset.value) >= 0.9")
    page.click("#play")  # pause
    page.wait_for_function("window.handnetPlayground.state.drawn?.playing === false")
    after = _boundary_pixels(page)
    assert np.mean(before != after) > 0.05  # the picture changed

    # The page's numbers are those of handnet run in Python with the same settings.
    settings = parse_settings(_state(page, "settings"))
    assert settings.dataset == "spirals" and settings.hidden == (8, 8)
    steps = int(page.inner_text("#step-count"))
    session = Session(settings)
    while session.steps < steps:
        session.train(steps - session.steps)
    expected = session.scores()
    for name in ("train_loss", "test_loss", "train_score", "test_score"):
        assert _number(page, name.replace("_", "-")) == expected[name], name
    assert _number(page, "test-score") >= 0.9

    # The take-home script reproduces them too.
    with page.expect_download() as download:
        page.click("#download-script")
    script = tmp_path / "run.py"
    download.value.save_as(script)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, check=True)
    assert f"test_score {expected['test_score']!r}" in result.stdout
    with page.expect_download() as download:
        page.click("#download-model")
    download.value.save_as(tmp_path / "model.npz")
    import handnet

    model = handnet.load(tmp_path / "model.npz")
    assert np.array_equal(model.network_.flat_parameters, session.model.network_.flat_parameters)

    # One step: the panel shows that step's arrays (compared with the Python run's).
    page.click("#step")
    page.wait_for_function(
        f"document.getElementById('panel-summary').textContent.startsWith('step {steps + 1} ')")
    panel = session.step_explained()
    rows = page.eval_on_selector_all(
        "#panel tbody tr", "rows => rows.map(r => [r.dataset.name, r.dataset.values])")
    shown = {name: json.loads(values) for name, values in rows}
    for entry in panel["entries"]:
        assert np.allclose(shown[entry["name"]], entry["values"], rtol=0, atol=1e-12), entry["name"]
    assert {"X", "z1", "a1", "z2", "a2", "z3", "dlogits", "dW1", "db3", "ΔW1"} <= set(shown)
    assert "handnet.nn.layers.Dense.forward" in page.inner_text("#panel")


def test_malformed_messages_are_reported_and_the_server_lives_on(page: Any) -> None:
    for text, says in [
        ("{not json", "bad JSON"),
        ('{"type": "configure", "settings": {"learning_rate": NaN}}', "NaN"),
        (json.dumps({"type": "configure", "settings": {"hidden": [10**9]}}), "hidden layer size"),
        (json.dumps({"type": "configure", "settings": {"n_points": -3}}), "n_points"),
        (json.dumps({"type": "configure", "settings": {"optimizer": "os.system"}}),
         "unknown optimizer"),
        (json.dumps({"type": "eval", "code": "alert(1)"}), "unknown message type"),
    ]:
        page.evaluate("text => window.handnetPlayground.sendRaw(text)", text)
        page.wait_for_function(
            "says => { const e = document.getElementById('error');"
            " return !e.hidden && e.textContent.includes(says); }", arg=says)
    # The same tab still trains ...
    page.click("#step")
    page.wait_for_function("window.handnetPlayground.state.drawn?.step === 1")
    # ... and a new tab gets a working session.
    other = page.context.new_page()
    other.goto(page.url)
    other.wait_for_function("window.handnetPlayground?.state.firstFrameAt != null")
    other.close()
