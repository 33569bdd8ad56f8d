"""First fit in a fresh process: what a user who fits once per process waits for.

Each measurement is its own interpreter (``python -c``), so imports, numba's
compilation (or its on-disk cache) and first-touch page faults all count, as they
do for a script. The child prints one JSON line: the import time and the first
``fit``'s time; the parent adds the process's wall time.

Run: ``python -m benchmarks._cold [--repeats 5] [--rows 1000,100000] [--compile]
[--fits "handnet mlp,handnet mlp (no handnet compile)"] [--before OLD/src]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

from benchmarks._common import ROOT

#: The child's prologue: data made before the clock starts, as a user's script would
#: (the seed's teacher; the ``mlp`` fits make their own images instead).
_PROLOGUE = """
import json, resource, time, warnings
warnings.simplefilter("ignore")
import numpy as np
from handnet.datasets import make_logistic
X, y = make_logistic({rows}, random_state=0)
t0 = time.perf_counter()


def start():
    global t1, rss1
    t1 = time.perf_counter()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

#: What each child imports and fits (after :data:`_PROLOGUE`; ``start()`` starts the
#: fit's clock and memory count). ``sgd`` is the seed's per-example SGD (20 epochs for
#: the compiled peer's sake: equal work for all), ``gd`` the seed's 5001 full-batch
#: iterations, ``fullbatch`` 5 of them on large data (the block engine), ``mlp`` one
#: Adam epoch of 784-128-10 on ``rows`` random float32 images.
FITS: dict[str, str] = {
    "handnet sgd": """
import handnet
start()
handnet.LogisticRegression(batch_size=1, learning_rate=0.01, tol=None, max_iter={epochs},
                           random_state=0).fit(X, y)
""",
    "sklearn sgd": """
from sklearn.linear_model import SGDClassifier
start()
SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, penalty=None, tol=None,
              max_iter={epochs}, shuffle=True, random_state=0).fit(X, y)
""",
    "handnet gd": """
import handnet
start()
handnet.LogisticRegression(learning_rate=0.01, max_iter=5001, tol=None, init="normal",
                           random_state=0).fit(X, y)
""",
    "handnet fullbatch": """
import handnet
start()
handnet.LogisticRegression(max_iter=5, tol=None, random_state=0).fit(X, y)
""",
    "handnet mlp": """
import handnet
images = np.random.default_rng(0).random(({rows}, 784), dtype=np.float32)
digits = np.random.default_rng(1).integers(0, 10, {rows})
start()
handnet.MLPClassifier(hidden_layer_sizes=(128,), max_iter=1, batch_size=128,
                      random_state=0).fit(images, digits)
""",
}

_EPILOGUE = """
t2 = time.perf_counter()
rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"import": t1 - t0, "fit": t2 - t1, "peak_rss_added_mib": (rss2 - rss1) / 1024}}))
"""


#: A fit's name with this suffix runs with an empty ``HANDNET_CACHE_DIR``: none of the
#: kernels ``handnet compile`` built, only numba's own cache (what a machine gets
#: where nobody ran it).
JIT_ONLY = " (no handnet compile)"


def cold_fit(
    fit: str, rows: int, epochs: int = 20, src: str | None = None
) -> dict[str, float]:
    """One fresh interpreter's import and first fit; seconds by name (and ``process``).

    ``src``: the source tree whose handnet the child imports (default: this checkout's;
    another one, e.g. an older revision's ``git archive``, measures before and after
    in the same run).
    """
    environment = dict(os.environ)
    if fit.endswith(JIT_ONLY):
        with tempfile.TemporaryDirectory(prefix="handnet-empty-cache-") as empty:
            environment["HANDNET_CACHE_DIR"] = empty
            return _run_child(fit.removesuffix(JIT_ONLY), rows, epochs, src, environment)
    return _run_child(fit, rows, epochs, src, environment)


def _run_child(
    fit: str, rows: int, epochs: int, src: str | None, environment: dict[str, str]
) -> dict[str, float]:
    """:func:`cold_fit`'s child process, in ``environment``."""
    code = (_PROLOGUE + FITS[fit] + _EPILOGUE).format(rows=rows, epochs=epochs)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (src or str(ROOT / "src"), environment.get("PYTHONPATH", "")) if p
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env=environment, timeout=600,
    )
    process = time.perf_counter() - start
    measured: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    measured["process"] = process
    return measured


def cold_rows(
    fits: Sequence[str],
    rows: Sequence[int],
    repeats: int,
    epochs: int = 20,
    sources: Mapping[str, str | None] | None = None,
) -> dict[tuple[str, int], dict[str, list[float]]]:
    """Every (fit, rows) pair ``repeats`` times, the order rotated each repetition.

    ``sources`` (label to source tree) runs the handnet fits once per tree, keyed
    ``"<fit> [<label>]"``; the peers run once.
    """
    trees = sources or {"": None}
    pairs = [
        (f"{fit} [{label}]" if label and fit.startswith("handnet") else fit, fit, n, src)
        for n in rows
        for fit in fits
        for label, src in (trees.items() if fit.startswith("handnet") else [("", None)])
    ]
    found: dict[tuple[str, int], dict[str, list[float]]] = {
        (key, n): {} for key, _, n, _ in pairs
    }
    for repetition in range(repeats):
        shift = repetition % len(pairs)
        for key, fit, n, src in pairs[shift:] + pairs[:shift]:
            for metric, value in cold_fit(fit, n, epochs, src).items():
                found[(key, n)].setdefault(metric, []).append(value)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", default="1000,100000")
    parser.add_argument(
        "--fits", default=",".join(FITS),
        help=f"names of FITS, each optionally with the suffix {JIT_ONLY!r}",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--compile", action="store_true",
        help="first build handnet compile's kernels into a fresh cache directory, which the "
        "children use (the fits with the suffix above run without)",
    )
    parser.add_argument(
        "--before",
        default=None,
        help="another source tree (e.g. `git archive HEAD src | tar -x -C DIR`, then DIR/src) "
        "to measure beside this checkout's, in the same run",
    )
    args = parser.parse_args(argv)
    rows = [int(r) for r in args.rows.split(",")]
    fits = [f.strip() for f in args.fits.split(",")]
    sources = None if args.before is None else {"before": args.before, "after": None}
    if args.compile:
        from benchmarks import _common

        print(f"handnet's compiled kernels: {_common.prepare_native(True)}")
    print(f"load before: {os.getloadavg()}")
    found = cold_rows(fits, rows, args.repeats, args.epochs, sources)
    for (fit, n), values in found.items():
        medians = {k: statistics.median(v) for k, v in values.items()}
        rate = n * args.epochs / medians["fit"] if "sgd" in fit else float("nan")
        print(
            f"{fit:21s} n={n:>7,}: import {medians['import'] * 1e3:7.1f} ms, first fit "
            f"{medians['fit'] * 1e3:8.1f} ms, process {medians['process'] * 1e3:8.1f} ms, "
            f"peak RSS added by the fit {medians['peak_rss_added_mib']:.0f} MiB"
            + (f", {rate:,.0f} samples/s" if rate == rate else "")
        )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
