"""``handnet playground``: a local web page to train networks and watch them learn."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import threading
import webbrowser
from typing import IO, Any

from .arguments import _FORMATTER, UsageError, _positive_float, _positive_int, _Subparsers

INSTALL_HINT = "pip install 'handnet[playground]'"


def _add_playground(subparsers: _Subparsers[argparse.ArgumentParser]) -> None:
    playground = subparsers.add_parser(
        "playground",
        help="train networks in the browser and watch every step (needs handnet[playground])",
        formatter_class=_FORMATTER,
        allow_abbrev=False,
        description=(
            "Start a local web server with the playground page: 2-D data sets, a network\n"
            "you build, and live views of its decision boundary, hidden units, weights,\n"
            "loss curves and the arrays of each training step. Training runs in this\n"
            "process on handnet's own classes. Ctrl-C stops the server.\n"
            f"Needs Starlette and uvicorn: {INSTALL_HINT}"
        ),
        epilog=(
            "examples:\n"
            "  handnet playground\n"
            "  handnet playground --port 8000 --no-browser"
        ),
    )
    playground.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1, this machine only)")
    playground.add_argument("--port", type=int, default=0,
                            help="port (default 0: a free one)")
    playground.add_argument("--no-browser", action="store_true",
                            help="do not open the page in a web browser")
    playground.add_argument("--allow-remote", action="store_true",
                            help="allow a --host other than loopback (anyone who can reach "
                            "it can use this machine's CPU)")
    playground.add_argument("--max-sessions", type=_positive_int, default=8,
                            help="browser tabs served at once (default 8)")
    playground.add_argument("--idle-minutes", type=_positive_float, default=10.0,
                            help="close a tab's session after this long without a message "
                            "(default 10)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _web_libraries() -> Any:
    """uvicorn, or a one-line error naming the extra to install."""
    from ..plot import MissingDependencyError

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise MissingDependencyError(
            f"the playground needs Starlette and uvicorn: {INSTALL_HINT}"
        ) from None
    return uvicorn


def _run_playground(args: argparse.Namespace, out: IO[str]) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    remote = not _is_loopback(args.host)
    if remote and not args.allow_remote:
        raise UsageError(
            f"--host {args.host} is not a loopback address: anyone who can reach it could use "
            "the playground; add --allow-remote if that is what you want"
        )
    uvicorn = _web_libraries()
    from ..playground.server import create_app
    from ..playground.settings import MAX_MESSAGE_BYTES

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    url = f"http://{shown}:{port}/"
    if remote:
        print(f"handnet playground: WARNING: listening on {args.host}, not just this machine: "
              "anyone who can reach it can train networks here (there is no password)",
              file=sys.stderr)
    app = create_app(args.max_sessions, args.idle_minutes * 60.0, allow_remote=remote)
    # ws_max_size: a WebSocket message larger than this is refused by the protocol layer,
    # before the app reads it (the app refuses anything over MAX_MESSAGE_BYTES anyway).
    config = uvicorn.Config(app, log_level="warning", lifespan="on",
                            ws_max_size=4 * MAX_MESSAGE_BYTES)
    server = uvicorn.Server(config)
    print(f"handnet playground: {url}  (Ctrl-C stops it)", file=out, flush=True)
    if not args.no_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])  # until Ctrl-C: uvicorn closes the sessions and stops
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled; the server has stopped cleanly
    finally:
        sock.close()
    print("handnet playground: stopped", file=out, flush=True)
    return 0
