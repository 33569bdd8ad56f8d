"""Take the pictures of ``handnet playground`` that the README and docs/playground.md show.

    python scripts/playground_screenshots.py      # writes docs/images/playground*.png

Starts ``handnet playground`` (a subprocess), drives the page in headless Chromium
(Playwright with Debian's ``/usr/bin/chromium``; ``playwright install`` is not needed),
trains an 8-8 tanh network on the spirals with the extra features ``x1^2``, ``x2^2``
until the test accuracy reaches 0.95, pauses, takes one explained step, and saves:

* ``playground.png``: the whole page (settings, network, output, step panel);
* ``playground_views.png``: the network and the output, larger;
* ``playground_step_panel.png``: the step panel.

The run is seeded, but where it pauses depends on the machine's speed, so the pictures
differ a little from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("HANDNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SETTINGS = {"dataset": "spirals", "hidden": [8, 8], "features": ["x1", "x2", "x1^2", "x2^2"],
            "activation": "tanh", "optimizer": "adam", "learning_rate": 0.03, "batch_size": 10}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.output.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen([sys.executable, "-m", "handnet", "playground", "--no-browser"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[2]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.wait_for_function("window.handnetPlayground?.state.firstFrameAt != null")
            page.evaluate("text => window.handnetPlayground.sendRaw(text)",
                          json.dumps({"type": "configure", "settings": SETTINGS}))
            page.wait_for_function(
                "window.handnetPlayground.state.ready?.settings.hidden.length === 2")
            page.click("#play")
            page.wait_for_function(
                "Number(document.getElementById('test-score').dataset.value) >= 0.95")
            page.click("#play")
            page.wait_for_function("window.handnetPlayground.state.drawn?.playing === false")
            page.click("#step")
            page.wait_for_function(
                "document.querySelectorAll('#panel tbody tr').length > 10 && "
                "!window.handnetPlayground.state.drawn.playing")
            page.wait_for_timeout(300)  # the last frame drawn
            written = [args.output / name for name in
                       ("playground.png", "playground_views.png", "playground_step_panel.png")]
            page.screenshot(path=written[0], full_page=True)
            page.locator("main").screenshot(path=written[1])
            page.locator("#panel-view").screenshot(path=written[2])
            browser.close()
    finally:
        server.terminate()
        server.communicate(timeout=30)
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
