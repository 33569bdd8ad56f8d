"""The MLP case: one Adam epoch on 60,000 x 784 float32, handnet against PyTorch and scikit-learn.

Every library trains the same architecture (784-128-10 or 784-256-128-10, ReLU),
on the same float32 data, with mini-batches of 128 rows in a fresh random order,
Adam with learning rate 1e-3 and no L2 penalty, for one epoch.

The floor is the FLOPs of the products an epoch needs (forward and weight
gradient of every dense layer, input gradient of every layer but the first:
``2 x b x n_in x n_out`` each) at the float32 GEMM rate NumPy reaches in this run
on exactly those per-batch shapes (the median over repetitions, like the libraries).

:func:`profile_mlp` times where handnet's epoch goes by wrapping its layers,
loss, optimizer and trainer methods at run time (nothing in ``src/`` changes).
"""

from __future__ import annotations

import cProfile
import functools
import inspect
import io
import itertools
import math
import pstats
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

import handnet
from benchmarks import _common
from benchmarks._common import (
    CaseResult,
    Check,
    alternate,
    markdown_table,
    median,
    optional_import,
    quiet_warnings,
    seconds,
)
from handnet import _native

SEED = 0
Array32 = NDArray[np.float32]
BATCH_SIZE = 128
LEARNING_RATE = 1e-3


def make_mlp_data(
    n_samples: int, n_features: int = 784, n_classes: int = 10, seed: int = SEED
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Standard-normal float32 features labelled by a random teacher network's argmax.

    The teacher (``n_features``-64-``n_classes``, ReLU) has its logits centred per
    class, so the classes are roughly balanced. The features are drawn straight into
    a float32 array (no float64 temporary the size of the data).
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    w1 = rng.standard_normal((n_features, 64), dtype=np.float32) / np.float32(np.sqrt(n_features))
    w2 = rng.standard_normal((64, n_classes), dtype=np.float32) / np.float32(8.0)
    logits = np.maximum(X @ w1, 0) @ w2
    logits -= logits.mean(axis=0)
    return X, np.argmax(logits, axis=1).astype(np.int64)


def n_parameters(sizes: Sequence[int]) -> int:
    """Weights and biases of a dense network with these layer sizes (input first)."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def architecture_name(sizes: Sequence[int]) -> str:
    """``784-128-10``."""
    return "-".join(str(s) for s in sizes)


# --- the libraries -----------------------------------------------------------------------


def handnet_epoch(
    X: NDArray[np.float32], y: NDArray[np.int64], hidden: Sequence[int], seed: int
) -> float:
    """One epoch of handnet's ``MLPClassifier``; returns the seconds ``fit`` took."""
    model = handnet.MLPClassifier(
        tuple(hidden),
        batch_size=BATCH_SIZE,
        max_iter=1,
        tol=None,
        alpha=0.0,
        learning_rate=LEARNING_RATE,
        shuffle=True,
        random_state=seed,
    )
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def torch_fused_adam(torch: Any) -> bool:
    """Whether this PyTorch has ``Adam(fused=True)`` on the CPU (2.4 and later)."""
    try:
        parameter = torch.nn.Parameter(torch.zeros(2))
        optimizer = torch.optim.Adam([parameter], lr=LEARNING_RATE, fused=True)
        parameter.grad = torch.ones(2)
        optimizer.step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def torch_epoch(
    torch: Any,
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    hidden: Sequence[int],
    seed: int,
    fused: bool = False,
) -> float:
    """One epoch of the same network in PyTorch (CPU); returns its seconds, setup included.

    ``fused``: ``Adam(fused=True)``, PyTorch's one-kernel update (its best CPU setting).
    """
    nn = torch.nn
    start = time.perf_counter()
    torch.manual_seed(seed)
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    layers: list[Any] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    loss_fn = nn.CrossEntropyLoss()
    options = {"fused": True} if fused else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, **options)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    order = torch.randperm(X.shape[0])
    for first in range(0, X.shape[0], BATCH_SIZE):
        index = order[first : first + BATCH_SIZE]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(X_t[index]), y_t[index])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def sklearn_epoch(
    neural_network: Any,
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    hidden: Sequence[int],
    seed: int,
) -> float:
    """One epoch of scikit-learn's ``MLPClassifier`` (float32 input); returns its seconds."""
    model = neural_network.MLPClassifier(
        tuple(hidden),
        solver="adam",
        batch_size=BATCH_SIZE,
        max_iter=1,
        alpha=0.0,
        learning_rate_init=LEARNING_RATE,
        tol=0.0,
        shuffle=True,
        random_state=seed,
    )
    with quiet_warnings():
        start = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - start


