"""``handnet playground`` under load: server steps per second, page frames per second, load time.

Starts ``handnet playground`` (a subprocess), loads the page in headless Chromium
(Playwright driving Debian's ``/usr/bin/chromium``), sets up the issue's case (two-arm
spirals, an 8-8 tanh network, Adam, batch size 10), presses play and watches for
``--seconds``:

* **server steps/s**: training steps the page's step counter advanced, per second of
  wall time (the goal: at least 1,000);
* **page frames/s**: frames the page drew (each one a new boundary, unit pictures,
  weights, numbers and curves), per second (the goal: at least 10);
* **load time**: from navigation to the first frame drawn, and to ``DOMContentLoaded``.

The server trains in slices and sends a frame only when the page has drawn the last
one, so the two rates are independent: a slow page gets fewer frames, not fewer steps.
The machine's load average (``os.getloadavg``) is printed with the figures.

Run: python benchmarks/playground.py [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("HANDNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SETTINGS = {"dataset": "spirals", "hidden": [8, 8], "activation": "tanh", "optimizer": "adam",
            "learning_rate": 0.03, "batch_size": 10, "n_points": 400}


def measure(url: str, seconds: float, browser: object) -> dict[str, float]:
    """One page: its load time, then steps/s and frames/s while it plays."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_function("window.handnetPlayground?.state.firstFrameAt != null")
    load = page.evaluate("window.handnetPlayground.state.firstFrameAt") / 1000
    dom = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    page.evaluate("text => window.handnetPlayground.sendRaw(text)",
                  json.dumps({"type": "configure", "settings": SETTINGS}))
    page.wait_for_function("window.handnetPlayground.state.ready?.settings.dataset === 'spirals'")
    page.click("#play")
    page.wait_for_function("window.handnetPlayground.state.drawn?.playing === true")
    time.sleep(1.0)  # past the first slices
    read = "[window.handnetPlayground.state.drawn.step, window.handnetPlayground.state.frameCount]"
    steps0, frames0 = page.evaluate(read)
    start = time.perf_counter()
    time.sleep(seconds)
    steps1, frames1 = page.evaluate(read)
    elapsed = time.perf_counter() - start
    accuracy = float(page.get_attribute("#test-score", "data-value"))
    page.click("#play")
    page.close()
    return {"steps_per_second": (steps1 - steps0) / elapsed,
            "frames_per_second": (frames1 - frames0) / elapsed,
            "load_seconds": load, "dom_seconds": dom / 1000, "test_accuracy": accuracy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="playing time per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    server = subprocess.Popen([sys.executable, "-m", "handnet", "playground", "--no-browser"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[2]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            runs = [measure(url, args.seconds, browser) for _ in range(args.repeats)]
            browser.close()
    finally:
        server.terminate()
        server.communicate(timeout=30)
    load = os.getloadavg()
    print(f"handnet playground: spirals, 8-8 tanh, Adam, batch 10; {args.repeats} x "
          f"{args.seconds:g} s of play (medians); load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} on {os.cpu_count()} CPUs")
    rows = [("server steps/s", "steps_per_second", ">= 1000", "{:,.0f}"),
            ("page frames/s", "frames_per_second", ">= 10", "{:.1f}"),
            ("load to first frame (s)", "load_seconds", "", "{:.2f}"),
            ("load to DOMContentLoaded (s)", "dom_seconds", "", "{:.2f}"),
            ("test accuracy at the end", "test_accuracy", "", "{:.3f}")]
    for label, key, goal, form in rows:
        values = [run[key] for run in runs]
        shown = ", ".join(form.format(v) for v in values)
        print(f"  {label:<30} {form.format(statistics.median(values)):>8}   "
              f"(runs: {shown}) {('goal ' + goal) if goal else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
