"""Make the pictures the README and the docs show (committed under docs/images/).

    python scripts/make_figures.py            # writes docs/images/spirals.png and seed.png

* ``spirals.png``: a linear softmax model next to an MLP on the three-arm spirals
  (``handnet demo --model mlp``'s data): the linear model stays near chance, the
  network's decision boundary follows the arms.
* ``seed.png``: the seed's experiment (``handnet demo --plot``): loss and accuracy
  curves, and the learned ``w, b`` next to the teacher's, also rescaled to the
  teacher's norm (on separable data only the direction is learned).

Everything is seeded: running it again gives the same pictures (up to matplotlib's
version).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from handnet import plot
from handnet.datasets import make_spirals
from handnet.demo import quiet, run_logistic
from handnet.models import MLPClassifier, SoftmaxRegression

ROOT = Path(__file__).resolve().parents[1]


def spirals_figure(path: Path) -> None:
    """Linear softmax vs a 2-64-64-3 MLP on the spirals, test points over the regions."""
    X, y = make_spirals(600, n_classes=3, random_state=0)
    X_test, y_test = make_spirals(600, n_classes=3, random_state=10_000)
    linear = SoftmaxRegression(max_iter=500, tol=None, random_state=0)
    linear.fit(X, y)
    network = MLPClassifier((64, 64), learning_rate=0.01, batch_size=None, max_iter=500,
                            tol=None, random_state=0)
    network.fit(X, y)
    figure, axes = plot.new_figure(2)
    for ax, model, name in ((axes[0], linear, "softmax regression (linear)"),
                            (axes[1], network, "MLP 2-64-64-3, ReLU, Adam")):
        plot.plot_decision_boundary(
            model, X_test, y_test, ax=ax, resolution=250,
            title=f"{name}: test accuracy {model.score(X_test, y_test):.2f}",
        )
    figure.suptitle("three-arm spirals: what hidden layers buy (handnet demo --model mlp)")
    plot.save_figure(figure, path)


def seed_figure(path: Path) -> None:
    """The seed's experiment with its defaults (handnet demo --plot)."""
    run_logistic(print_line=quiet, plot=str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images",
                        help="folder to write into (default docs/images)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in (("spirals.png", spirals_figure), ("seed.png", seed_figure)):
        make(args.out / name)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
