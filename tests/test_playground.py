"""``handnet playground`` without a browser: settings checks, sessions, the step panel,
the take-home script and model, the server's messages (Starlette's test client) and the
command line."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import handnet
from handnet.cli import main
from handnet.playground.data import DATASETS, FEATURES, make_data
from handnet.playground.sessions import Session, SessionStore, handle
from handnet.playground.settings import (
    MAX_HIDDEN_LAYERS,
    MAX_POINTS,
    MAX_UNITS,
    PlaygroundError,
    Settings,
    choices,
    parse_message,
    parse_settings,
)

ROOT = Path(__file__).resolve().parents[1]
WS = "ws://127.0.0.1/ws"


def settings(**changes: object) -> Settings:
    return parse_settings({"dataset": "spirals", "hidden": [8, 8], "n_points": 200, **changes})


# --- settings and messages --------------------------------------------------------------


def test_choices_come_from_the_registries() -> None:
    from handnet.nn.activations import hidden_activations
    from handnet.optim.optimizers import OPTIMIZERS

    offered = choices()
    # Every registered optimizer that steps per batch (the page steps one batch at a time).
    assert offered["optimizers"] == [n for n, c in OPTIMIZERS.items() if not c.full_batch]
    assert "adam" in offered["optimizers"] and "lbfgs" not in offered["optimizers"]
    assert offered["activations"] == list(hidden_activations())
    assert set(offered["datasets"]) == set(DATASETS)
    assert offered["features"] == list(FEATURES)
    assert parse_settings({}) == Settings()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not an object", "settings must be an object"),
        ({"colour": "red"}, "unknown setting"),
        ({"dataset": "mnist"}, "unknown data set"),
        ({"optimizer": "__import__('os')"}, "unknown optimizer"),
        ({"activation": "softmax"}, "unknown activation"),
        ({"features": ["x1", "x3"]}, "unknown feature"),
        ({"features": []}, "features must be a list"),
        ({"n_points": -5}, "n_points must be between"),
        ({"n_points": 10**12}, "n_points must be between"),
        ({"n_points": True}, "whole number"),
        ({"n_points": 12.5}, "whole number"),
        ({"hidden": [8] * (MAX_HIDDEN_LAYERS + 1)}, "at most"),
        ({"hidden": [MAX_UNITS + 1]}, "hidden layer size must be between"),
        ({"hidden": [0]}, "hidden layer size must be between"),
        ({"hidden": "8,8"}, "hidden must be a list"),
        ({"learning_rate": 0}, "learning_rate must be in"),
        ({"learning_rate": "fast"}, "must be a number"),
        ({"learning_rate": 1e308 * 10}, "finite"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"batch_size": MAX_POINTS + 1}, "batch_size must be between"),
        ({"dataset": "waves", "output": "sigmoid"}, "use 'identity'"),
        ({"dataset": "blobs", "output": "sigmoid"}, "use 'softmax'"),
        ({"hidden": [4], "output": "softmax"}, "use 'sigmoid'"),
    ],
)
def test_bad_settings_are_refused_with_a_sentence(raw: object, says: str) -> None:
    with pytest.raises(PlaygroundError, match=says):
        parse_settings(raw)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{bad json", "bad JSON"),
        ('{"type": "configure", "settings": {"learning_rate": NaN}}', "NaN is not a number"),
        ('{"type": "configure", "settings": {"noise": Infinity}}', "Infinity"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "exec", "code": "1"}', "unknown message type"),
        ('{"no": "type"}', "unknown message type"),
        ("[" * 100_000, "message too long"),
        ("[" * 5_000 + "]" * 5_000, "bad JSON"),  # nested past the recursion limit
    ],
)
def test_bad_messages_are_refused_with_a_sentence(text: str, says: str) -> None:
    with pytest.raises(PlaygroundError, match=says):
        parse_message(text)


def test_data_sets_are_seeded_and_sized() -> None:
    for name, data in DATASETS.items():
        X, y = make_data(name, 50, 0.1, seed=3)
        X2, y2 = make_data(name, 50, 0.1, seed=3)
        assert X.shape == (50, 2) and y.shape == (50,)
        assert np.array_equal(X, X2) and np.array_equal(y, y2)
        if data.task == "classification":
            assert len(np.unique(y)) == data.n_classes


# --- sessions ---------------------------------------------------------------------------


def test_many_steps_per_call_are_the_same_steps_bit_for_bit() -> None:
    one = Session(settings(dropout=0.2, l2=0.001))
    many = Session(settings(dropout=0.2, l2=0.001))
    for _ in range(60):
        one.train(1)
    while many.steps < 60:
        many.train(60 - many.steps)
    assert one.steps == many.steps == 60 and one.epoch == many.epoch == 5
    assert np.array_equal(one.model.network_.flat_parameters, many.model.network_.flat_parameters)


def test_the_initial_network_is_the_models_first_one() -> None:
    # With plain SGD, the first step moves the weights by -lr * gradient from the start.
    session = Session(settings(optimizer="sgd", learning_rate=0.1))
    before = session.network.flat_parameters.copy()
    panel = session.step_explained()
    after = session.model.network_
    assert np.allclose(after.flat_parameters, before - 0.1 * after.flat_gradients, atol=1e-15)
    assert panel["gradient_difference"] == 0.0


def test_step_panel_arrays_are_the_steps_arrays() -> None:
    session = Session(settings(dropout=0.25, l2=0.01, optimizer="sgd", learning_rate=0.05))
    session.train(7)
    before = copy.deepcopy(session.network)
    panel = session.step_explained()
    entries = {entry["name"]: entry for entry in panel["entries"]}
    X = session.F_train[panel["rows"]]
    dense = [layer for layer in before.layers if isinstance(layer, handnet.Dense)]
    z1 = X @ dense[0].weights + dense[0].bias
    assert entries["z1"]["shape"] == [len(X), 8]
    assert np.allclose(entries["z1"]["values"], z1[:4], atol=1e-6)
    assert np.allclose(entries["a1"]["values"], np.tanh(z1[:4]), atol=1e-6)
    assert panel["gradient_difference"] == 0.0
    # SGD: the update is -lr times the gradient the panel shows (L2 term included).
    assert np.allclose(np.asarray(entries["ΔW2"]["values"]),
                       -0.05 * np.asarray(entries["dW2"]["values"]), atol=2e-6)
    assert "handnet.nn.layers.Dense.forward" in entries["z1"]["function"]
    assert "add_l2" in entries["dW1"]["function"]
    assert panel["rule"] == "θ ← θ - η g"


@pytest.mark.parametrize(
    "changes",
    [
        {"dropout": 0.1, "l2": 0.001, "batch_size": 7},
        {"dataset": "blobs", "hidden": [], "output": "softmax", "optimizer": "momentum",
         "batch_size": 0},
        {"dataset": "linear", "hidden": [], "optimizer": "sgd", "batch_size": 1},
        {"dataset": "waves", "output": "identity", "optimizer": "rmsprop", "learning_rate": 0.01,
         "features": ["x1", "x2", "sin(x1)", "x1*x2"]},
    ],
)
def test_the_script_reproduces_the_run_exactly(changes: dict[str, object], tmp_path: Path) -> None:
    session = Session(settings(**changes))
    session.train_for(0.05)
    session.step_explained()
    session.train(3)
    values = session.scores()
    script = tmp_path / "run.py"
    script.write_text(session.script())
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, check=True)
    printed = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert int(printed["step"]) == session.steps
    for name in ("train_loss", "test_loss", "train_score", "test_score"):
        assert float(printed[name]) == values[name], name  # the same digits, not close ones
    saved = handnet.load(tmp_path / "playground_model.npz")
    assert np.array_equal(saved.network_.flat_parameters, session.model.network_.flat_parameters)


def test_the_downloaded_model_is_a_handnet_file(tmp_path: Path) -> None:
    session = Session(settings())
    with pytest.raises(PlaygroundError, match="at least one step"):
        session.model_file()
    session.train(5)
    (tmp_path / "m.npz").write_bytes(session.model_file())
    model = handnet.load(tmp_path / "m.npz")
    assert np.array_equal(model.predict(session.F_test), session.model.predict(session.F_test))


def test_divergence_pauses_with_a_message() -> None:
    session = Session(settings(dataset="waves", output="identity", optimizer="sgd",
                               learning_rate=10.0, hidden=[16, 16, 16], activation="relu"))
    session.playing = True
    with pytest.raises(PlaygroundError, match="diverged"):
        for _ in range(200):
            session.train(10)
    assert not session.playing
    assert all(math.isfinite(v) for v in session.frame()["weights"][0][0][0])
    with pytest.raises(PlaygroundError, match="press reset"):
        session.train(1)
    with pytest.raises(PlaygroundError, match="did not diverge"):
        handle(session, {"type": "download", "what": "script"})
    handle(session, {"type": "reset"})
    assert session.steps == 0 and session.train(1) == 1


def test_store_caps_sessions_and_frees_idle_ones() -> None:
    store = SessionStore(max_sessions=2, idle_seconds=60)
    first, second = store.open(), store.open()
    with pytest.raises(PlaygroundError, match="busy"):
        store.open()
    second.last_seen -= 120
    assert store.expired() == [second]
    assert list(store.sessions) == [first.id]
    handle(first, {"type": "configure", "settings": {"dataset": "moons"}})
    assert first.settings.dataset == "moons"
    with pytest.raises(PlaygroundError, match="unknown data set"):
        handle(first, {"type": "configure", "settings": {"dataset": "nope"}})
    assert first.settings.dataset == "moons"  # a refused change leaves the run as it was


# --- the server -------------------------------------------------------------------------


starlette = pytest.importorskip("starlette", reason="needs handnet[playground]")

# Starlette >= 1.x asks for the renamed "httpx2" client and warns when its test client
# runs on "httpx" (which older Starlette needs): either works for these tests, so that
# one deprecation, and nothing else, is not an error here.
_httpx_either = pytest.mark.filterwarnings(
    "ignore:Using `httpx` with `starlette.testclient` is deprecated"
)


def _client(**options: Any) -> Any:
    from starlette.testclient import TestClient

    from handnet.playground.server import create_app

    return TestClient(create_app(**options), base_url="http://127.0.0.1")


def _until(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(ws.receive_text())
        if message["type"] == kind:
            return message


@_httpx_either
def test_server_answers_bad_messages_and_keeps_serving() -> None:
    with _client(max_sessions=2) as client:
        page = client.get("/")
        assert page.status_code == 200 and "handnet playground" in page.text
        assert client.get("/static/app.js").status_code == 200
        with client.websocket_connect(WS) as ws:
            assert "adam" in _until(ws, "hello")["choices"]["optimizers"]
            _until(ws, "frame")
            for bad in ("{oops", '{"type": "step", "x": NaN}', '{"type": "rm -rf"}',
                        json.dumps({"type": "configure", "settings": {"hidden": [10**9]}}),
                        json.dumps({"type": "configure", "settings": {"learning_rate": -1}})):
                ws.send_text(bad)
                assert _until(ws, "error")["message"]
            ws.send_text(json.dumps({"type": "step"}))
            panel = _until(ws, "panel")
            assert panel["step"] == 1 and panel["gradient_difference"] == 0.0
            ws.send_text(json.dumps({"type": "download", "what": "script"}))
            assert _until(ws, "file")["name"] == "playground_run.py"
            with client.websocket_connect(WS) as second:
                _until(second, "frame")
                with client.websocket_connect(WS) as third:
                    assert "busy" in str(_until(third, "error")["message"])


@_httpx_either
def test_two_tabs_play_at_once_and_one_may_vanish() -> None:
    with _client() as client, client.websocket_connect(WS) as first:
        with client.websocket_connect(WS) as second:
            for ws in (first, second):
                _until(ws, "frame")
                ws.send_text(json.dumps({"type": "configure",
                                         "settings": {"dataset": "xor", "hidden": [4]}}))
                _until(ws, "ready")
                ws.send_text(json.dumps({"type": "play"}))
            for ws in (first, second):
                while _until(ws, "frame")["step"] == 0:
                    ws.send_text(json.dumps({"type": "ack"}))
                ws.send_text(json.dumps({"type": "ack"}))
        # The second tab closed while playing; the first goes on.
        frame = _until(first, "frame")
        first.send_text(json.dumps({"type": "ack"}))
        assert _until(first, "frame")["step"] > frame["step"]
        first.send_text(json.dumps({"type": "pause"}))


@_httpx_either
def test_idle_tabs_are_closed() -> None:
    with _client(idle_seconds=0.5) as client, client.websocket_connect(WS) as ws:
        message = _until(ws, "error")  # nothing sent for half a second
        assert "idle" in str(message["message"]) and message["fatal"]
        assert not client.app.state.playground.store.sessions


@_httpx_either
def test_server_refuses_other_sites_and_host_names() -> None:
    from starlette.websockets import WebSocketDisconnect

    with _client() as client:
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(
            WS, headers={"origin": "http://evil.example"}
        ) as ws:
            ws.receive_text()
        assert client.get("/", headers={"host": "evil.example"}).status_code == 400


# --- the command line -------------------------------------------------------------------


def test_cli_refuses_a_remote_host_without_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["playground", "--host", "0.0.0.0", "--no-browser"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_cli_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    assert main(["playground", "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'handnet[playground]'" in err and len(err.strip().splitlines()) == 1


def test_core_imports_without_the_web_libraries() -> None:
    code = (
        "import sys\n"
        "for name in ('starlette', 'uvicorn', 'websockets'): sys.modules[name] = None\n"
        "import handnet, handnet.cli, handnet.playground.sessions, handnet.playground.script\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "ok", result.stderr


def test_cli_serves_and_stops_on_ctrl_c() -> None:
    import signal

    process = subprocess.Popen(
        [sys.executable, "-m", "handnet", "playground", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("handnet playground: http://127.0.0.1:")
        url = line.split()[2]
        import urllib.request

        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"handnet playground" in response.read()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped" in out


def test_the_docs_name_what_exists() -> None:
    import importlib
    import re

    text = (ROOT / "docs" / "playground.md").read_text(encoding="utf-8")
    for name in set(re.findall(r"`(handnet(?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text)):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                target: object = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                target = getattr(target, attribute)
            break
    for image in re.findall(r"\]\((images/[^)]+)\)", text):
        assert (ROOT / "docs" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image
    assert "docs/images/playground_views.png" in (ROOT / "README.md").read_text(encoding="utf-8")
