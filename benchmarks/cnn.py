"""The CNN case: one Adam epoch of a LeNet-style network on MNIST-shaped data, handnet
against PyTorch (CPU) and against the GEMM floor; where handnet's time goes; peak memory.

The network, in both libraries::

    Conv(1->8, 5x5) -> ReLU -> MaxPool 2 -> Conv(8->16, 5x5) -> ReLU -> MaxPool 2
    -> Flatten -> Dense(256->120) -> ReLU -> Dense(120->10)

softmax cross-entropy, Adam (learning rate 1e-3), mini-batches of 128 rows in a fresh
random order, one epoch, float32, on 60,000 generated 1 x 28 x 28 images (``--quick``:
2,000). handnet trains through its :class:`~handnet.training.Trainer` on
``(n, 1, 28, 28)`` images; a second handnet row feeds flat ``(n, 784)`` rows through a
leading ``Reshape((1, 28, 28))`` (then the first convolution also computes its input
gradient, which nothing uses: :meth:`handnet.nn.network.Sequential.backward` skips only
the first layer's). Each library's time is its whole epoch as a user runs it (network
construction and initialisation included).

The floor is the time NumPy takes for the im2col formulation's matrix products alone
(forward, weight gradient and the input gradients that are needed, for the convolutions
and the dense layers), with the epoch's exact shapes: each product timed both as one
product per sample (``np.matmul`` over the batch, as handnet does) and as one product
for the whole batch, the faster counted.

Run::

    python benchmarks/cnn.py                       # 60,000 images, 3 repetitions
    python benchmarks/cnn.py --quick               # 2,000 images: checks that it runs
    python benchmarks/cnn.py --output docs/cnn_benchmark.md
    python benchmarks/cnn.py --threads 1 --repeats 5

BLAS, OpenMP and PyTorch use 2 threads (``--threads``). Without PyTorch installed its
rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` and `handnet` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import _common  # noqa: E402
from benchmarks._common import (  # noqa: E402
    CaseResult,
    Check,
    alternate,
    format_quantity,
    markdown_table,
    median,
    optional_import,
    quiet_warnings,
    seconds,
)

SEED = 0
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
N_CLASSES = 10
IMAGE = (1, 28, 28)
MiB = 2**20

#: (in_channels, out_channels, kernel, input side) of the two convolutions.
CONVOLUTIONS = ((1, 8, 5, 28), (8, 16, 5, 12))
#: (n_inputs, n_outputs) of the two dense layers.
DENSE = ((256, 120), (120, N_CLASSES))


def make_cnn_data(
    n_samples: int, seed: int = SEED
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Standard-normal float32 images as flat ``(n, 784)`` rows, labels from a random teacher.

    The MLP case's generator (:func:`benchmarks._mlp.make_mlp_data`): the speed of an
    epoch does not depend on what the pixels show.
    """
    from benchmarks._mlp import make_mlp_data

    return make_mlp_data(n_samples, int(np.prod(IMAGE)), N_CLASSES, seed)


def n_parameters() -> int:
    """The network's weights and biases."""
    conv = sum(f * c * k * k + f for c, f, k, _ in CONVOLUTIONS)
    return conv + sum(a * b + b for a, b in DENSE)


# --- the libraries -----------------------------------------------------------------------


def handnet_layers(flat: bool) -> list[Any]:
    """The network as handnet layers (with a leading Reshape for flat rows)."""
    from handnet.nn.conv import Conv2D, MaxPool2D
    from handnet.nn.layers import Activation, Dense, Flatten, Reshape

    layers = [
        Conv2D(None, 8, 5),
        Activation("relu"),
        MaxPool2D(2),
        Conv2D(None, 16, 5),
        Activation("relu"),
        MaxPool2D(2),
        Flatten(),
        Dense(None, 120),
        Activation("relu"),
        Dense(None, N_CLASSES),
    ]
    return [Reshape(IMAGE), *layers] if flat else layers


