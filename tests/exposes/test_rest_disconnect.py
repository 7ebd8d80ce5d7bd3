"""A REST caller that hangs up while its operation runs: the operation is cancelled and the
request recorded as a 499, whether the server tells the router through the request's disconnect
signal (naftiko's server) or only through ``receive`` (any other ASGI server); a caller already
gone when the operation would start gets no operation at all."""

from __future__ import annotations

import asyncio

import pytest

from conftest import FIXTURES
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.engine.result import JsonAnswer
from naftiko.exposes.http.disconnect import DISCONNECT_EXTENSION, DisconnectSignal
from naftiko.exposes.rest.router import build_rest_app


class _Blocking:
    """A unit that waits until cancelled, recording what happened."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False
        self.calls = 0

    async def invoke(self, inputs):
        self.calls += 1
        self.started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return JsonAnswer(200, {})


def _router():
    plan = compile_plan(load(str(FIXTURES / "resilience-hostile.yaml")), Options(environ={}, dry_run=True))
    app = build_rest_app(next(a for a in plan.adapters if a.kind == "rest"), plan.secrets.mask)
    route, _ = app.match("/items/1")
    assert route is not None
    unit = _Blocking()
    object.__setattr__(route.operations["GET"], "unit", unit)  # a frozen plan: swapped for this test only
    return app, unit


def _scope(**extra) -> dict:
    return {"type": "http", "method": "GET", "path": "/items/1", "raw_path": b"/items/1", "query_string": b"",
            "headers": [], "scheme": "http", "server": ("rest", 80), "client": ("127.0.0.1", 1), "root_path": "",
            **extra}


async def test_the_signal_cancels_the_operation():
    app, unit = _router()
    signal = DisconnectSignal()
    sent: list[dict] = []

    async def receive():  # naftiko's server: nothing arrives here, the signal says it
        await asyncio.sleep(10)

    async def send(message):
        sent.append(message)

    request = asyncio.create_task(app(_scope(extensions={DISCONNECT_EXTENSION: signal}), receive, send))
    await asyncio.wait_for(unit.started.wait(), 2)
    signal.fire()
    await asyncio.wait_for(request, 2)
    assert unit.cancelled and sent[0]["status"] == 499


async def test_without_a_signal_a_disconnect_on_receive_cancels_the_operation():
    app, unit = _router()
    gone = asyncio.Event()
    sent: list[dict] = []

    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    request = asyncio.create_task(app(_scope(), receive, send))
    await asyncio.wait_for(unit.started.wait(), 2)
    gone.set()
    await asyncio.wait_for(request, 2)
    assert unit.cancelled and sent[0]["status"] == 499


async def test_a_caller_gone_before_the_operation_starts_gets_no_operation():
    app, unit = _router()
    signal = DisconnectSignal()
    signal.fire()
    sent: list[dict] = []

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await asyncio.wait_for(app(_scope(extensions={DISCONNECT_EXTENSION: signal}), receive, send), 2)
    assert unit.calls == 0 and sent[0]["status"] == 499
    # and the task is left with no cancellation pending: the next await in it runs normally
    await asyncio.sleep(0)


@pytest.mark.parametrize("with_signal", [True, False])
async def test_a_request_the_server_cancels_still_gets_a_503(with_signal):
    """A cancellation that is not the caller leaving (uvicorn's ``--grace`` running out at
    shutdown) becomes a 503 problem the caller still receives; a signal fired only after the
    answer cancels nothing more."""
    app, unit = _router()
    signal = DisconnectSignal()
    sent: list[dict] = []

    async def receive():
        await asyncio.sleep(10)

    async def send(message):
        sent.append(message)

    scope = _scope(extensions={DISCONNECT_EXTENSION: signal}) if with_signal else _scope()
    request = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(unit.started.wait(), 2)
    request.cancel()
    await asyncio.wait_for(request, 2)  # answered, not cancelled
    assert unit.cancelled and sent[0]["status"] == 503
    assert b"shutting down" in sent[1]["body"]
    signal.fire()
    assert not request.cancelled() and not signal.armed
    assert signal.task is None  # looked up while armed, then let go: the task holds the scope, which holds the signal
