"""Training progress on stderr: a tqdm bar on a terminal, a log line now and then otherwise."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import IO, Any

from .text import _seconds


def _terminal_size(stream: IO[str]) -> tuple[int, int]:
    """Columns and rows of the terminal behind ``stream``, 0 when unknown."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 0, 0
    return size.columns, size.lines


class TrainingProgress:
    """A training callback that reports each epoch: a progress bar, log lines or nothing.

    Pass it to ``fit(..., callbacks=[progress])``; it is called as
    ``progress(trainer)`` after every epoch and reads ``trainer.epoch``,
    ``trainer.history.loss`` and ``trainer.history.validation_score``. Call
    :meth:`close` when training ends.

    Parameters
    ----------
    total : int
        The number of epochs asked for (training may stop earlier).
    mode : {"auto", "bar", "log", "none"}
        ``"auto"``: a tqdm bar when ``stream`` is a terminal, log lines
        otherwise. ``"bar"`` falls back to log lines when tqdm is not installed.
    stream : file, default sys.stderr
        Where to report (stderr keeps stdout free for results).
    lines : int, default 20
        In log mode, at most about this many lines over the whole run: the first
        and the last epoch always, in between every ``total // lines`` epochs
        but no more than one line per ``interval`` seconds.
    interval : float, default 1.0
    score_name : str
        What the validation score is.
    """

    def __init__(
        self,
        total: int,
        mode: str = "auto",
        stream: IO[str] | None = None,
        lines: int = 20,
        interval: float = 1.0,
        score_name: str = "validation accuracy",
    ) -> None:
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.score_name = score_name
        self.every = max(1, self.total // max(lines, 1))
        self.interval = float(interval)
        self.start = time.perf_counter()
        self.last_line = -math.inf
        self.last_epoch: tuple[int, float, float | None] | None = None
        self.printed_epoch = 0
        #: The epoch training started from (more than 0 for a resumed run), for the ETA.
        self.first_epoch: int | None = None
        self.bar: Any = None
        if mode == "auto":
            is_terminal = bool(getattr(self.stream, "isatty", lambda: False)())
            mode = "bar" if is_terminal else "log"
        if mode == "bar":
            try:
                from tqdm import tqdm
            except ImportError:
                mode = "log"  # tqdm is an optional extra: plain lines still say enough
            else:
                # Follow the terminal's size, unless it reports none (a fresh pty, some
                # CI runners): tqdm would then draw nothing at all.
                columns, rows = _terminal_size(self.stream)
                self.bar = tqdm(total=self.total, file=self.stream, unit="epoch", leave=True,
                                desc="training", dynamic_ncols=columns > 0,
                                ncols=None if columns > 0 else 80,
                                nrows=None if rows > 0 else 24)
        if mode not in ("bar", "log", "none"):
            raise ValueError(f"progress mode must be auto, bar, log or none, got {mode!r}")
        self.mode = mode

    def __call__(self, trainer: Any) -> None:
        epoch = int(trainer.epoch)
        history = trainer.history
        loss = history.loss[-1] if history.loss else float("nan")
        score = history.validation_score[-1] if history.validation_score else None
        if self.first_epoch is None:
            self.first_epoch = max(epoch - 1, 0)
            if self.bar is not None and self.first_epoch:
                # A resumed run: its earlier epochs are no part of this run's rate.
                self.bar.n = self.bar.last_print_n = self.bar.initial = self.first_epoch
        if self.bar is not None:
            postfix = {"objective": f"{loss:.4g}"}
            if score is not None:
                postfix["val"] = f"{score:.4f}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(epoch - self.bar.n)  # tqdm's ETA is the "time left"
            return
        if self.mode != "log":
            return
        self.last_epoch = (epoch, loss, score)
        now = time.perf_counter()
        due = epoch % self.every == 0 and now - self.last_line >= self.interval
        if epoch == self.first_epoch + 1 or epoch >= self.total or due:
            self._log(epoch, loss, score, now)

    def _log(self, epoch: int, loss: float, score: float | None, now: float) -> None:
        self.last_line = now
        self.printed_epoch = epoch
        elapsed = now - self.start
        line = f"epoch {epoch}/{self.total}: objective (loss + L2) {loss:.6g}"
        if score is not None:
            line += f", {self.score_name} {score:.4f}"
        line += f" ({_seconds(elapsed)}"
        if epoch < self.total:
            done = max(epoch - (self.first_epoch or 0), 1)
            line += f", about {_seconds(elapsed / done * (self.total - epoch))} left"
        print(line + ")", file=self.stream, flush=True)

    def close(self) -> None:
        """Finish the bar, or log the last epoch if training stopped between lines."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "log" and self.last_epoch and self.last_epoch[0] != self.printed_epoch:
            self._log(*self.last_epoch, time.perf_counter())