def _he_parameters(
    shapes: Sequence[tuple[int, int]], rng: np.random.Generator
) -> tuple[Array32, Array32, list[Array32], list[Array32], list[Array32], list[Array32]]:
    """One flat float32 parameter vector and its gradient for dense layers of ``shapes``:
    ``(theta, grad, W, b, gW, gb)``, the last four per-layer views (weights first, then
    biases), the weights He-normal from ``rng`` and the biases 0."""
    n_weights = sum(a * c for a, c in shapes)
    theta = np.zeros(n_weights + sum(c for _, c in shapes), dtype=np.float32)
    grad = np.zeros_like(theta)
    W: list[Array32] = []
    b: list[Array32] = []
    gW: list[Array32] = []
    gb: list[Array32] = []
    w_at, b_at = 0, n_weights
    for a, c in shapes:
        W.append(theta[w_at : w_at + a * c].reshape(a, c))
        gW.append(grad[w_at : w_at + a * c].reshape(a, c))
        b.append(theta[b_at : b_at + c])
        gb.append(grad[b_at : b_at + c])
        W[-1][...] = rng.standard_normal((a, c), dtype=np.float32) * np.float32(np.sqrt(2.0 / a))
        w_at, b_at = w_at + a * c, b_at + c
    return theta, grad, W, b, gW, gb


def lean_numpy_epoch(
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    hidden: Sequence[int],
    seed: int,
    timers: dict[str, float] | None = None,
) -> float:
    """The same epoch as a lean hand-written NumPy float32 loop: a reference, not a peer.

    He-normal weights, batches gathered by ``np.take`` into one reused buffer, every
    product and elementwise step written into preallocated arrays, Adam (PyTorch's
    form) fused over one flat parameter vector. ``timers``, if given, receives the
    seconds spent in each piece (at the cost of a clock read around each).

    Returns the seconds the epoch took (setup included).
    """
    clock = time.perf_counter
    start = clock()
    rng = np.random.default_rng(seed)
    n_samples, n_features = X.shape
    n_classes = int(y.max()) + 1
    sizes = [n_features, *hidden, n_classes]
    shapes = list(itertools.pairwise(sizes))
    theta, grad, W, b, gW, gb = _he_parameters(shapes, rng)
    m, v, scratch = np.zeros_like(theta), np.zeros_like(theta), np.empty_like(theta)
    xb = np.empty((BATCH_SIZE, n_features), dtype=np.float32)
    acts = [np.empty((BATCH_SIZE, c), dtype=np.float32) for _, c in shapes]
    back = [np.empty((BATCH_SIZE, a), dtype=np.float32) for a, _ in shapes]
    order = rng.permutation(n_samples)
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, LEARNING_RATE
    spent: dict[str, float] = defaultdict(float)
    t = clock()

    def tick(piece: str) -> None:
        nonlocal t
        if timers is not None:
            now = clock()
            spent[piece] += now - t
            t = now

    total_loss = 0.0
    for step, first in enumerate(range(0, n_samples, BATCH_SIZE), start=1):
        index = order[first : first + BATCH_SIZE]
        rows = len(index)
        x = xb[:rows]
        np.take(X, index, axis=0, out=x)
        labels = y[index]
        tick("batch gathering")
        inputs = [x]
        for layer, out in enumerate(acts):
            z = out[:rows]
            np.matmul(inputs[-1], W[layer], out=z)
            tick("forward GEMMs")
            z += b[layer]
            if layer < len(acts) - 1:
                np.maximum(z, 0, out=z)
            inputs.append(z)
            tick("bias add + ReLU")
        g = inputs.pop()  # the logits, turned into dL/dlogits in place
        g -= g.max(axis=1, keepdims=True)
        np.exp(g, out=g)
        g /= g.sum(axis=1, keepdims=True)
        picked = g[np.arange(rows), labels]
        total_loss -= float(np.log(np.maximum(picked, 1e-30)).sum())
        g[np.arange(rows), labels] -= 1.0
        g *= np.float32(1.0 / rows)
        tick("softmax cross-entropy")
        for layer in range(len(acts) - 1, -1, -1):
            a_in = inputs[layer]
            np.matmul(a_in.T, g, out=gW[layer])
            tick("backward GEMMs")
            g.sum(axis=0, out=gb[layer])
            tick("bias grad + ReLU mask")
            if layer > 0:
                g_in = back[layer][:rows]
                np.matmul(g, W[layer].T, out=g_in)
                tick("backward GEMMs")
                g_in *= a_in > 0
                g = g_in
                tick("bias grad + ReLU mask")
        m *= np.float32(beta1)
        np.multiply(grad, np.float32(1.0 - beta1), out=scratch)
        m += scratch
        v *= np.float32(beta2)
        np.multiply(grad, grad, out=scratch)
        scratch *= np.float32(1.0 - beta2)
        v += scratch
        np.sqrt(v, out=scratch)
        scratch *= np.float32(1.0 / np.sqrt(1.0 - beta2**step))
        scratch += np.float32(eps)
        np.divide(m, scratch, out=scratch)
        scratch *= np.float32(lr / (1.0 - beta1**step))
        theta -= scratch
        tick("Adam")
    elapsed = clock() - start
    if timers is not None:
        timers.update(spent)
    del total_loss
    return elapsed


