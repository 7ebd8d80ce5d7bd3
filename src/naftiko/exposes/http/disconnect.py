"""Cancelling a request whose caller has gone, for ASGI apps that read the body themselves.

uvicorn does not cancel a request when the client disconnects; it only answers
``http.disconnect`` on ``receive``. An abandoned MCP tool call would keep its upstream call
(and a concurrency slot) until the upstream answered or timed out. This wrapper watches for
the disconnect once the app has read the whole body, and cancels the request task if it comes
before the response starts. The REST router arms the request's :class:`DisconnectSignal` instead
(``with``), or under another server a watcher with the same effect (:func:`cancel_on_disconnect`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from naftiko.errors import EngineError

DISCONNECT_EXTENSION = "naftiko.disconnect"
"""The scope extension under which naftiko's HTTP server (``runtime/httpserver.py``) hands each
request a :class:`DisconnectSignal`, so an app learns of a caller that hung up from a callback
rather than from a task parked on ``receive()`` for the whole request."""


class CallerGone(BaseException):
    """The caller disconnected while its request was being served. A BaseException, like the
    cancellation it replaces, so no ``except Exception`` on the way turns it into a 500."""


class Stopped(EngineError):
    """A request cancelled by the server itself: uvicorn's ``--grace`` ran out at shutdown. The
    caller still gets an answer, a 503, rather than a bare 500 and a traceback in the log."""

    status = 503
    title = "Service unavailable"


def settle_cancellation(kind: type[BaseException] | None, task: asyncio.Task[Any], gone: bool) -> None:
    """After ``with`` on a :class:`DisconnectSignal` (or a stand-in) ends with ``kind``: a
    cancellation is taken off ``task``, so the request can still answer, and becomes
    :class:`CallerGone` when the caller left (``gone``), else :class:`Stopped`."""
    if kind is not None and issubclass(kind, asyncio.CancelledError):
        task.uncancel()
        if gone:
            raise CallerGone from None
        raise Stopped("the server is shutting down and stopped this request before it finished") from None


class DisconnectSignal:
    """Fired by the server, once, when the caller of one request has gone before its answer was
    complete (``http.disconnect`` on ``receive``).

    ``with signal: await ...`` arms it: if the caller goes meanwhile, the task the request runs in
    is cancelled and :class:`CallerGone` raised (at once when it is gone already), so an upstream
    call nobody will read stops. The server that made the signal gives it the request's ``task``;
    otherwise the first ``with`` looks it up. A plain (not async) context manager that is the
    signal itself: no object, frame or callback per request. ``on_disconnect`` registers a
    callback instead (one at a time; registering after the fact calls it at once).

    ``loop``, when the server gives it, is the loop the request runs on: finding the task with
    ``asyncio.current_task(loop)`` spares the ``getpid()`` system call that looking the running loop
    up costs on Python 3.11 (a fork check)."""

    __slots__ = ("_callback", "armed", "found_task", "gone", "loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.gone = False
        self.loop = loop
        self.armed = False
        self.task: asyncio.Task[None] | None = None
        self.found_task = False
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
        if self.armed and self.task is not None:
            self.task.cancel()
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    def __enter__(self) -> DisconnectSignal:
        if self.gone:  # gone already: run nothing (and leave no cancellation pending on the task)
            raise CallerGone
        if self.task is None:  # not given by the server: looked up, and dropped again on the way out
            self.task = asyncio.current_task(self.loop)
            if self.task is None:
                raise RuntimeError("a DisconnectSignal is armed inside the request's task")
            self.found_task = True
        self.armed = True
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self.armed = False
        task = self.task
        if self.found_task:  # the task holds the scope, which holds this signal: no cycle left behind
            self.task, self.found_task = None, False
        if kind is not None and task is not None:
            settle_cancellation(kind, task, self.gone)


def disconnect_signal(scope: Scope) -> DisconnectSignal | None:
    """The request's :class:`DisconnectSignal` when its server provides one."""
    extensions = scope.get("extensions")
    return extensions.get(DISCONNECT_EXTENSION) if extensions else None


async def until_disconnect(receive: Receive) -> None:
    """Read ``receive`` until it says the caller has gone."""
    while (await receive())["type"] != "http.disconnect":
        pass


class WatchDisconnect:
    """What a :class:`DisconnectSignal` does for a request (``with``: its task cancelled and
    :class:`CallerGone` raised if the caller goes meanwhile), under a server that gives none:
    uvicorn does not cancel a request on disconnect by itself, it only reports
    ``http.disconnect`` on ``receive``, so a watcher task waits on ``receive`` while the body is
    read already."""

    __slots__ = ("gone", "receive", "task", "watcher")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        if task is None:  # always inside the request's task
            raise RuntimeError("WatchDisconnect needs a running task")
        self.task = task
        self.receive = receive
        self.gone = False
        self.watcher: asyncio.Future[None] | None = None

    async def _watch(self) -> None:
        await until_disconnect(self.receive)
        self.gone = True
        self.task.cancel()

    def __enter__(self) -> WatchDisconnect:
        self.watcher = asyncio.ensure_future(self._watch())
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        settle_cancellation(kind, self.task, self.gone)


def cancel_on_disconnect(scope: Scope, receive: Receive) -> DisconnectSignal | WatchDisconnect:
    """``with cancel_on_disconnect(scope, receive): await ...``: the awaited call, and with it
    the upstream call, is cancelled if the caller disconnects first (the body is read already), and
    :class:`CallerGone` raised. naftiko's server hands each request a :class:`DisconnectSignal`,
    armed here with no object made; under another server a watcher does it. A cancellation by
    the server itself (``--grace`` running out at shutdown) becomes :class:`Stopped`, a 503."""
    signal = disconnect_signal(scope)
    return signal if signal is not None else WatchDisconnect(receive)


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
            await until_disconnect(receive)
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