def handnet_epoch(
    X: NDArray[np.float32], y: NDArray[np.int64], seed: int, flat: bool = False,
    threads: int | None = None,
) -> float:
    """One epoch through handnet's Trainer; returns its seconds (network building included).

    The convolution and pooling layers split each batch over ``threads`` threads
    (default: the run's thread count) while BLAS runs on one
    (:func:`handnet.nn.conv.threads_over_samples`): the run's cores, used as handnet
    uses them best.
    """
    from handnet.nn.conv import threads_over_samples
    from handnet.nn.losses import get_loss
    from handnet.nn.network import build_network
    from handnet.optim.optimizers import Adam
    from handnet.training import Trainer

    start = time.perf_counter()
    n = X.shape[0]
    data = X if flat else X.reshape(n, *IMAGE)  # a view: no copy
    targets = np.zeros((n, N_CLASSES), dtype=np.float32)
    targets[np.arange(n), y] = 1.0
    rng = np.random.default_rng(seed)
    network = build_network(handnet_layers(flat), data.shape[1:], rng, np.float32)
    trainer = Trainer(
        network,
        get_loss("softmax_cross_entropy"),
        Adam(LEARNING_RATE),
        rng,
        batch_size=BATCH_SIZE,
        tol=None,
        shuffle=True,
    )
    with quiet_warnings(), threads_over_samples(threads or _common.THREADS):
        trainer.fit(data, targets, max_iter=1)
    return time.perf_counter() - start


def torch_epoch(torch: Any, X: NDArray[np.float32], y: NDArray[np.int64], seed: int) -> float:
    """One epoch of the same network in PyTorch (CPU); returns its seconds, setup included."""
    nn = torch.nn
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.ReLU(),
        nn.Linear(120, N_CLASSES),
    )
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    X_t = torch.from_numpy(X.reshape(X.shape[0], *IMAGE))
    y_t = torch.from_numpy(y)
    order = torch.randperm(X.shape[0])
    for first in range(0, X.shape[0], BATCH_SIZE):
        index = order[first : first + BATCH_SIZE]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(X_t[index]), y_t[index])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


# --- the floor ---------------------------------------------------------------------------