def lean_kernel_epoch(
    X: NDArray[np.float32], y: NDArray[np.int64], hidden: Sequence[int], seed: int
) -> float | None:
    """The same epoch as a lean loop of handnet's own compiled kernels; ``None`` unbuilt.

    The products, the rows' gather, bias, ReLU, softmax loss and Adam passes that
    ``handnet compile`` builds (:mod:`handnet._native`), called straight, with no
    layers, no argument checks and no training-loop bookkeeping: what handnet's
    epoch would take if those cost nothing. Weights He-normal, labels one-hot and
    gathered as handnet gathers them. Returns the seconds (setup included).
    """
    module = _native._module()
    if module is None:
        return None

    def kernel(name: str) -> Callable[..., Any]:
        found: Callable[..., Any] = getattr(module, f"{name}_float32")
        return found

    gather, add_bias, relu_forward, relu_backward, column_sums, softmax, adam = (
        kernel(name) for name in ("gather_rows", "add_bias", "relu_forward", "relu_backward",
                                  "column_sums", "softmax_cross_entropy", "fused_adam"))
    f32 = np.float32
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_samples, n_features = X.shape
    n_classes = int(y.max()) + 1
    Y = np.zeros((n_samples, n_classes), dtype=f32)
    Y[np.arange(n_samples), y] = 1.0
    shapes = list(itertools.pairwise([n_features, *hidden, n_classes]))
    theta, grad, W, b, gW, gb = _he_parameters(shapes, rng)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    np.add.reduce(X, axis=None)  # the finiteness check's read of X, as fit makes it
    order = rng.permutation(n_samples)
    buffers: dict[int, Any] = {}
    for step, first in enumerate(range(0, n_samples, BATCH_SIZE), start=1):
        index = order[first : first + BATCH_SIZE]
        rows = len(index)
        if rows not in buffers:
            buffers[rows] = (
                np.empty((rows, n_features), f32), np.empty((rows, n_classes), f32),
                [np.empty((rows, c), f32) for _, c in shapes],  # pre-activations
                [np.empty((rows, c), f32) for _, c in shapes[:-1]],  # activations
                [np.empty((rows, a), f32) for a, _ in shapes[1:]],  # input gradients
                [np.empty((rows, c), f32) for _, c in shapes],  # pre-activation gradients
            )
        xb, yb, zs, acts, dins, dzs = buffers[rows]
        gather(X, index, xb)
        gather(Y, index, yb)
        inputs = [xb]
        for layer, z in enumerate(zs):
            np.dot(inputs[-1], W[layer], z)
            add_bias(z, b[layer])
            if layer < len(acts):
                relu_forward(z.reshape(-1), acts[layer].reshape(-1))
                inputs.append(acts[layer])
        softmax(zs[-1], yb, dzs[-1])
        for layer in range(len(shapes) - 1, -1, -1):
            np.dot(inputs[layer].T, dzs[layer], gW[layer])
            column_sums(dzs[layer], gb[layer])
            if layer > 0:
                np.dot(dzs[layer], W[layer].T, dins[layer - 1])
                relu_backward(dins[layer - 1].reshape(-1), zs[layer - 1].reshape(-1),
                              dzs[layer - 1].reshape(-1))
        adam(theta, grad, m, v, f32(0.9), f32(0.1), f32(0.999), f32(0.001), f32(1e-8),
             f32(LEARNING_RATE / (1.0 - 0.9**step)), f32(1.0 / math.sqrt(1.0 - 0.999**step)),
             f32(1.0))
    return time.perf_counter() - start


