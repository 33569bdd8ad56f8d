"""The take-home script: a Python file that reproduces a playground run with the library.

It builds the same data (:mod:`handnet.playground.data`), the same estimator with the
same seed, feeds it the same batches in the same order with ``partial_fit`` (one call
per epoch: ``partial_fit`` on ``k`` consecutive batches takes those ``k`` steps, as the
page's many small calls did), then prints the losses and accuracies the page showed,
digit for digit, and saves the model (:func:`handnet.save`).
"""

from __future__ import annotations

from .building import model_spec
from .settings import Settings


def _literal(value: object) -> str:
    """``value`` as Python source (tuples of one keep their comma)."""
    return repr(value)


def reproduction_script(settings: Settings, steps: int) -> str:
    """The source of a script that trains ``steps`` steps of the run ``settings`` describes.

    Parameters
    ----------
    settings : Settings
    steps : int
        Steps taken on the page when the script was asked for.

    Returns
    -------
    str
        Python source; it needs only handnet (and NumPy).
    """
    cls, kwargs = model_spec(settings)
    arguments = ",\n    ".join(f"{name}={_literal(value)}" for name, value in kwargs.items())
    s = settings
    classification = s.task == "classification"
    classes = "classes=classes" if classification else ""
    fit_args = f"X_train[rows], y_train[rows]{', ' + classes if classes else ''}"
    if classification:
        scores = (
            "    return (log_loss(y, model.predict_log_proba(X), model.classes_),\n"
            "            model.score(X, y))\n"
        )
        score_name = "accuracy"
    else:
        scores = (
            "    prediction = model.predict(X).reshape(-1, 1)\n"
            "    target = np.asarray(y, dtype=np.float64).reshape(-1, 1)\n"
            "    return MeanSquaredError().value(prediction, target), model.score(X, y)\n"
        )
        score_name = "r2"
    return f'''"""Reproduce a handnet playground run: {s.dataset}, {cls.__name__}, {steps} steps.

Written by ``handnet playground``. Run it with ``python {{this file}}``: it trains the
same model on the same data in the same order, prints the numbers the page showed at
step {steps}, and saves the model to playground_model.npz.
"""

import numpy as np

import handnet
from handnet.metrics import log_loss
from handnet.nn.losses import MeanSquaredError
from handnet.playground.data import features, make_data, split

STEPS = {steps}
SEED = {s.seed}
BATCH_SIZE = {s.batch_size}  # 0: all training rows in every step (full-batch GD)

# The data: {s.n_points} points of {s.dataset!r} with noise {s.noise!r}, split
# {1 - s.test_fraction:.0%} / {s.test_fraction:.0%} (seeded), then the input features.
X, y = make_data({s.dataset!r}, {s.n_points}, {s.noise!r}, SEED)
points_train, points_test, y_train, y_test = split(
    X, y, {s.test_fraction!r}, SEED, stratify={classification!r}
)
FEATURES = {list(s.features)!r}
X_train = features(points_train, FEATURES)
X_test = features(points_test, FEATURES)
classes = np.unique(y)

model = handnet.{cls.__name__}(
    {arguments},
)

# The batch order: every epoch a permutation of the training rows (seeded), cut into
# batches of BATCH_SIZE rows, the last one short. partial_fit on the rows of k
# batches takes those k steps (shuffle=False keeps their order).
n = len(X_train)
batch = n if BATCH_SIZE == 0 or BATCH_SIZE >= n else BATCH_SIZE
steps_per_epoch = -(-n // batch)
order_rng = np.random.default_rng([SEED, 1])
done = 0
while done < STEPS:
    order = order_rng.permutation(n) if batch < n else np.arange(n)
    take = min(steps_per_epoch, STEPS - done)
    if batch == n:
        for _ in range(take):  # full batch: one partial_fit call per step
            model.partial_fit({fit_args.replace("[rows]", "")})
    else:
        rows = order[: take * batch]
        model.partial_fit({fit_args})
    done += take


def scores(X, y):
    """The loss and the {score_name} of the model on X, y (as the page computes them)."""
{scores}

train_loss, train_{score_name} = scores(X_train, y_train)
test_loss, test_{score_name} = scores(X_test, y_test)
print(f"step {{STEPS}}")
print(f"train_loss {{train_loss!r}}")
print(f"test_loss {{test_loss!r}}")
print(f"train_score {{train_{score_name}!r}}")
print(f"test_score {{test_{score_name}!r}}")
handnet.save(model, "playground_model.npz")
'''
