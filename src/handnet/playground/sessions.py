"""One tab's run (:class:`Session`) and the set of them (:class:`SessionStore`).

No web imports here: the server (:mod:`.server`) only moves messages. A session holds
its data, a handnet model and where training stands; every step is the model's own
``partial_fit`` (:class:`~handnet.models.MLPClassifier`, :class:`~handnet.models.MLPRegressor`,
:class:`~handnet.models.LogisticRegression` or :class:`~handnet.models.SoftmaxRegression`).

The batch order is the session's: each epoch a permutation of the training rows from
``np.random.default_rng([seed, 1])``, cut into batches of ``batch_size`` (the last one
short); with ``batch_size`` 0 (or at least the training set) every step takes all the rows
in their order. The model is built with ``shuffle=False`` and ``batch_size=batch_size``,
so ``partial_fit`` on ``k`` consecutive batches of one epoch takes exactly those ``k``
steps: playing passes many batches per call (fast), the step button one (explained),
and both give the same numbers, bit for bit, as the downloaded script
(:func:`.script.reproduction_script`).
"""

from __future__ import annotations

import base64
import copy
import os
import secrets
import tempfile
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..exceptions import DivergenceError
from ..io import save
from ..nn.losses import get_loss
from ..nn.network import Sequential
from ..optim.optimizers import OPTIMIZERS, Optimizer
from .building import build_model
from .data import DATASETS, features, make_data, plane_bounds, split
from .explain import explain_step
from .frames import frame_payload, scores
from .script import reproduction_script
from .settings import OUTPUTS, PlaygroundError, Settings, parse_settings

Array = NDArray[np.float64]


class _NoUpdate(Optimizer):
    """An optimizer that leaves the parameters alone: a twin's first ``partial_fit`` builds
    the network (the model's initial one, drawn from the same seed) without changing it."""

    def step(self, pairs: Any) -> None:
        """Do nothing."""