# --- the floor ---------------------------------------------------------------------------


def gemm_floor(
    n_samples: int, sizes: Sequence[int], tries: int = 3, seed: int = SEED
) -> dict[str, float]:
    """Time NumPy float32 products of an epoch's exact per-batch shapes; best of ``tries``.

    Per batch of ``b`` rows and dense layer ``(n_in, n_out)``: the forward product
    ``A (b, n_in) @ W (n_in, n_out)``, the weight gradient ``A.T @ G (b, n_out)``
    and, above the first layer, the input gradient ``G @ W.T`` (the first layer's
    is not needed). Outputs go to preallocated arrays.

    Returns
    -------
    dict
        ``forward``, ``weight_grad``, ``input_grad``: seconds of each kind of
        product over the epoch (``forward:0`` etc.: the same for dense layer 0...);
        ``flops``: their FLOPs; ``rate``: FLOP/s over all.
    """
    rng = np.random.default_rng(seed)
    batches = [BATCH_SIZE] * (n_samples // BATCH_SIZE)
    if n_samples % BATCH_SIZE:
        batches.append(n_samples % BATCH_SIZE)
    layers = list(itertools.pairwise(sizes))
    weights = [rng.standard_normal((a, b), dtype=np.float32) for a, b in layers]
    grads = [np.empty((a, b), dtype=np.float32) for a, b in layers]
    inputs = {
        (bs, a): rng.standard_normal((bs, a), dtype=np.float32)
        for bs in set(batches)
        for a, _ in layers
    }
    outs = {
        (bs, b): rng.standard_normal((bs, b), dtype=np.float32)
        for bs in set(batches)
        for _, b in layers
    }
    back = {(bs, a): np.empty((bs, a), dtype=np.float32) for bs in set(batches) for a, _ in layers}
    best: dict[str, float] = {}
    for _ in range(tries):
        spent: dict[str, float] = defaultdict(float)
        for bs in batches:
            for position, ((a, b), w, g) in enumerate(zip(layers, weights, grads, strict=True)):
                A, G = inputs[(bs, a)], outs[(bs, b)]
                t0 = time.perf_counter()
                np.matmul(A, w, out=G)
                t1 = time.perf_counter()
                np.matmul(A.T, G, out=g)
                t2 = time.perf_counter()
                if position > 0:
                    np.matmul(G, w.T, out=back[(bs, a)])
                t3 = time.perf_counter()
                spent[f"forward:{position}"] += t1 - t0
                spent[f"weight_grad:{position}"] += t2 - t1
                spent[f"input_grad:{position}"] += t3 - t2
        if not best or sum(spent.values()) < sum(best.values()):
            best = dict(spent)
    for kind in ("forward", "weight_grad", "input_grad"):
        best[kind] = sum(best[f"{kind}:{i}"] for i in range(len(layers)))
    total = best["forward"] + best["weight_grad"] + best["input_grad"]
    flops = 0.0
    for position, (a, b) in enumerate(layers):
        products = 3 if position > 0 else 2
        flops += products * 2.0 * a * b * n_samples
    return {**best, "flops": flops, "rate": flops / total}


# --- the case ----------------------------------------------------------------------------


def _mlp_runners(
    X: NDArray[np.float32],
    y: NDArray[np.int64],
    hidden: Sequence[int],
    torch: Any,
    neural_network: Any,
    floors: list[dict[str, float]],
) -> dict[str, Callable[[], Mapping[str, float]]]:
    """One runner per library (a new seed each run), and the GEMM floor's (into ``floors``)."""
    seeds = iter(range(1, 1_000_000))
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]

    def floor_run() -> dict[str, float]:
        floors.append(gemm_floor(X.shape[0], sizes))
        return {"rate": floors[-1]["rate"]}

    runners: dict[str, Callable[[], Mapping[str, float]]] = {
        "handnet": lambda: {"time": handnet_epoch(X, y, hidden, next(seeds))}
    }
    if torch is not None:
        runners["torch"] = lambda: {"time": torch_epoch(torch, X, y, hidden, next(seeds))}
        if torch_fused_adam(torch):
            runners["torch fused"] = lambda: {
                "time": torch_epoch(torch, X, y, hidden, next(seeds), fused=True)
            }
    if neural_network is not None:
        runners["sklearn"] = lambda: {
            "time": sklearn_epoch(neural_network, X, y, hidden, next(seeds))
        }
    runners["lean"] = lambda: {"time": lean_numpy_epoch(X, y, hidden, next(seeds))}
    runners["floor"] = floor_run
    return runners


