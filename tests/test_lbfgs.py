"""L-BFGS: Rosenbrock, strong-Wolfe line search, regularised logistic regression vs GD."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from handnet import Dense, Sequential
from handnet.gradcheck import gradcheck
from handnet.nn.losses import BinaryCrossEntropy
from handnet.nn.penalties import add_l2
from handnet.optim.optimizers import LBFGS

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    """f = (1 - x)² + 100 (y - x²)², minimum 0 at (1, 1)."""
    a, b = float(x[0]), float(x[1])
    f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    g = np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
    return f, g


def test_rosenbrock_gradient_is_right() -> None:
    assert gradcheck(rosenbrock, np.array([-1.2, 1.0])).passed()


@pytest.mark.parametrize("start", [(-1.2, 1.0), (2.0, -1.5), (0.0, 3.0)])
def test_rosenbrock_reaches_the_minimum(start: tuple[float, float]) -> None:
    optimizer = LBFGS()
    x, f, g, converged = optimizer.minimize(rosenbrock, np.array(start), max_iter=200, gtol=1e-8)
    assert converged
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-6)
    assert f < 1e-12
    assert optimizer.iterations < 100
    assert float(np.max(np.abs(g))) <= 1e-6


class Recorder:
    """Wraps an objective and remembers every evaluation, keyed by the point's bytes."""

    def __init__(self, fun: Objective) -> None:
        self.fun = fun
        self.evaluations: dict[bytes, tuple[float, np.ndarray]] = {}

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.fun(x)
        self.evaluations[x.tobytes()] = (f, g.copy())
        return f, g


def accepted_steps_satisfy_strong_wolfe(
    fun: Objective, x0: np.ndarray, optimizer: LBFGS, max_iter: int
) -> int:
    """Run the optimizer, check every accepted step, return how many were checked.

    With s = x_{k+1} - x_k = a d the conditions, multiplied through by a > 0, read
    f(x_{k+1}) <= f(x_k) + c1 g_k·s and |g_{k+1}·s| <= c2 |g_k·s|.
    """
    recorder = Recorder(fun)
    iterates = [x0.copy()]

    def callback(iteration: int, f: float, x: np.ndarray) -> None:
        iterates.append(x.copy())

    optimizer.minimize(recorder, x0, max_iter=max_iter, gtol=1e-10, callback=callback)
    for before, after in itertools.pairwise(iterates):
        f0, g0 = recorder.evaluations[before.tobytes()]
        f1, g1 = recorder.evaluations[after.tobytes()]  # the accepted point was evaluated
        s = after - before
        slope0 = float(g0 @ s)
        assert slope0 < 0, "not a descent direction"
        assert f1 <= f0 + optimizer.c1 * slope0, "sufficient decrease violated"
        assert abs(float(g1 @ s)) <= optimizer.c2 * abs(slope0), "curvature violated"
    return len(iterates) - 1


def test_line_search_steps_satisfy_strong_wolfe_on_rosenbrock() -> None:
    n = accepted_steps_satisfy_strong_wolfe(rosenbrock, np.array([-1.2, 1.0]), LBFGS(), 100)
    assert n > 10


def test_line_search_with_tight_curvature_condition() -> None:
    """c2 = 0.1 (an almost exact line search) makes the zoom phase work."""
    optimizer = LBFGS(c2=0.1)
    n = accepted_steps_satisfy_strong_wolfe(rosenbrock, np.array([-1.2, 1.0]), optimizer, 100)
    assert n > 10


# --- L2-regularised logistic regression ----------------------------------------------------


