"""The request observer under naftiko's own server takes the status and the end of the request
from the server (DisconnectSignal.tracks_answer) instead of wrapping the app and its ``send``:
its log lines and metrics must be those of the general way (the observer called directly), for
an answer, an app failing before answering (500) and after answering, and the upstream calls."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from loopback import with_limits
from naftiko.exposes.http.limits import InboundLimits
from naftiko.observability.inbound import HttpObserver
from naftiko.observability.logs import RequestLog, configure_logging
from naftiko.observability.metrics import Metrics
from naftiko.observability.outbound import UPSTREAM_CALLS
from naftiko.observability.telemetry import Telemetry
from naftiko.runtime.httpserver import ConnectionBudget


async def _app(scope, receive, send) -> None:
    calls = UPSTREAM_CALLS.get()
    if calls is not None:
        calls[0] += 2  # what two ObservedTransport.send calls do
    if scope["path"] == "/fails-first":
        raise RuntimeError("broken before answering")
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
    if scope["path"] == "/fails-after":
        raise RuntimeError("broken after answering")


PATHS = ["/ok?q=1", "/fails-first", "/fails-after"]


def _fields(text: str) -> list[str]:
    """Each line without its time and duration."""
    return [" ".join(w for w in line.split()[2:] if not w.startswith("duration_ms="))
            for line in text.splitlines() if " naftiko.request: " in line]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_lines_and_metrics_under_naftikos_server_are_those_of_the_general_way():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logProcesses, logging.logMultiprocessing, logging.logThreads)
    texts, expositions = [], []
    try:
        for served in (True, False):
            stream = io.StringIO()
            configure_logging("info", "text", stream=stream)
            metrics = Metrics()
            telemetry = Telemetry(metrics=metrics, request_log=RequestLog(str))
            observer = HttpObserver(_app, telemetry, "rest", "api", lambda s: ("op", "/route"))
            if served:
                async def app(scope, receive, send, observer=observer):  # an ASGI 3 app to uvicorn's guess
                    await observer(scope, receive, send)

                async with with_limits(app, InboundLimits(), ConnectionBudget(8)) as port:
                    for path in PATHS:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
                        assert head.startswith(b"HTTP/1.1 500" if path == "/fails-first" else b"HTTP/1.1 201")
                        writer.close()
                        await asyncio.sleep(0.05)  # the request's task is done
            else:
                for path in PATHS:
                    raw, _, query = path.partition("?")
                    scope = {"type": "http", "method": "GET", "path": raw, "raw_path": raw.encode(),
                             "query_string": query.encode(), "headers": []}

                    async def receive():
                        return {"type": "http.disconnect"}

                    async def send(message):
                        pass

                    if path == "/ok?q=1":
                        await observer(scope, receive, send)
                    else:
                        with pytest.raises(RuntimeError):
                            await observer(scope, receive, send)
            telemetry.shutdown()
            texts.append(_fields(stream.getvalue()))
            expositions.append(sorted(line for line in metrics.exposition()[0].decode().splitlines()
                                      if line.startswith("naftiko_request_") and "_bucket" not in line
                                      and "_sum" not in line and "_created" not in line))
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.logProcesses, logging.logMultiprocessing, logging.logThreads = saved[2:]
    assert texts[0] == texts[1] == [
        "INFO naftiko.request: rest api GET /ok operation=op status=201 upstream_calls=2",
        "INFO naftiko.request: rest api GET /fails-first operation=op status=500 upstream_calls=2",
        "INFO naftiko.request: rest api GET /fails-after operation=op status=201 upstream_calls=2",
    ]
    assert expositions[0] == expositions[1]