def mlp_case(
    repeats: int,
    n_samples: int = 60_000,
    architectures: Sequence[Sequence[int]] = ((128,), (256, 128)),
    warmup: bool = True,
) -> CaseResult:
    """One Adam epoch per library and architecture, against the GEMM floor."""
    X, y = make_mlp_data(n_samples)
    n_features, n_classes = X.shape[1], int(y.max()) + 1
    torch = optional_import("torch")
    neural_network = optional_import("sklearn.neural_network")
    result = CaseResult(
        "mlp",
        f"MLP: {n_samples:,} x {n_features} float32, {n_classes} classes, ReLU, batch "
        f"{BATCH_SIZE}, Adam {LEARNING_RATE:g}, one epoch",
        ["architecture", "run", "median epoch", "best epoch", "x floor", "x torch"],
    )
    if torch is None:
        result.notes.append("PyTorch is not installed: its column is skipped.")
    else:
        torch.set_num_threads(_common.THREADS)
    if neural_network is None:
        result.notes.append("scikit-learn is not installed: its MLPClassifier is skipped.")
    for hidden in architectures:
        sizes = [n_features, *hidden, n_classes]
        arch = architecture_name(sizes)
        floors: list[dict[str, float]] = []
        runners = _mlp_runners(X, y, hidden, torch, neural_network, floors)
        times = alternate(runners, repeats, warmup)
        # Medians, as for the libraries: the floor is what the products take in a
        # typical repetition of this run, not in its luckiest.
        rate = median([f["rate"] for f in floors])
        needed_flops = floors[0]["flops"]
        floor = needed_flops / rate
        gemm_only = median([f["forward"] + f["weight_grad"] + f["input_grad"] for f in floors])
        medians = {
            name: median(values["time"]) for name, values in times.items() if name != "floor"
        }
        t_torch = min(medians.get("torch", math.nan), medians.get("torch fused", math.nan))
        labels = {
            "handnet": "handnet `MLPClassifier`",
            "torch": "PyTorch `nn.Sequential` + Adam",
            "torch fused": "PyTorch `nn.Sequential` + `Adam(fused=True)`",
            "sklearn": "scikit-learn `MLPClassifier` (float32)",
            "lean": "(reference: a lean hand-written NumPy loop, same math)",
        }
        for name, t in medians.items():
            result.rows.append(
                [
                    arch,
                    labels[name],
                    seconds(t),
                    seconds(min(times[name]["time"])),
                    f"{t / floor:.2f}",
                    f"{t / t_torch:.2f}" if torch else "-",
                ]
            )
        result.rows.append(
            [
                arch,
                f"floor: the needed products' {needed_flops / 1e9:.1f} GFLOP (no first-layer "
                f"input gradient) at {rate / 1e9:.1f} GFLOP/s",
                seconds(floor),
                "-",
                "1.00",
                f"{floor / t_torch:.2f}" if torch else "-",
            ]
        )
        result.rows.append(
            [
                arch,
                "(the epoch's needed GEMMs alone, timed: median)",
                seconds(gemm_only),
                "-",
                f"{gemm_only / floor:.2f}",
                "-",
            ]
        )
        result.checks.append(Check(f"mlp {arch} handnet/floor", medians["handnet"] / floor, 1.3))
        if torch is not None:
            result.checks.append(
                Check(f"mlp {arch} handnet/torch", medians["handnet"] / t_torch, 0.7)
            )
            result.checks.append(Check(f"mlp {arch} torch/floor", t_torch / floor, None))
        if "sklearn" in medians and torch is not None:
            result.checks.append(
                Check(f"mlp {arch} sklearn/torch", medians["sklearn"] / t_torch, None)
            )
    result.notes += [
        "Ratios use the medians; the best epoch is shown because on a shared machine the "
        "median of a few runs can still catch a busy spell.",
        "Each library's time is its whole one-epoch fit as a user calls it (validation, "
        "label encoding, initialisation included; PyTorch: model construction, "
        "`torch.from_numpy`, a `randperm` and index-gathered batches).",
        "The floor counts only the products an epoch computes: forward and weight gradient "
        "of each dense layer, input gradient of each but the first (nobody computes the "
        "input's gradient); its GEMM rate is measured in the same run on the epoch's exact "
        "per-batch shapes (best of 3 epochs' worth per repetition, median over repetitions).",
        "x torch: against the faster of PyTorch's Adam and `Adam(fused=True)` (its best "
        "standard setting, where this PyTorch has it on the CPU).",
    ]
    return result


