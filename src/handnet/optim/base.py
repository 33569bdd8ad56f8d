"""The optimizer contract: per-parameter state, ``step``, and state for checkpoints.

:class:`Optimizer` is what every update rule subclasses (:mod:`handnet.optim.optimizers`
for the stepping rules, :mod:`handnet.optim.lbfgs` for the full-batch line search); a
checkpoint stores :meth:`Optimizer.state_dict`, and a file's copy is checked by
:meth:`Optimizer.check_state_dict` before :meth:`Optimizer.load_state_dict` restores it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..data.validation import check_positive

Array = NDArray[np.floating]
State = dict[str, Any]


class Optimizer:
    """Base class: per-parameter state and the ``step`` loop.

    Parameters
    ----------
    learning_rate : float
        Step size :math:`\\eta`. The training loop's schedules change it between epochs.
    """

    #: Entries of :meth:`_init_state` that are scratch space, not state: a checkpoint
    #: leaves them out, and loading one makes them again.
    scratch_keys: ClassVar[tuple[str, ...]] = ()
    #: Whether the rule minimises the whole objective itself (see :class:`FullBatchOptimizer`).
    full_batch: ClassVar[bool] = False

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate: float = check_positive(learning_rate, "learning_rate")
        self.iterations = 0
        self.state: list[State] = []

    def step(self, pairs: Iterable[tuple[Array, Array]]) -> None:
        """Update every parameter in place from its gradient (one optimisation step)."""
        pairs = list(pairs)
        if not self.state:
            self.state = [self._init_state(p) for p, _ in pairs]
        elif len(self.state) != len(pairs):
            raise ValueError(
                f"this optimizer was started with {len(self.state)} parameters, "
                f"now given {len(pairs)}; call reset() to use it on another model"
            )
        self.iterations += 1
        for (param, grad), state in zip(pairs, self.state, strict=True):
            self._update(param, grad, state)

    def reset(self) -> None:
        """Forget all state (as if newly constructed with the same settings)."""
        self.iterations = 0
        self.state = []

    def _init_state(self, param: Array) -> State:
        return {}

    def _update(self, param: Array, grad: Array, state: State) -> None:
        raise NotImplementedError

    # --- checkpoints ---------------------------------------------------------------------

    def state_template(self, param: Array) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
        """What a checkpoint holds of this optimizer's state for ``param``: key -> (shape, dtype).

        Whatever :meth:`_init_state` makes, of any shape (per-element moments, one
        number per parameter vector, ...), less :attr:`scratch_keys`. Model files
        check a saved state against it before anything is restored.
        """
        return {
            key: (np.shape(value), np.asarray(value).dtype)
            for key, value in self._init_state(param).items()
            if key not in self.scratch_keys
        }

    def state_dict(self) -> dict[str, Any]:
        """Arrays and numbers that restore this optimizer exactly (for checkpoints)."""
        return {
            "iterations": self.iterations,
            "learning_rate": self.learning_rate,
            "state": [
                {k: np.array(v, copy=True) for k, v in s.items() if k not in self.scratch_keys}
                for s in self.state
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iterations = int(state["iterations"])
        self.learning_rate = float(state["learning_rate"])
        self.state = [{k: np.array(v, copy=True) for k, v in s.items()} for s in state["state"]]

    def check_state_dict(
        self, state: dict[str, Any], n_parameters: int, dtype: np.dtype[Any]
    ) -> None:
        """Raise ``ValueError`` unless ``state`` (from a file) fits this optimizer.

        The per-parameter state must be what :meth:`state_template` declares for
        a flat vector of ``n_parameters`` in ``dtype``: the same keys, shapes and
        dtypes, finite values. (The caller has checked the scalar entries.)
        """
        slots = state["state"]
        if not isinstance(slots, list) or len(slots) > 1:
            raise ValueError("state must be a list of at most one entry (the flat parameters)")
        template = self.state_template(np.zeros(n_parameters, dtype))
        for i, slot in enumerate(slots):
            if not isinstance(slot, dict) or set(slot) != set(template):
                keys = sorted(slot) if isinstance(slot, dict) else type(slot).__name__
                raise ValueError(f"state[{i}] has {keys}, expected {sorted(template)}")
            for key, value in slot.items():
                shape, expected_dtype = template[key]
                _check_state_array(value, f"state[{i}].{key}", shape, expected_dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


def _check_state_array(
    value: Any, where: str, shape: tuple[int, ...] | None, dtype: np.dtype[Any]
) -> None:
    """Refuse a saved state array of another shape (``None``: any 2-D) or dtype, or not finite."""
    fits = (
        isinstance(value, np.ndarray)
        and value.dtype == dtype
        and (value.ndim == 2 if shape is None else value.shape == shape)
    )
    if not fits:
        expected = "a 2-D array" if shape is None else f"shape {shape}"
        got = (
            f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray)
            else type(value).__name__
        )
        raise ValueError(f"{where} must be {dtype} of {expected}, got {got}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise ValueError(f"{where} holds NaN or infinite values")