def logistic_problem(l2: float = 1e-3) -> tuple[Objective, int, float]:
    """Objective of a one-layer net + BCE + L2 as a function of the flat parameters.

    Returns the objective, the number of parameters and a Lipschitz constant of its
    gradient (max eigenvalue of [X 1]ᵀ[X 1] / (4n) + l2), the step 1/L being the
    classic safe step for gradient descent.
    """
    rng = np.random.default_rng(0)
    n, d = 200, 5
    # Features on different scales (a seeded Gaussian): an ill-conditioned problem,
    # as real unscaled data is. Labels: a noisy linear rule, so the classes overlap
    # and the regularised optimum is finite and unique.
    X = rng.standard_normal((n, d)) * np.array([1.0, 2.0, 0.5, 0.2, 3.0])
    w_true = rng.standard_normal(d)
    y = ((X @ w_true + 0.5 * rng.standard_normal(n)) > 0).astype(float).reshape(-1, 1)
    assert 0.2 < y.mean() < 0.8
    network = Sequential([Dense(d, 1, init="zeros")])
    loss = BinaryCrossEntropy()

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        network.flat_parameters[...] = theta
        value, dlogits = loss(network.forward(X), y)
        network.backward(dlogits)
        value += add_l2(network.weights, network.weight_gradients, l2)
        return value, network.flat_gradients.copy()

    design = np.hstack([X, np.ones((n, 1))])
    lipschitz = float(np.linalg.eigvalsh(design.T @ design / n).max()) / 4 + l2
    return objective, network.n_parameters, lipschitz


def test_logistic_objective_gradient_is_right() -> None:
    objective, n_params, _ = logistic_problem()
    x = np.random.default_rng(1).standard_normal(n_params) * 0.3
    assert gradcheck(objective, x).passed()


def test_lbfgs_beats_gradient_descent_on_logistic_regression() -> None:
    objective, n_params, lipschitz = logistic_problem()
    optimizer = LBFGS()
    _, f, g, converged = optimizer.minimize(objective, np.zeros(n_params), max_iter=200, gtol=1e-6)
    assert converged
    assert float(np.max(np.abs(g))) <= 1e-6
    lbfgs_iterations = optimizer.iterations
    assert lbfgs_iterations <= 50

    # Plain gradient descent with the safe step 1/L, for 5000 iterations (over 100 times
    # as many as L-BFGS needed).
    theta = np.zeros(n_params)
    gd_iterations = 5000
    assert gd_iterations >= 100 * lbfgs_iterations
    for _ in range(gd_iterations):
        f_gd, g_gd = objective(theta)
        theta -= g_gd / lipschitz
    f_gd, g_gd = objective(theta)
    assert float(np.max(np.abs(g_gd))) > 1e-6  # still not there
    assert f <= f_gd < f + 1e-4  # GD does descend towards the same minimum: a fair race


def test_lbfgs_accepted_steps_on_logistic_regression_satisfy_strong_wolfe() -> None:
    objective, n_params, _ = logistic_problem()
    n = accepted_steps_satisfy_strong_wolfe(objective, np.zeros(n_params), LBFGS(), 30)
    assert n >= 10


def test_quadratic_is_solved_in_few_iterations() -> None:
    """An ill-conditioned convex quadratic (condition number about 1e3) is solved."""
    rng = np.random.default_rng(3)
    M = rng.standard_normal((6, 6))
    A = M @ M.T + np.diag(np.logspace(0, 3, 6))
    b = rng.standard_normal(6)

    def quadratic(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(0.5 * x @ A @ x - b @ x), A @ x - b

    optimizer = LBFGS(memory=10)
    x, _, _, converged = optimizer.minimize(quadratic, np.zeros(6), max_iter=100, gtol=1e-9)
    assert converged
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-7, atol=1e-9)
    assert optimizer.iterations <= 50


def test_minimize_does_not_modify_x0_and_stops_at_a_minimum() -> None:
    x0 = np.array([-1.2, 1.0])
    LBFGS().minimize(rosenbrock, x0, max_iter=5)
    np.testing.assert_array_equal(x0, [-1.2, 1.0])
    optimizer = LBFGS()
    x, f, _, converged = optimizer.minimize(rosenbrock, np.array([1.0, 1.0]))
    assert converged and optimizer.iterations == 0 and f == 0.0
    np.testing.assert_array_equal(x, [1.0, 1.0])