# --- where handnet's epoch goes ------------------------------------------------------------


Category = str | Callable[[tuple[Any, ...]], str]
"""A profile category, or a function of the call's arguments that names one."""


class ExclusiveTimer:
    """Wraps functions so that each call's time, minus its wrapped callees', goes to a category."""

    def __init__(self) -> None:
        self.totals: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._children: list[float] = []

    def wrap(self, function: Callable[..., Any], category: Category) -> Callable[..., Any]:
        """A wrapper of ``function`` that books its exclusive time under ``category``."""
        children = self._children
        totals, calls = self.totals, self.calls
        clock = time.perf_counter

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            children.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = clock() - start
                inner = children.pop()
                name = category if isinstance(category, str) else category(args)
                totals[name] += elapsed - inner
                calls[name] += 1
                if children:
                    children[-1] += elapsed

        return wrapper


def _dense_category(kind: str) -> Callable[[tuple[Any, ...]], str]:
    """Names a dense layer's forward/backward category by its shape."""

    def name(args: tuple[Any, ...]) -> str:
        layer = args[0]
        shape = f"{getattr(layer, 'n_inputs', '?')}x{getattr(layer, 'n_outputs', '?')}"
        what = "GEMM + bias add" if kind == "forward" else "GEMMs + bias sum"
        return f"dense {shape} {kind} ({what})"

    return name


