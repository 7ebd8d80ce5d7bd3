"""Cancelling a request whose caller has gone, for ASGI apps that read the body themselves.

uvicorn does not cancel a request when the client disconnects; it only answers
``http.disconnect`` on ``receive``. An abandoned MCP tool call would keep its upstream call
(and a concurrency slot) until the upstream answered or timed out. This wrapper watches for
the disconnect once the app has read the whole body, and cancels the request task if it comes
before the response starts. The REST router does the same inline (``rest._cancel_on_disconnect``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DISCONNECT_EXTENSION = "naftiko.disconnect"
"""The scope extension under which naftiko's HTTP server (``runtime/httpserver.py``) hands each
request a :class:`DisconnectSignal`, so an app learns of a caller that hung up from a callback
rather than from a task parked on ``receive()`` for the whole request."""


class DisconnectSignal:
    """Fired by the server, once, when the caller of one request has gone before its answer was
    complete (``http.disconnect`` on ``receive``). One callback at a time; registering after the
    fact calls it at once.

    ``loop``, when the server gives it, is the loop the request runs on: the app finds its task
    with ``asyncio.current_task(loop)``, which on Python 3.11 spares the ``getpid()`` system call
    that looking the running loop up costs (a fork check), once per request."""

    __slots__ = ("_callback", "gone", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.gone = False
        self.loop = loop
        self._callback: Callable[[], object] | None = None

    def on_disconnect(self, callback: Callable[[], object] | None) -> None:
        """Call ``callback`` when the caller goes (None: no longer)."""
        if callback is not None and self.gone:
            callback()
            return
        self._callback = callback

    def fire(self) -> None:
        if self.gone:
            return
        self.gone = True
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()


def disconnect_signal(scope: Scope) -> DisconnectSignal | None:
    """The request's :class:`DisconnectSignal` when its server provides one."""
    extensions = scope.get("extensions")
    return extensions.get(DISCONNECT_EXTENSION) if extensions else None


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        task = asyncio.current_task()
        assert task is not None  # an ASGI app always runs inside a task
        watcher: asyncio.Future | None = None
        gone = False
        answering = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            task.cancel()

        async def receive_body() -> Message:
            nonlocal watcher
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body") and watcher is None and not answering:
                watcher = asyncio.ensure_future(watch())
            return message

        async def send_answer(message: Message) -> None:
            nonlocal answering
            if message["type"] == "http.response.start":
                answering = True  # from here on the answer is going out: nothing left to save
                if watcher is not None:
                    watcher.cancel()
            await send(message)

        try:
            await self.app(scope, receive_body, send_answer)
        except asyncio.CancelledError:
            if not gone:
                raise
            task.uncancel()  # the caller left; nobody reads an answer
        finally:
            if watcher is not None:
                watcher.cancel()