def _batches(n_samples: int) -> list[int]:
    sizes = [BATCH_SIZE] * (n_samples // BATCH_SIZE)
    if n_samples % BATCH_SIZE:
        sizes.append(n_samples % BATCH_SIZE)
    return sizes


def _product_kinds() -> list[tuple[str, int, int, int, str]]:
    """``(name, m, k, n, joined)``: each of an epoch's products, ``(m, k) @ (k, n)``.

    Convolutions (``F`` filters, ``K = C k^2`` unrolled rows, ``P`` positions), per
    sample: forward ``(F, K) @ (K, P)``, weight gradient ``(F, P) @ (P, K)`` and input
    gradient ``(K, F) @ (F, P)``; ``joined`` says which axis holds the samples side by
    side in the whole-batch form (``"n"``, the columns; ``"k"``, the inner axis). Dense
    ``(a, b)`` layers, per batch of ``B`` rows (``-1`` stands for ``B``): ``(B, a) @ (a, b)``,
    ``(a, B) @ (B, b)``, ``(B, b) @ (b, a)``.
    """
    kinds: list[tuple[str, int, int, int, str]] = []
    for index, (channels, filters, kernel, side) in enumerate(CONVOLUTIONS):
        K, P = channels * kernel * kernel, (side - kernel + 1) ** 2
        kinds += [
            (f"conv{index + 1} forward", filters, K, P, "n"),
            (f"conv{index + 1} weight gradient", filters, P, K, "k"),
            (f"conv{index + 1} input gradient", K, filters, P, "n"),
        ]
    for index, (a, b) in enumerate(DENSE):
        kinds += [
            (f"dense{index + 1} forward", -1, a, b, "-"),
            (f"dense{index + 1} weight gradient", a, -1, b, "-"),
            (f"dense{index + 1} input gradient", -1, b, a, "-"),
        ]
    return kinds


def gemm_floor(n_samples: int, tries: int = 3, seed: int = SEED) -> dict[str, float]:
    """Seconds of each of the epoch's matrix products alone (best of ``tries``), float32.

    A convolution's product is timed as one product per sample (a batched
    ``np.matmul``, the shapes handnet uses) and as one product over the whole batch
    (the per-sample matrices side by side); the faster counts. Outputs go to
    preallocated arrays; operands are random.

    Returns
    -------
    dict
        Seconds by product name (``"conv1 forward"``...), ``"total"`` (all products an
        epoch on images needs: not ``conv1 input gradient``), ``"convolutions"`` (those
        of the convolutions among them), and ``"flops"`` (of the total).
    """
    rng = np.random.default_rng(seed)
    best: dict[str, float] = {}
    flops: dict[str, float] = {}
    for name, m, k, n, joined in _product_kinds():
        spent = float("inf")
        for _ in range(tries):
            total = 0.0
            for batch in _batches(n_samples):
                if joined == "-":
                    total += _time_dense_product(rng, batch, m, k, n)
                else:
                    total += _time_conv_product(rng, batch, m, k, n, joined)
            spent = min(spent, total)
        best[name] = spent
        size = n_samples * (m if m > 0 else 1) * (k if k > 0 else 1) * n
        flops[name] = 2.0 * size
    needed = [name for name in best if name != "conv1 input gradient"]
    best["total"] = sum(best[name] for name in needed)
    best["convolutions"] = sum(best[name] for name in needed if name.startswith("conv"))
    best["flops"] = sum(flops[name] for name in needed)
    return best


_OPERANDS: dict[tuple[Any, ...], tuple[NDArray[np.float32], ...]] = {}


def _operands(key: tuple[Any, ...], make: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
    """The random operands of one product shape (one shape kept at a time: megabytes)."""
    if key not in _OPERANDS:
        _OPERANDS.clear()
        _OPERANDS[key] = make()
    return _OPERANDS[key]


def _time_dense_product(rng: np.random.Generator, batch: int, m: int, k: int, n: int) -> float:
    m, k = (batch if m < 0 else m), (batch if k < 0 else k)

    def make() -> tuple[Any, ...]:
        return (rng.random((m, k), dtype=np.float32),
                rng.random((k, n), dtype=np.float32),
                np.empty((m, n), dtype=np.float32))

    A, B, out = _operands(("dense", m, k, n), make)
    start = time.perf_counter()
    np.matmul(A, B, out=out)
    return time.perf_counter() - start


def _time_conv_product(
    rng: np.random.Generator, batch: int, m: int, k: int, n: int, joined: str
) -> float:
    """The faster of the per-sample and the whole-batch forms of one convolution product."""

    def make() -> tuple[Any, ...]:
        whole_k, whole_n = (k * batch, n) if joined == "k" else (k, n * batch)
        return (
            rng.random((batch, m, k), dtype=np.float32),
            rng.random((batch, k, n), dtype=np.float32),
            np.empty((batch, m, n), dtype=np.float32),
            rng.random((m, whole_k), dtype=np.float32),
            rng.random((whole_k, whole_n), dtype=np.float32),
            np.empty((m, whole_n), dtype=np.float32),
        )

    A, B, out, A_whole, B_whole, out_whole = _operands(("conv", batch, m, k, n, joined), make)
    if joined == "n":
        A = A[0]  # the weights: one matrix for every sample
    start = time.perf_counter()
    np.matmul(A, B, out=out)
    middle = time.perf_counter()
    np.matmul(A_whole, B_whole, out=out_whole)
    end = time.perf_counter()
    return min(middle - start, end - middle)


# --- where handnet's time goes -------------------------------------------------------------


class _TimedNumpy:
    """Stands in for ``numpy`` inside handnet's convolution modules, timing their matrix
    products."""

    def __init__(self, matmul: Callable[..., Any]) -> None:
        self.matmul = matmul

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


@contextlib.contextmanager
def instrumented(timer: Any) -> Iterator[None]:
    """Wrap handnet's pieces (the MLP profile's, plus the convolution's) with ``timer``.

    A module-level function is wrapped where its caller looks it up: ``Conv2D`` calls
    :mod:`handnet.nn.conv`'s names, the formulations' helpers call their own module's.
    """
    from benchmarks import _mlp
    from handnet import conv
    from handnet.nn import im2col, im2row

    rest = "conv rest (bias, layouts, Python)"
    targets: list[tuple[Any, str, Any]] = [
        (conv.Conv2D, "_unroll", "im2col / row unrolling (and padding)"),
        (im2col, "col2im", "col2im"),
        (im2col, "col2im_wide", "col2im"),
        (im2row, "col2im_rows", "col2im"),
        (im2row, "sum_shifts", "kernel-column shifts (by rows)"),
        (im2row, "shift_gradient", "kernel-column shifts (by rows)"),
        (conv.Conv2D, "forward", rest),
        (conv.Conv2D, "backward", rest),
        (conv, "columns_weight_gradient", rest),
        (conv, "columns_input_gradient", rest),
        (conv, "rows_forward", rest),
        (conv, "rows_gradients", rest),
        (conv.MaxPool2D, "forward", "max pooling forward"),
        (conv.MaxPool2D, "backward", "max pooling backward"),
    ]
    for owner, name, category in _mlp._targets():
        if name in ("forward", "backward") and getattr(owner, "__name__", "") == "Dense":
            category = "dense layers (GEMMs, bias)"
        targets.append((owner, name, category))
    originals: list[tuple[Any, str, Any]] = []
    for owner, name, category in targets:
        original = vars(owner).get(name)
        if not callable(original) or isinstance(original, (staticmethod, classmethod)):
            continue
        originals.append((owner, name, original))
        setattr(owner, name, timer.wrap(original, category))
    gemms = _TimedNumpy(timer.wrap(np.matmul, "conv GEMMs"))
    for module in (conv, im2col, im2row):
        originals.append((module, "np", module.np))
        module.np = gemms  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def profile_epoch(
    X: NDArray[np.float32], y: NDArray[np.int64], repeats: int
) -> tuple[dict[str, float], float, float]:
    """handnet's epoch on images, piece by piece, on one thread.

    Returns the median seconds of each piece, and the median instrumented and plain
    epochs. One thread: the timer books a piece's time as the calling thread sees it,
    which the layers' worker threads would blur (a wait for a worker is not work).
    """
    from benchmarks._mlp import ExclusiveTimer

    pieces: defaultdict[str, list[float]] = defaultdict(list)
    totals, plain = [], []
    threadpoolctl = optional_import("threadpoolctl")
    one_thread = (
        threadpoolctl.threadpool_limits(limits=1) if threadpoolctl else contextlib.nullcontext()
    )
    with one_thread:
        for r in range(repeats):
            timer = ExclusiveTimer()
            with instrumented(timer):
                total = handnet_epoch(X, y, SEED + r, threads=1)
            totals.append(total)
            timer.totals["rest (trainer setup, network building, Python)"] = total - sum(
                timer.totals.values()
            )
            for category, spent in timer.totals.items():
                pieces[category].append(spent)
            plain.append(handnet_epoch(X, y, SEED + r, threads=1))
    return {k: median(v) for k, v in pieces.items()}, median(totals), median(plain)


# --- memory --------------------------------------------------------------------------------


def memory_worker(library: str, n_samples: int, threads: int) -> dict[str, object]:
    """Fit one epoch in this (fresh) process; the peak resident memory it added."""
    from benchmarks._memory import _reset_peak, _status_kib

    torch = optional_import("torch") if library == "torch" else None
    limits = _common.limit_threads(threads)
    X, y = make_cnn_data(n_samples)
    # A warm-up fit on one small batch (32 rows): one-time initialisation (lazy imports,
    # thread pools, PyTorch's oneDNN set-up) is not what a fit costs. Smaller than the
    # fit's batches, so that the fit cannot simply reuse the warm-up's buffers.
    warm = slice(0, min(32, n_samples))

    def fit(rows: slice) -> float:
        if library == "torch":
            return torch_epoch(torch, X[rows], y[rows], SEED)
        return handnet_epoch(X[rows], y[rows], SEED, flat=library == "handnet-flat")

    fit(warm)
    gc.collect()
    baseline = _status_kib("VmRSS")
    reset = _reset_peak()
    elapsed = fit(slice(None))
    peak = _status_kib("VmHWM")
    del limits
    return {
        "library": library,
        "baseline_mib": baseline / 1024,
        "peak_mib": peak / 1024,
        "extra_mib": (peak - baseline) / 1024,
        "peak_reset": reset,
        "data_mib": (X.nbytes + y.nbytes) / MiB,
        "seconds": elapsed,
    }


def memory_rows(libraries: list[str], n_samples: int) -> dict[str, dict[str, Any]]:
    """Run :func:`memory_worker` once per library, each in its own process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    found: dict[str, dict[str, Any]] = {}
    for library in libraries:
        command = [sys.executable, "-m", "benchmarks.cnn", "--memory-worker", library,
                   "--n-samples", str(n_samples), "--threads", str(_common.THREADS)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                              check=False)
        if done.returncode != 0:
            found[library] = {"error": done.stderr.strip()[-300:]}
            continue
        found[library] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


# --- the case ------------------------------------------------------------------------------


def cnn_case(
    repeats: int, n_samples: int, warmup: bool = True, profile: bool = True, memory: bool = True
) -> list[CaseResult]:
    """Speed against PyTorch and the floor, then the profile and the memory tables."""
    X, y = make_cnn_data(n_samples)
    torch = optional_import("torch")
    if torch is not None:
        torch.set_num_threads(_common.THREADS)
    seeds = iter(range(1, 1_000_000))
    floors: list[dict[str, float]] = []

    def floor_run() -> dict[str, float]:
        floors.append(gemm_floor(n_samples, tries=1))
        return {"time": floors[-1]["total"]}

    runners: dict[str, Callable[[], Mapping[str, float]]] = {
        "handnet": lambda: {"time": handnet_epoch(X, y, next(seeds))},
        "handnet-flat": lambda: {"time": handnet_epoch(X, y, next(seeds), flat=True)},
    }
    if torch is not None:
        runners["torch"] = lambda: {"time": torch_epoch(torch, X, y, next(seeds))}
    runners["floor"] = floor_run
    times = alternate(runners, repeats, warmup)
    floor = {key: min(f[key] for f in floors) for key in floors[0]}
    medians = {name: median(values["time"]) for name, values in times.items() if name != "floor"}
    t_torch = medians.get("torch", float("nan"))

    speed = CaseResult(
        "cnn",
        f"CNN: LeNet-style, {n_samples:,} x 1 x 28 x 28 float32, batch {BATCH_SIZE}, "
        f"Adam {LEARNING_RATE:g}, one epoch",
        ["run", "median epoch", "best epoch", "x torch", "x floor"],
    )
    labels = {
        "handnet": "handnet `Trainer`, `(n, 1, 28, 28)` images",
        "handnet-flat": "handnet `Trainer`, flat `(n, 784)` rows + `Reshape`",
        "torch": "PyTorch `nn.Sequential` + Adam (CPU)",
    }
    for name, t in medians.items():
        speed.rows.append([
            labels[name], seconds(t), seconds(min(times[name]["time"])),
            f"{t / t_torch:.2f}" if torch is not None else "-", f"{t / floor['total']:.2f}",
        ])
    speed.rows.append([
        f"floor: the epoch's matrix products alone ({floor['flops'] / 1e9:.1f} GFLOP, "
        f"{floor['flops'] / floor['total'] / 1e9:.1f} GFLOP/s)",
        seconds(floor["total"]), "-",
        f"{floor['total'] / t_torch:.2f}" if torch is not None else "-", "1.00",
    ])
    if torch is None:
        speed.notes.append("PyTorch is not installed: its row and ratios are skipped "
                           "(`pip install torch` to compare).")
    else:
        speed.checks.append(Check("cnn handnet/torch", medians["handnet"] / t_torch, 1.0))
        best = {name: min(values["time"]) for name, values in times.items()}
        # On a shared machine the best epochs are those that ran with the cores free.
        speed.checks.append(
            Check("cnn handnet/torch, best epochs", best["handnet"] / best["torch"])
        )
        speed.checks.append(Check("cnn handnet-flat/torch", medians["handnet-flat"] / t_torch))
        speed.checks.append(Check("cnn torch/floor", t_torch / floor["total"]))
    speed.checks.append(Check("cnn handnet/floor", medians["handnet"] / floor["total"]))
    speed.notes += [
        f"Medians of {repeats} repetitions; in each, every run once in the order of the "
        "table (handnet first), so the machine's noise falls on all alike. On a shared "
        "machine compare the best epochs too: a busy spell slows PyTorch's OpenMP threads "
        "far more than handnet's (spinning threads wait for a descheduled one).",
        "handnet runs inside `handnet.nn.conv.threads_over_samples(threads)`: its convolution "
        "and pooling layers split each batch over the threads and BLAS runs on one thread "
        "(with BLAS on 2 threads next to them the cores are oversubscribed).",
        "Each time is a whole one-epoch fit as a user runs it: network construction and "
        "initialisation included (PyTorch: `torch.from_numpy`, a `randperm`, index-gathered "
        "batches).",
        "The floor counts the products an epoch on images needs (not the first convolution's "
        "input gradient, which the flat-rows run computes too); each timed per sample and "
        "for the whole batch, the faster counted. Product by product: "
        + ", ".join(f"{name} {seconds(floor[name])}" for name, _, _, _, _ in _product_kinds())
        + ".",
    ]
    results = [speed]

    if profile:
        pieces, instrumented_total, plain = profile_epoch(X, y, max(1, min(repeats, 3)))
        table = CaseResult(
            "cnn-profile",
            f"Where handnet's CNN epoch goes ({n_samples:,} images, one thread)",
            ["piece", "time", "share"],
        )
        accounted = sum(pieces.values())
        for piece, spent in sorted(pieces.items(), key=lambda item: -item[1]):
            table.rows.append([piece, seconds(spent), f"{spent / accounted:.1%}"])
        table.rows.append(["**sum (instrumented epoch)**", seconds(accounted), "100%"])
        table.notes += [
            f"Exclusive times (a wrapped function's time minus its wrapped callees'), medians "
            f"of {max(1, min(repeats, 3))} instrumented epochs with BLAS and the layers on one "
            f"thread: {seconds(instrumented_total)} instrumented, {seconds(plain)} plain (one "
            "thread). `conv GEMMs` are the `np.matmul` calls of `handnet.nn.conv`, "
            "`handnet.nn.im2col` and `handnet.nn.im2row` (the floor's im2col products: "
            f"{seconds(floor['convolutions'])}; by kernel rows, the second convolution "
            "multiplies 1.5 times as much, 12 image columns for 8 outputs); the dense layers' "
            "time includes their products.",
        ]
        results.append(table)

    if memory:
        libraries = ["handnet", "handnet-flat"] + (["torch"] if torch is not None else [])
        found = memory_rows(libraries, n_samples)
        table = CaseResult(
            "cnn-memory",
            f"Memory: peak RSS added by one epoch ({n_samples:,} images), one process each",
            ["run", "RSS before fit", "peak during fit", "added by fit"],
        )
        for library, record in found.items():
            if "error" in record:
                table.notes.append(f"{library}: the worker failed: {record['error']}")
                continue
            table.rows.append([
                labels[library], format_quantity(record["baseline_mib"], "MiB"),
                format_quantity(record["peak_mib"], "MiB"),
                format_quantity(record["extra_mib"], "MiB"),
            ])
        if "torch" in found and "extra_mib" in found["torch"] and "extra_mib" in found["handnet"]:
            ratio = found["handnet"]["extra_mib"] / max(found["torch"]["extra_mib"], 1e-9)
            table.checks.append(Check("cnn memory handnet/torch added by fit", ratio))
        table.notes.append(
            "Each run in a fresh process: data generated, a warm-up epoch on one batch of 32 "
            "rows (one-time initialisation), the peak counter reset "
            "(`/proc/self/clear_refs`), then the measured epoch. Added = peak - RSS before "
            "the fit. The data (float32 images and int64 labels) is resident before the fit: "
            + (f"{next(iter(found.values())).get('data_mib', 0):.1f} MiB." if found else "")
        )
        results.append(table)
    return results


# --- the command line ----------------------------------------------------------------------


def render(args: argparse.Namespace, results: list[CaseResult], started: datetime.datetime,
           load_before: str, speedups: tuple[float, float]) -> str:
    """The markdown report: how it ran, on what, and the tables."""
    from benchmarks.run import contention_lines

    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(ROOT)
    command = shlex.join(["python", str(script), *sys.argv[1:]])
    lines = [
        "# CNN benchmark",
        "",
        "handnet's convolution layers (`handnet.nn.conv`) in a LeNet-style network against the "
        "same network in PyTorch, measured in one run (generated by `benchmarks/cnn.py`).",
        "",
        f"- command: `{command}`",
        f"- started: {started:%Y-%m-%d %H:%M UTC}, repeats: {args.repeats}, "
        f"threads: {_common.THREADS}",
        f"- load average (1/5/15 min) before: {load_before}, after: {_common.load_average()} "
        "(the machine may be shared: other processes add noise)",
        *contention_lines(_common.THREADS, speedups),
        "",
        "## Machine",
        "",
        *markdown_table(["", ""], _common.machine_rows() + _common.version_rows()),
        "",
        _common.openblas_note(),
        "",
    ]
    for result in results:
        lines += result.markdown()
    return "\n".join(lines).rstrip("\n") + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 images, 1 repetition")
    parser.add_argument("--n-samples", type=int, default=None, help="images (default 60,000)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (quick: 1)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP/PyTorch threads")
    parser.add_argument("--no-profile", action="store_true", help="skip the piece-by-piece profile")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--output", type=Path, default=None, help="markdown report to write")
    parser.add_argument("--no-compile", action="store_true",
                        help="without `handnet compile`'s kernels (numba's JIT cache only)")
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n_samples is None:
        args.n_samples = 2_000 if args.quick else 60_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.n_samples < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--n-samples, --repeats and --threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _common.THREADS = args.threads
    if args.memory_worker is not None:
        print(json.dumps(memory_worker(args.memory_worker, args.n_samples, args.threads)))
        return 0
    # The memory worker above inherits the directory through HANDNET_CACHE_DIR.
    print(f"handnet's compiled kernels: {_common.prepare_native(not args.no_compile)}")
    limits = _common.limit_threads()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = _common.load_average()
    speedup_before = _common.parallel_speedup()
    results = cnn_case(args.repeats, args.n_samples, profile=not args.no_profile,
                       memory=not args.no_memory)
    speedups = (speedup_before, _common.parallel_speedup())
    del limits
    for result in results:
        for line in result.markdown():
            print(line)
    for check in (check for result in results for check in result.checks):
        print(check.line())
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        report = render(args, results, started, load_before, speedups)
        args.output.write_text(report, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