def _targets() -> list[tuple[Any, str, Category]]:
    """(owner, attribute, category) for every handnet piece the profile wraps, if it exists."""
    from handnet import layers, losses, models, optimizers, training
    from handnet.models import network_estimator, preparation
    from handnet.training import step

    found: list[tuple[Any, str, Category]] = [
        (layers.Dense, "forward", _dense_category("forward")),
        (layers.Dense, "backward", _dense_category("backward")),
        (layers.Activation, "forward", "activation forward (ReLU)"),
        (layers.Activation, "backward", "activation backward (ReLU mask)"),
        # Wrapped where they are called from (the module's own name for them).
        (step, "add_l2", "L2 penalty"),
        (step, "clip_gradient_norm", "gradient clipping"),
        (training.Trainer, "_gather", "batch gathering (np.take into buffers)"),
        (training.Trainer, "train_step", "step glue (train_step, compute_gradients)"),
        (training.Trainer, "compute_gradients", "step glue (train_step, compute_gradients)"),
        (training.Trainer, "run_epoch", "epoch loop (permutation, slicing, bookkeeping)"),
        (training.Trainer, "fit", "trainer fit (snapshots, finiteness checks, history)"),
        (network_estimator, "check_features", "input validation (`check_features`)"),
        (preparation, "check_features", "input validation (`check_features`)"),
        (network_estimator, "check_target", "input validation (`check_target`)"),
        (getattr(models, "_ClassifierMixin", None), "_encode_targets", "target encoding"),
        (getattr(models, "_NetworkEstimator", None), "_build_network", "network building"),
    ]
    for module in (losses, models):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and "__call__" in vars(value)
                and issubclass(value, losses.Loss)
            ):
                found.append((value, "__call__", "loss + dlogits (softmax cross-entropy)"))
    for value in vars(optimizers).values():
        if isinstance(value, type) and issubclass(value, optimizers.Optimizer):
            for name in ("step", "_update"):
                if name in vars(value):
                    found.append((value, name, "optimizer step (Adam)"))
    return [
        (owner, name, category)
        for owner, name, category in found
        if owner is not None and hasattr(owner, name)
    ]


@contextmanager
def instrumented(timer: ExclusiveTimer) -> Iterator[None]:
    """Wrap handnet's training pieces with ``timer`` for the duration of the block."""
    originals: list[tuple[Any, str, Any]] = []
    for owner, name, category in _targets():
        original = vars(owner).get(name)
        if not inspect.isfunction(original):
            continue  # inherited, a staticmethod, or gone: leave it alone
        originals.append((owner, name, original))
        setattr(owner, name, timer.wrap(original, category))
    try:
        yield
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


def _gemm_alone(category: str, floor: dict[str, float], sizes: Sequence[int]) -> float | None:
    """The standalone GEMM seconds that match a dense layer's profile category, if any."""
    for position, (a, b) in enumerate(itertools.pairwise(sizes)):
        if category.startswith(f"dense {a}x{b} forward"):
            return floor[f"forward:{position}"]
        if category.startswith(f"dense {a}x{b} backward"):
            return floor[f"weight_grad:{position}"] + floor[f"input_grad:{position}"]
    return None


SETUP = "rest of the fit outside the trainer"


