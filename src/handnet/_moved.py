"""Module paths from before the subpackages, kept importable.

handnet's modules once sat side by side in the package (``handnet.layers``,
``handnet.optimizers``, ...); they now live in subpackages by role
(:mod:`handnet.nn`, :mod:`handnet.optim`, :mod:`handnet.data`, ...). User code,
pickles and docs that name an old path still work: importing it gives the very
module object at the new path (one module, not a copy, so patching either name
patches both). The alias is resolved only when the old name is imported, so an
optional module (``handnet.cluster``, which needs dask) is not imported early.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

#: Old module path -> the module's path now.
MOVED_MODULES: dict[str, str] = {
    "handnet.activations": "handnet.nn.activations",
    "handnet.losses": "handnet.nn.losses",
    "handnet.layers": "handnet.nn.layers",
    "handnet.network": "handnet.nn.network",
    "handnet.conv": "handnet.nn.conv",
    "handnet.normalization": "handnet.nn.normalization",
    "handnet.residual": "handnet.nn.residual",
    "handnet.initializers": "handnet.nn.initializers",
    "handnet.penalties": "handnet.nn.penalties",
    "handnet.optimizers": "handnet.optim.optimizers",
    "handnet.schedules": "handnet.optim.schedules",
    "handnet.validation": "handnet.data.validation",
    "handnet.data_files": "handnet.data.files",
    "handnet.streaming": "handnet.data.streaming",
    "handnet.blocks": "handnet.data.blocks",
    "handnet.cluster": "handnet.data.cluster",
    "handnet.kernels": "handnet.training.kernels",
    "handnet.state": "handnet.training.state",
    "handnet.neural_net": "handnet.models.neural_net",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module already at its new path."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.target_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.target_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module ran when its new path was imported; running it again would
        # make a second copy of every class. Python has just set its __spec__ to the
        # alias's; the module's own spec goes back, so that its relative imports
        # resolve from its real package.
        module.__spec__ = self.target_spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of :data:`MOVED_MODULES`, and nothing else."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        new_path = MOVED_MODULES.get(fullname)
        if new_path is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new_path))


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once per process)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
