r"""Toy data sets, splitting, scaling and MNIST-style IDX files.

Synthetic data with a known answer is the quickest way to check that a network
learns what it should:

* :func:`make_logistic` draws Gaussian features and labels them with a fixed
  logistic teacher :math:`y = [\sigma(x \cdot w + b) \ge \tfrac12]` (or a
  Bernoulli draw from :math:`\sigma`), so a one-layer network can recover
  :math:`(w, b)` exactly; :data:`TEACHER_WEIGHTS` and :data:`TEACHER_BIAS` are
  the tutorial "seed" experiment's teacher.
* :func:`make_softmax` does the same for ``K`` classes with a softmax teacher.
* :func:`make_xor`, :func:`make_circles`, :func:`make_moons` and
  :func:`make_spirals` are 2-D sets that no linear model separates, for showing
  what hidden layers buy.

Helpers: :func:`one_hot`, :func:`train_test_split`, :class:`Standardizer` /
:func:`standardize`, and :func:`load_idx` / :func:`save_idx` / :func:`load_mnist`
for the IDX format MNIST is distributed in.

Every random draw goes through ``np.random.default_rng(random_state)``, so an
int seed fixes the output, a ``Generator`` is advanced in place, and the global
NumPy RNG is never touched. No function modifies the arrays it is given.

The package, one concern a module: ``_teachers`` (the seed's logistic and softmax
teachers), ``_synthetic`` (the 2-D sets), ``_splits`` (one-hot labels and the
train/test split), ``_scaling`` (standardisation), ``_idx`` (IDX/MNIST files) and
``_checks`` (the argument checks and types they share).
"""

from __future__ import annotations

from ._checks import PathType as PathType
from ._checks import RandomState as RandomState
from ._idx import _read_idx as _read_idx
from ._idx import load_idx, load_mnist, save_idx
from ._scaling import Standardizer, standardize
from ._splits import one_hot, train_test_split
from ._synthetic import make_circles, make_moons, make_spirals, make_xor
from ._teachers import TEACHER_BIAS, TEACHER_WEIGHTS, make_logistic, make_softmax

__all__ = [
    "TEACHER_BIAS",
    "TEACHER_WEIGHTS",
    "Standardizer",
    "load_idx",
    "load_mnist",
    "make_circles",
    "make_logistic",
    "make_moons",
    "make_softmax",
    "make_spirals",
    "make_xor",
    "one_hot",
    "save_idx",
    "standardize",
    "train_test_split",
]