def profile_mlp(
    n_samples: int = 60_000, hidden: Sequence[int] = (128,), repeats: int = 3
) -> CaseResult:
    """Where handnet's MLP epoch goes, piece by piece, next to a lean NumPy loop's pieces."""
    X, y = make_mlp_data(n_samples)
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    arch = architecture_name(sizes)
    handnet_epoch(X, y, hidden, SEED)  # warm up
    lean_numpy_epoch(X, y, hidden, SEED)
    pieces: defaultdict[str, list[float]] = defaultdict(list)
    calls: Counter[str] = Counter()
    lean_pieces: defaultdict[str, list[float]] = defaultdict(list)
    totals, plain, lean_totals, floors = [], [], [], []
    kernel_loops: list[float] = []
    for r in range(repeats):
        timer = ExclusiveTimer()
        with instrumented(timer):
            total = handnet_epoch(X, y, hidden, SEED + r)
        totals.append(total)
        timer.totals[SETUP] = total - sum(timer.totals.values())
        for category, spent in timer.totals.items():
            pieces[category].append(spent)
        calls = timer.calls
        plain.append(handnet_epoch(X, y, hidden, SEED + r))
        timers: dict[str, float] = {}
        lean_totals.append(lean_numpy_epoch(X, y, hidden, SEED + r, timers))
        lean_pieces["setup and loop (Python)"].append(lean_totals[-1] - sum(timers.values()))
        for piece, spent in timers.items():
            lean_pieces[piece].append(spent)
        floors.append(gemm_floor(n_samples, sizes, tries=1))
        kernel_loop = lean_kernel_epoch(X, y, hidden, SEED + r)
        if kernel_loop is not None:
            kernel_loops.append(kernel_loop)
    floor = {key: min(f[key] for f in floors) for key in floors[0]}
    medians = {category: median(values) for category, values in pieces.items()}
    accounted = sum(medians.values())

    result = CaseResult(
        "profile",
        f"Profile: where handnet's MLP epoch goes ({arch}, {n_samples:,} rows, float32)",
        ["piece", "exclusive time", "share", "calls", "GEMMs alone, same shapes"],
    )
    for category, spent in sorted(medians.items(), key=lambda item: -item[1]):
        alone = _gemm_alone(category, floor, sizes)
        result.rows.append(
            [
                category,
                seconds(spent),
                f"{spent / accounted:.1%}",
                str(calls.get(category, "-")),
                "-" if alone is None else seconds(alone),
            ]
        )
    gemm_total = floor["forward"] + floor["weight_grad"] + floor["input_grad"]
    result.rows.append(
        ["**sum (instrumented fit)**", seconds(accounted), "100%", "", seconds(gemm_total)]
    )
    lean_medians = {piece: median(values) for piece, values in lean_pieces.items()}
    lean_sum = sum(lean_medians.values())
    result.notes += [
        f"Medians over {repeats} instrumented fits (each piece's own median). Uninstrumented "
        f"fit, median of {repeats}: {seconds(median(plain))}; instrumented: "
        f"{seconds(median(totals))}.",
        "Exclusive time: a wrapped function's time minus that of the wrapped functions it "
        "calls (`step glue` is what `train_step`/`compute_gradients` do besides forward, "
        "loss, backward and the optimizer). The last column is the same layer's products "
        "timed alone and back to back in NumPy (best of the run); the rest of a dense "
        "layer's time is bias adds and sums, allocations, Python, and BLAS threads waking "
        "up after the single-threaded NumPy work between products.",
        "Recreate it with `python benchmarks/run.py --cases profile`.",
    ]
    if kernel_loops:
        overhead = median(plain) - median(kernel_loops)
        result.notes.append(
            f"The same epoch as a lean loop of handnet's own compiled kernels and the same "
            f"products, called straight (`lean_kernel_epoch`: no layers, no argument checks, "
            f"no training-loop bookkeeping), median of {len(kernel_loops)}: "
            f"{seconds(median(kernel_loops))}. The uninstrumented fit's {seconds(overhead)} "
            "over it is what handnet's layers, the kernels' checks and the loop's bookkeeping "
            "cost; the rest of the epoch outside the products is that loop's own work "
            "(gather, Adam, validation, the small passes)."
        )
    result.extra_markdown = [
        f"The same epoch as a lean hand-written NumPy loop (`lean_numpy_epoch` in "
        f"`benchmarks/_mlp.py`; median of {repeats}: {seconds(median(lean_totals))} with its "
        "clock reads), piece by piece, for comparison:",
        "",
        *markdown_table(
            ["piece", "time", "share"],
            [
                [piece, seconds(spent), f"{spent / lean_sum:.1%}"]
                for piece, spent in sorted(lean_medians.items(), key=lambda item: -item[1])
            ],
        ),
        "",
    ]
    profiler = cProfile.Profile()
    profiler.enable()
    handnet_epoch(X, y, hidden, SEED)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(15)
    text = stream.getvalue()
    start = text.find("   ncalls")
    result.extra_markdown += [
        "cProfile of one epoch (top 15 by own time; cProfile's per-call overhead inflates "
        "the Python-heavy entries):",
        "",
        "```",
        *[line.rstrip() for line in text[start:].strip().splitlines()],
        "```",
        "",
    ]
    return result