def test_callback_can_stop_and_reset_clears_memory() -> None:
    optimizer = LBFGS()
    seen: list[int] = []

    def stop_after_three(iteration: int, f: float, x: np.ndarray) -> bool:
        seen.append(iteration)
        return iteration >= 3

    _, _, _, converged = optimizer.minimize(
        rosenbrock, np.array([-1.2, 1.0]), callback=stop_after_three
    )
    assert seen == [1, 2, 3] and not converged
    assert optimizer.s and optimizer.iterations == 3
    optimizer.reset()
    assert optimizer.s == [] and optimizer.y == [] and optimizer.iterations == 0


def test_direction_without_memory_is_steepest_descent() -> None:
    g = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(LBFGS().direction(g), -g)


# --- a failed line search: a minimum, or a stall --------------------------------------------


def _unscaled_features() -> tuple[np.ndarray, np.ndarray]:
    """Two features in the tens of thousands and the millions (an income and a population)."""
    rng = np.random.default_rng(0)
    income = rng.normal(5e4, 1e4, 500)
    population = rng.normal(1e6, 3e5, 500)
    noise = 0.5 * rng.normal(size=500)
    y = ((income - 5e4) / 1e4 + (population - 1e6) / 3e5 + noise > 0).astype(int)
    return np.c_[income, population], y


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_a_stalled_line_search_warns_instead_of_claiming_convergence(scale: float) -> None:
    """Unscaled features: no step lowers the badly conditioned loss long before its minimum.
    That stop was reported as convergence, silently, with a model below chance (and at
    x 1e4, never trained at all)."""
    import handnet

    X, y = _unscaled_features()
    with pytest.warns(handnet.ConvergenceWarning, match="scale the features"):
        stalled = handnet.LogisticRegression().fit(X * scale, y)
    assert stalled.score(X * scale, y) < 0.6  # far from the 0.86 of standardized features
    standardized = (X - X.mean(axis=0)) / X.std(axis=0)
    scaled = handnet.LogisticRegression().fit(standardized, y)  # no warning (errors here)
    assert scaled.score(standardized, y) > 0.8


def test_a_failed_line_search_at_the_minimum_is_convergence() -> None:
    """At the minimum, to rounding, no step can lower the loss: that stop is convergence."""
    matrix = np.array([[3.0, 1.0], [1.0, 2.0]])
    target = np.array([1.0, -1.0])

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        return 0.5 * float(x @ matrix @ x) - float(target @ x), matrix @ x - target

    solver = LBFGS()
    # gtol and ftol off (ftol < 0: no decrease is ever small enough): only the search stops it.
    x, _, _, converged = solver.minimize(fun, np.zeros(2), max_iter=200, gtol=0.0, ftol=-1.0)
    assert converged and solver.stop_reason == "line_search"
    np.testing.assert_allclose(x, np.linalg.solve(matrix, target), rtol=1e-12)


def test_a_stalled_line_search_is_not_convergence() -> None:
    """A loss no step can lower although its gradient is steep: a stall, not a minimum."""

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        # Rounded to whole numbers: flat near 0.18 for every small step, slope 0.6 there.
        return float(np.round(x @ x)), 2 * x

    solver = LBFGS()
    _, _, _, converged = solver.minimize(fun, np.array([0.3, 0.3]), max_iter=50, gtol=0.0)
    assert not converged and solver.stop_reason == "line_search"


def test_a_curvature_pair_of_the_wrong_sign_is_refused() -> None:
    """A file's L-BFGS memory: the recursion divides by s . y; only s . y > 0 is ever kept."""
    solver = LBFGS()
    good = {"iterations": 1, "n_evaluations": 2, "s": np.ones((1, 3)), "y": np.ones((1, 3))}
    solver.check_state_dict(good, 3, np.dtype(np.float64))
    for s_row in (np.zeros(3), -np.ones(3)):
        bad = {**good, "s": s_row[None, :]}
        with pytest.raises(ValueError, match=r"s \. y"):
            solver.check_state_dict(bad, 3, np.dtype(np.float64))
