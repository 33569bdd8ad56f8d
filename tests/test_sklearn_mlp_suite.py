"""scikit-learn's own MLP tests, run against :mod:`handnet.sklearn`.

``sklearn/neural_network/tests/test_mlp.py`` ships inside the scikit-learn wheel.
This test copies it from the installed scikit-learn into a temporary directory,
changes nothing but its import line::

    from sklearn.neural_network import MLPClassifier, MLPRegressor
    ->  from handnet.sklearn import MLPClassifier, MLPRegressor

and runs it with pytest in a subprocess, with scikit-learn's ``conftest`` loaded
as a plugin (its fixtures, e.g. ``global_random_seed``) and RuntimeWarnings,
DeprecationWarnings and FutureWarnings as errors (our own suite's
``filterwarnings = ["error"]`` is not applied: the copied file runs under
scikit-learn's expectations, which let e.g. a ``UserWarning`` pass).

Every test must pass except those listed in :data:`EXPECTED_FAILURES`, which
read scikit-learn's private internals; a listed test that starts passing fails
this test too, so the list stays honest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

import handnet  # noqa: E402

ORIGINAL_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
DROP_IN_IMPORT = "from handnet.sklearn import MLPClassifier, MLPRegressor"

#: Tests of test_mlp.py expected to fail, by name (all their parametrisations), with why.
EXPECTED_FAILURES: dict[str, str] = {
    "test_gradient": (
        "reads private internals: it calls scikit-learn's private "
        "_loss_grad_lbfgs(theta, X, Y, None, activations, deltas, coef_grads, "
        "intercept_grads), whose arguments are scikit-learn's work buffers. handnet's "
        "objective is a closure over a Sequential network; tests/test_sklearn_dropin.py "
        "checks its gradient (loss + scikit-learn-scaled L2) against central "
        "differences in float64 for every activation and output."
    ),
}


def _source() -> Path:
    return Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"


def _outcomes(report: Path) -> dict[str, str]:
    """``{test id: "passed" | "failed" | "skipped"}`` from a JUnit XML report."""
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        outcomes[case.attrib["name"]] = outcome
    return outcomes


def test_scikit_learn_mlp_tests_pass_on_handnet(tmp_path: Path) -> None:
    source = _source()
    if not source.is_file():
        pytest.skip(f"scikit-learn {sklearn.__version__} was installed without its tests")
    text = source.read_text(encoding="utf-8")
    assert text.count(ORIGINAL_IMPORT) == 1, "test_mlp.py's import line changed"
    (tmp_path / "test_mlp.py").write_text(
        text.replace(ORIGINAL_IMPORT, DROP_IN_IMPORT), encoding="utf-8"
    )
    # An empty configuration: neither this project's pytest settings nor any found
    # above the temporary directory apply.
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    report = tmp_path / "report.xml"
    # The handnet under test (this checkout), not whichever one is installed.
    package_root = str(Path(handnet.__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "pytest", "test_mlp.py",
        "-c", "pytest.ini", "--rootdir", str(tmp_path),
        "-p", "no:cacheprovider", "-p", "sklearn.conftest",
        "-W", "error::RuntimeWarning",
        "-W", "error::DeprecationWarning",
        "-W", "error::FutureWarning",
        "-q", "-rf", f"--junitxml={report}",
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    log = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode in (0, 1), f"pytest could not run the tests:\n{log}"
    outcomes = _outcomes(report)
    assert len(outcomes) >= 50, f"only {len(outcomes)} tests collected:\n{log}"

    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    unexpected = sorted(name for name in failed if name.split("[")[0] not in EXPECTED_FAILURES)
    assert not unexpected, f"scikit-learn's tests failing on handnet: {unexpected}\n{log}"
    fixed = sorted(
        name
        for name in EXPECTED_FAILURES
        if not any(failure.split("[")[0] == name for failure in failed)
    )
    assert not fixed, f"listed as failing but passed (remove from EXPECTED_FAILURES): {fixed}"
