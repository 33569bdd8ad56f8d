"""Registries: the one list of each kind of named thing (activations, losses, ...).

Each kind of building block lives in its own module with a registry beside it:
``activations.ACTIVATIONS``, ``losses.LOSSES``, ``initializers.INITIALIZERS``,
``optimizers.OPTIMIZERS``, ``schedules.SCHEDULES``. Everything that lists or looks
up blocks by name reads that registry: the models' checks of their
hyperparameters, the command line's choices, the model-file loader's whitelist
of what it may build. So a new block is its class (or function) plus one
``register`` call, in the library or in a user's own code::

    from handnet.optim.optimizers import OPTIMIZERS, Optimizer

    @OPTIMIZERS.register("sign_sgd")
    class SignSGD(Optimizer):
        ...

Loading a model file still builds only what is registered in the loading
process: a name is looked up, never imported or evaluated.

A registry is a ``dict`` (name -> entry), so reading it is plain dictionary
access; ``register`` adds an entry after checking its name, and ``lookup`` gives
a clear error for unknown names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

#: Names are written into model files and offered on the command line: lower-case
#: identifiers only.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Registry(dict[str, T]):
    """Entries of one kind by name.

    Parameters
    ----------
    kind : str
        What the entries are, for messages ("activation", "optimizer", ...).
    entries : iterable of (name, entry)
        The library's own entries.
    """

    def __init__(
        self, kind: str, entries: Iterable[tuple[str, T]] = (), pattern: str | None = None
    ) -> None:
        super().__init__()
        self.kind = kind
        #: What a name must look like (default: a lower-case identifier).
        self.pattern = _NAME if pattern is None else re.compile(pattern)
        for name, entry in entries:
            self.register(name, entry)

    def register(self, name: str, entry: Any = None, *, replace: bool = False) -> Any:
        """Add ``entry`` under ``name``; without ``entry``, a decorator that adds its target.

        Raises
        ------
        ValueError
            If ``name`` is not a lower-case identifier of at most 64 characters, or is
            taken and ``replace`` is false (a second registration under one name is
            usually a mistake; ``replace=True`` says it is not).
        """
        if not isinstance(name, str) or not self.pattern.fullmatch(name):
            shape = (
                "a lower-case identifier (letters, digits and underscores, starting with a "
                "letter, at most 64 characters)"
                if self.pattern is _NAME
                else f"a name matching {self.pattern.pattern!r}"
            )
            raise ValueError(f"a {self.kind} name must be {shape}, got {name!r}")
        if name in self and not replace:
            raise ValueError(
                f"{name!r} is already a registered {self.kind} ({self[name]!r}); pass "
                "replace=True to replace it"
            )

        def add(target: T) -> T:
            self[name] = target
            return target

        if entry is None:
            return add
        return add(entry)

    def lookup(self, name: Any) -> T:
        """The entry registered under ``name``, or a ``ValueError`` listing the names."""
        try:
            return self[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of {sorted(self)}"
            ) from None

    def names(self, where: Callable[[T], bool] | None = None) -> tuple[str, ...]:
        """The registered names in registration order (those whose entry passes ``where``)."""
        return tuple(name for name, entry in self.items() if where is None or where(entry))