class Session:
    """One tab's run: data, model, position in the batch order, curves.

    Parameters
    ----------
    settings : Settings
        Already checked (:func:`.settings.parse_settings`).
    """

    MAX_CURVE_POINTS = 400

    def __init__(self, settings: Settings) -> None:
        self.id = secrets.token_hex(8)
        self.settings = settings
        self.playing = False
        self.last_seen = time.monotonic()
        self.awaiting_ack = False
        self.last_frame = 0.0
        self.last_explained = 0.0
        self._reset()

    # --- building ---------------------------------------------------------------------

    def _reset(self) -> None:
        s = self.settings
        data = DATASETS[s.dataset]
        X, y = make_data(s.dataset, s.n_points, s.noise, s.seed)
        classification = data.task == "classification"
        self.points_train, self.points_test, self.y_train, self.y_test = split(
            X, y, s.test_fraction, s.seed, stratify=classification)
        self.F_train = features(self.points_train, s.features)
        self.F_test = features(self.points_test, s.features)
        self.classes = np.unique(y) if classification else None
        self.bounds = plane_bounds(X)
        self.model = build_model(s)
        twin = build_model(s, optimizer=_NoUpdate(s.learning_rate))
        self._partial_fit(twin, self.F_train[:1], self.y_train[:1], first=True)
        self.initial_network: Sequential = twin.network_
        self.loss = get_loss(OUTPUTS[s.output])
        n = len(self.F_train)
        self.batch = n if s.batch_size == 0 or s.batch_size >= n else s.batch_size
        self.batches_per_epoch = -(-n // self.batch)
        self.order_rng = np.random.default_rng([s.seed, 1])
        self.order: NDArray[np.intp] = np.arange(n)
        self.steps = 0
        self.position = self.batches_per_epoch  # a new epoch starts at the next step
        self.epoch = 0
        self.curve: list[list[float]] = []
        self.curve_every = 1
        self.panel: dict[str, Any] | None = None
        self.rate_window: list[tuple[float, int]] = []
        self.diverged: str | None = None

    def configure(self, settings: Settings) -> None:
        """Start afresh with new settings (paused); refused settings change nothing."""
        try:
            fresh = Session(settings)
        except PlaygroundError:
            raise
        except ValueError as error:  # a check of handnet's own (the model's hyperparameters)
            raise PlaygroundError(f"handnet refused these settings: {error}") from None
        kept = {"id": self.id, "last_seen": self.last_seen}
        self.__dict__.update(fresh.__dict__)
        self.__dict__.update(kept)

    def reset(self) -> None:
        """Start the same run again from step 0 (paused)."""
        self.configure(self.settings)

    @property
    def network(self) -> Sequential:
        """The network as it is now (the initial one before the first step)."""
        return self.model.network_ if self.steps else self.initial_network

    def _partial_fit(self, model: Any, X: Array, y: NDArray[Any], first: bool) -> None:
        if first and self.classes is not None:
            model.partial_fit(X, y, classes=self.classes)
        else:
            model.partial_fit(X, y)

    # --- training ---------------------------------------------------------------------

    def _rows(self, n_steps: int) -> tuple[NDArray[np.intp], int]:
        """The rows of the next ``n_steps`` batches (at most to the end of this epoch)."""
        if self.position >= self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
            if self.batch < len(self.order):
                self.order = self.order_rng.permutation(len(self.order))
        n_steps = min(n_steps, self.batches_per_epoch - self.position)
        start = self.position * self.batch
        rows = self.order[start : min(start + n_steps * self.batch, len(self.order))]
        self.position += n_steps
        return rows, n_steps

    def train(self, n_steps: int) -> int:
        """Take up to ``n_steps`` steps (fewer at an epoch's end); returns how many.

        Raises
        ------
        PlaygroundError
            When training diverges (the run is paused; the model keeps its last finite
            parameters).
        """
        rows, taken = self._rows(n_steps)
        self._fit_rows(rows, taken)
        return taken

    def _fit_rows(self, rows: NDArray[np.intp], taken: int) -> None:
        if self.diverged:
            raise PlaygroundError(self.diverged)
        try:
            self._partial_fit(self.model, self.F_train[rows], self.y_train[rows],
                              first=self.steps == 0)
        except DivergenceError as error:
            # The model keeps its last finite parameters, somewhere inside this call's
            # batches: the run cannot go on (nor be reproduced) from there.
            self.playing = False
            self.diverged = (f"training diverged after step {self.steps}: {error}; press reset "
                             "or change a setting (a smaller learning rate)")
            raise PlaygroundError(self.diverged) from None
        self.steps += taken
        self.rate_window.append((time.perf_counter(), taken))

    def train_for(self, seconds: float) -> int:
        """Train for about ``seconds``, in calls of as many batches as fit; returns the steps."""
        start = time.perf_counter()
        done = 0
        chunk = 1
        while True:
            t0 = time.perf_counter()
            done += self.train(chunk)
            elapsed = time.perf_counter() - t0
            now = time.perf_counter()
            if now - start >= seconds:
                return done
            # Grow the chunk toward the time left (each call has a fixed cost).
            per_step = elapsed / max(chunk, 1)
            chunk = int(min(max(1, (seconds - (now - start)) / max(per_step, 1e-6)), 4096))

    def steps_per_second(self) -> float:
        """Steps per second over the last second of training."""
        now = time.perf_counter()
        self.rate_window = [(t, n) for t, n in self.rate_window if now - t <= 1.0]
        if len(self.rate_window) < 2:
            return 0.0
        span = now - self.rate_window[0][0]
        return sum(n for _, n in self.rate_window[1:]) / max(span, 1e-9)

    def step_explained(self) -> dict[str, Any]:
        """One step, and the step panel that explains it (:func:`.explain.explain_step`)."""
        before = copy.deepcopy(self.network)
        rows, taken = self._rows(1)
        self._fit_rows(rows, taken)
        panel = explain_step(before, self.model.network_, self.F_train[rows],
                             self.targets(self.y_train[rows]), self.loss, self.settings.l2,
                             OPTIMIZERS[self.settings.optimizer])
        panel.update(step=self.steps, epoch=self.epoch, rows=rows.tolist())
        self.panel = panel
        return panel

    def targets(self, y: NDArray[Any]) -> Array:
        """``y`` as the loss takes it: a 0/1 column (sigmoid), one-hot rows (softmax), values."""
        if self.classes is None:
            return np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        index = np.searchsorted(self.classes, y)
        if self.settings.output == "sigmoid":
            return index.astype(np.float64).reshape(-1, 1)
        return np.eye(len(self.classes))[index]

    # --- what the page shows ----------------------------------------------------------

    def scores(self) -> dict[str, float]:
        """Loss and accuracy (R² for regression) on the training and test sets."""
        return scores(self, self.network)

    def record_curve(self, values: dict[str, float]) -> None:
        """Add a point to the loss curves, thinning them to at most ``MAX_CURVE_POINTS``."""
        if self.curve and self.steps - self.curve[-1][0] < self.curve_every:
            return
        self.curve.append([self.steps, values["train_loss"], values["test_loss"]])
        if len(self.curve) > self.MAX_CURVE_POINTS:
            self.curve = self.curve[::2]
            self.curve_every *= 2

    def frame(self) -> dict[str, Any]:
        """Everything the page redraws: boundary, units, weights, numbers, curves."""
        return frame_payload(self)

    def ready(self) -> dict[str, Any]:
        """What the page needs once per run: the points, the plane and the network's shape."""
        return {
            "type": "ready",
            "settings": self.settings.to_json(),
            "bounds": list(self.bounds),
            "task": self.settings.task,
            "classes": [] if self.classes is None else self.classes.tolist(),
            "train": {"points": np.round(self.points_train, 4).tolist(),
                      "y": np.round(self.y_train.astype(np.float64), 4).tolist()},
            "test": {"points": np.round(self.points_test, 4).tolist(),
                     "y": np.round(self.y_test.astype(np.float64), 4).tolist()},
            "model": type(self.model).__name__,
        }

    # --- take home --------------------------------------------------------------------

    def model_file(self) -> bytes:
        """The trained model as a handnet model file (:func:`handnet.save`)."""
        if not self.steps:
            raise PlaygroundError("take at least one step before downloading the model")
        handle, path = tempfile.mkstemp(suffix=".npz", prefix="handnet-playground-")
        os.close(handle)
        try:
            save(self.model, path)
            with open(path, "rb") as file:
                return file.read()
        finally:
            os.unlink(path)

    def script(self) -> str:
        """A Python script that reproduces this run (:func:`.script.reproduction_script`)."""
        return reproduction_script(self.settings, self.steps)




class SessionStore:
    """The open sessions, at most ``max_sessions``; those idle for ``idle_seconds`` are freed.

    Parameters
    ----------
    max_sessions : int
    idle_seconds : float
        A session that has sent nothing (not even a frame acknowledgement) for this long
        is closed by :meth:`expired`.
    """

    def __init__(self, max_sessions: int = 8, idle_seconds: float = 600.0) -> None:
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.sessions: dict[str, Session] = {}

    def open(self, settings: Settings | None = None) -> Session:
        """A new session (default settings), or :class:`PlaygroundError` when full."""
        if len(self.sessions) >= self.max_sessions:
            raise PlaygroundError(
                f"the playground is busy: {self.max_sessions} sessions are open (the limit); "
                "close a tab and reload"
            )
        session = Session(settings or Settings())
        self.sessions[session.id] = session
        return session

    def close(self, session: Session) -> None:
        """Forget ``session`` (its tab went away)."""
        self.sessions.pop(session.id, None)

    def expired(self, now: float | None = None) -> list[Session]:
        """The sessions idle for too long, removed from the store."""
        now = time.monotonic() if now is None else now
        idle = [s for s in self.sessions.values() if now - s.last_seen > self.idle_seconds]
        for session in idle:
            self.close(session)
        return idle


def handle(session: Session, message: dict[str, Any]) -> list[dict[str, Any]]:
    """Act on one checked message (:func:`.settings.parse_message`); returns the replies.

    Raises
    ------
    PlaygroundError
        For settings or requests that cannot be served (the session stays as it was).
    """
    session.last_seen = time.monotonic()
    kind = message["type"]
    if kind == "configure":
        settings = parse_settings(message.get("settings"))
        session.configure(settings)
        return [session.ready(), session.frame()]
    if kind == "reset":
        session.reset()
        return [session.ready(), session.frame()]
    if kind == "play":
        session.playing = True
        return []
    if kind == "pause":
        session.playing = False
        return [session.frame()]
    if kind == "step":
        session.playing = False
        panel = session.step_explained()
        return [{"type": "panel", **panel}, session.frame()]
    if kind == "ack":
        session.awaiting_ack = False
        return []
    what = message.get("what")
    if what == "model":
        return [{"type": "file", "name": "playground_model.npz",
                 "mime": "application/octet-stream",
                 "base64": base64.b64encode(session.model_file()).decode("ascii")}]
    if what == "script":
        if not session.steps or session.diverged:
            raise PlaygroundError("a script reproduces a run that took a step and did not "
                                  "diverge: take a step (or reset) first")
        return [{"type": "file", "name": "playground_run.py", "mime": "text/x-python",
                 "base64": base64.b64encode(session.script().encode()).decode("ascii")}]
    raise PlaygroundError(f"download what? 'model' or 'script', got {what!r}")
