"""The playground's web server: a Starlette (ASGI) app, one WebSocket per browser tab.

``GET /`` serves the page (``static/index.html``, with ``app.js`` and ``style.css``);
``/ws`` is the tab's session. Messages in both directions are JSON objects with a
``type`` (see :mod:`.settings` for what the page may send, :mod:`.frames` for a frame).

Training is decoupled from drawing: while a session plays, the server trains for
``TRAIN_SLICE`` seconds at a time (as many steps as fit, many per ``partial_fit`` call)
and sends a frame only once the page has acknowledged the previous one (``ack``), at
most ``MAX_FPS`` times a second. A slow page gets fewer frames; training does not wait.

Every message is checked (:func:`.settings.parse_message`); a bad one gets an ``error``
reply that the page shows, and the session (and every other) goes on. Sessions are
capped (:class:`.sessions.SessionStore`), idle ones are closed, the WebSocket refuses
other sites' pages (``Origin`` must be the server's own host), and the server answers
only to loopback host names unless it was started with ``allow_remote``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from .sessions import Session, SessionStore, handle
from .settings import PlaygroundError, choices, parse_message

STATIC = Path(__file__).parent / "static"
TRAIN_SLICE = 0.02
"""Seconds of training between two looks at the socket (other sessions train in between)."""
MAX_FPS = 30.0
ACK_TIMEOUT = 2.0
"""Seconds after which a frame is sent even if the last one was never acknowledged."""
EXPLAIN_EVERY = 1.0
"""While playing, one step in this many seconds is explained (the step panel, live)."""
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"]

logger = logging.getLogger("handnet.playground")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def dumps(message: dict[str, Any]) -> str:
    """A message as strict JSON."""
    try:
        return json.dumps(message, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), allow_nan=False)


class Playground:
    """The app's state: the sessions and their sockets.

    Parameters
    ----------
    max_sessions : int
    idle_seconds : float
    """

    def __init__(self, max_sessions: int = 8, idle_seconds: float = 600.0) -> None:
        self.store = SessionStore(max_sessions, idle_seconds)
        self.sockets: dict[str, WebSocket] = {}

    async def send(self, websocket: WebSocket, message: dict[str, Any]) -> None:
        """Send one message to a tab, as strict JSON."""
        await websocket.send_text(dumps(message))

    async def websocket(self, websocket: WebSocket) -> None:
        """One tab: open a session, answer its messages, train while it plays."""
        origin = websocket.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
            await websocket.close(code=1008)  # another site's page: refused
            return
        await websocket.accept()
        await self.send(websocket, {"type": "hello", "choices": choices()})
        try:
            session = self.store.open()
        except PlaygroundError as error:
            await self.send(websocket, {"type": "error", "message": str(error), "fatal": True})
            await websocket.close(code=1013)
            return
        self.sockets[session.id] = websocket
        player = asyncio.create_task(self.play(websocket, session))
        try:
            await self.send(websocket, session.ready())
            await self.send(websocket, session.frame())
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    break
                text = received.get("text")
                if text is None:
                    text = received.get("bytes") or b""
                await self.answer(websocket, session, text)
        except WebSocketDisconnect:
            pass
        finally:
            player.cancel()
            self.sockets.pop(session.id, None)
            self.store.close(session)

    async def answer(self, websocket: WebSocket, session: Session, text: str | bytes) -> None:
        """Reply to one message; a bad one gets an ``error`` reply, never a crash."""
        try:
            replies = handle(session, parse_message(text))
        except PlaygroundError as error:
            replies = [{"type": "error", "message": str(error)}]
        except Exception as error:  # a bug: say so on the page, keep serving
            logger.exception("handnet playground: error in a session")
            replies = [{"type": "error", "message": f"internal error: {type(error).__name__}: "
                        f"{error}"}]
        for reply in replies:
            await self.send(websocket, reply)

    async def play(self, websocket: WebSocket, session: Session) -> None:
        """While the session plays: train in slices, send frames the page is ready for."""
        try:
            await self._play(websocket, session)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the tab went away while a frame was on its way: the session is closed
        except Exception as error:  # a bug: log it, say so; the tab's messages still get answers
            logger.exception("handnet playground: error while playing")
            session.playing = False
            with contextlib.suppress(Exception):
                await self.send(websocket, {"type": "error", "message": "internal error while "
                                            f"training: {type(error).__name__}: {error}"})

    async def _play(self, websocket: WebSocket, session: Session) -> None:
        while True:
            if not session.playing:
                await asyncio.sleep(0.03)
                continue
            try:
                now = time.monotonic()
                if now - session.last_explained >= EXPLAIN_EVERY:
                    session.last_explained = now
                    session.step_explained()
                    await self.send(websocket, {"type": "panel", **(session.panel or {})})
                session.train_for(TRAIN_SLICE)
            except PlaygroundError as error:
                await self.send(websocket, {"type": "error", "message": str(error)})
                await self.send(websocket, session.frame())
                continue
            now = time.monotonic()
            waited = now - session.last_frame
            if waited >= 1.0 / MAX_FPS and (not session.awaiting_ack or waited > ACK_TIMEOUT):
                session.awaiting_ack = True
                session.last_frame = now
                await self.send(websocket, session.frame())
            await asyncio.sleep(0)  # let the other sessions and the messages in

    async def sweep(self, every: float = 10.0) -> None:
        """Close sessions idle for too long (their tab is gone or asleep)."""
        while True:
            await asyncio.sleep(every)
            for session in self.store.expired():
                websocket = self.sockets.pop(session.id, None)
                if websocket is not None:
                    with contextlib.suppress(Exception):
                        await self.send(websocket, {
                            "type": "error", "fatal": True,
                            "message": "this session was idle too long and was closed; reload "
                            "the page to start again"})
                        await websocket.close(code=1001)


def create_app(
    max_sessions: int = 8, idle_seconds: float = 600.0, allow_remote: bool = False
) -> Starlette:
    """The playground as an ASGI app.

    Parameters
    ----------
    max_sessions : int
        Tabs served at once; one more is told the playground is busy.
    idle_seconds : float
        A tab that sent nothing for this long is closed.
    allow_remote : bool
        Answer requests for any host name (default: loopback names only, which also
        keeps DNS-rebinding pages out).
    """
    playground = Playground(max_sessions, idle_seconds)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(playground.sweep(min(10.0, idle_seconds / 4)))
        try:
            yield
        finally:
            sweeper.cancel()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            WebSocketRoute("/ws", playground.websocket),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware,
                               allowed_hosts=["*"] if allow_remote else LOOPBACK_HOSTS)],
        lifespan=lifespan,
    )
    app.state.playground = playground
    return app
