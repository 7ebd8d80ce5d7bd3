"""A raw HTTP/1.1 upstream that misbehaves on request: the fault is named in the path.

    GET /f/<fault>/<id>      (any method; the request body is read and ignored)

Stateless, so many callers can hit it at once and each knows what it asked for — the fault
suite (tests/test_faults_e2e.py) and the soak (bench/soak.py) both use it. Faults work at the
socket level, which an HTTP framework would not let us do:

=================  ==========================================================================
``ok``             200 ``{"id": ID, "name": "Acme", "fault": "ok"}``
``<status>``       that status (``404``, ``500``, ``503``…) with ``{"error": "fault <status>", "id": ID}``;
                   ``204`` and ``304`` carry no body
``hang``           reads the request, never answers; waits until the caller closes
``reset-before``   reads the request, then resets the connection (RST) before any byte
``close-before``   reads the request, then closes the connection (FIN) before any byte
``reset-mid``      headers and half the body, then RST
``truncated``      ``Content-Length`` twice what is sent, then FIN
``stall``          headers and half the body, then waits until the caller closes
``garbage``        a reply that is not HTTP at all
``bad-chunked``    ``Transfer-Encoding: chunked`` with an invalid chunk size
``malformed``      200 ``application/json`` whose body is cut-off JSON (a complete HTTP message)
``huge[-N]``       200 ``application/json``, a valid document of N bytes (default 8 MiB)
``binary``         200 ``application/octet-stream``, 4096 bytes 0–255
``binary-json``    the same bytes labelled ``application/json``
``drip[-N-MS]``    200 JSON sent in N pieces MS milliseconds apart (default 8 × 25 ms)
=================  ==========================================================================

Run alone (for bench/soak.py): ``python tests/fault_upstream.py [--port 0]`` prints
``fault-upstream http://127.0.0.1:PORT`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from collections import Counter

import orjson

HUGE_DEFAULT = 8 * 1024 * 1024
BINARY = bytes(range(256)) * 16
_REASONS = {200: "OK", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def ok_body(item: str) -> bytes:
    return orjson.dumps({"id": item, "name": "Acme", "fault": "ok"})


def error_body(status: int, item: str) -> bytes:
    return orjson.dumps({"error": f"fault {status}", "id": item})


def huge_body(size: int) -> bytes:
    head = b'{"id": "huge", "name": "Acme", "pad": "'
    return head + b"x" * max(size - len(head) - 2, 0) + b'"}'


def head(status: int, content_type: str | None, length: int | None, extra: str = "") -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Fault')}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def parse(path: str) -> tuple[str, str]:
    """``/f/<fault>/<id>`` (below any base path) → (fault, id); anything else is ``ok``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    for i, part in enumerate(parts[:-1]):
        if part == "f":
            return parts[i + 1], (parts[i + 2] if i + 2 < len(parts) else "")
    return "ok", parts[-1] if parts else ""


class FaultUpstream:
    """The server. ``hits`` counts requests per fault name, ``open`` the connections held now and
    ``held`` those a ``hang`` or ``stall`` keeps waiting for the caller to go away."""

    def __init__(self) -> None:
        self.url = ""
        self.hits: Counter[str] = Counter()
        self.open = 0
        self.held = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self, port: int = 0) -> FaultUpstream:
        self._server = await asyncio.start_server(self.handle, "127.0.0.1", port, backlog=1024)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            pass
        except asyncio.CancelledError:  # the server is stopping
            pass
        finally:
            self.open -= 1
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is done."""
        line = await reader.readline()
        if not line.strip():
            return False
        target = line.decode("latin-1").split(" ")[1]
        length = 0
        chunked = False
        while (h := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = h.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if length:
            await reader.readexactly(length)
        elif chunked:
            await _skip_chunked(reader)
        fault, item = parse(target)
        self.hits[fault] += 1
        return await self.act(fault, item, reader, writer)

    async def act(self, fault: str, item: str, reader, writer) -> bool:
        write = writer.write
        if fault == "ok":
            body = ok_body(item)
            write(head(200, "application/json", len(body)) + body)
        elif fault.isdigit():
            status = int(fault)
            if status in (204, 304) or status < 200:
                write(head(status, None, None))
            else:
                body = error_body(status, item)
                write(head(status, "application/json", len(body)) + body)
        elif fault == "hang":
            await self._hold(reader)
            return False
        elif fault in ("reset-before", "close-before"):
            if fault == "reset-before":
                writer.transport.abort()
            return False
        elif fault in ("reset-mid", "truncated", "stall"):
            body = ok_body(item)
            declared = len(body) * 2 if fault == "truncated" else len(body)
            write(head(200, "application/json", declared) + body[: len(body) // 2 if fault != "truncated" else len(body)])
            await writer.drain()
            if fault == "reset-mid":
                writer.transport.abort()
            elif fault == "stall":
                await self._hold(reader)
            return False
        elif fault == "garbage":
            write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            return False
        elif fault == "bad-chunked":
            write(head(200, "application/json", None, "Transfer-Encoding: chunked\r\n") + b"zz\r\n{}\r\n0\r\n\r\n")
            await writer.drain()
            return False
        elif fault == "malformed":
            body = b'{"id": "' + item.encode() + b'", "name": '
            write(head(200, "application/json", len(body)) + body)
        elif fault.startswith("huge"):
            size = int(fault[5:]) if fault[5:].isdigit() else HUGE_DEFAULT
            body = huge_body(size)
            write(head(200, "application/json", len(body)) + body)
        elif fault in ("binary", "binary-json"):
            ctype = "application/json" if fault == "binary-json" else "application/octet-stream"
            write(head(200, ctype, len(BINARY)) + BINARY)
        elif fault.startswith("drip"):
            pieces, gap = _drip_params(fault)
            body = ok_body(item)
            write(head(200, "application/json", len(body)))
            step = max(1, -(-len(body) // pieces))
            for start in range(0, len(body), step):
                await writer.drain()
                await asyncio.sleep(gap)
                write(body[start : start + step])
        else:
            body = orjson.dumps({"error": f"unknown fault {fault!r}"})
            write(head(400, "application/json", len(body)) + body)
        await writer.drain()
        return True


    async def _hold(self, reader: asyncio.StreamReader) -> None:
        self.held += 1
        try:
            await _until_closed(reader)
        finally:
            self.held -= 1


def _drip_params(fault: str) -> tuple[int, float]:
    parts = fault.split("-")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return max(int(parts[1]), 1), int(parts[2]) / 1000
    return 8, 0.025


async def _until_closed(reader: asyncio.StreamReader) -> None:
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
        await reader.readexactly(size + 2) if size else await reader.readline()
        if not size:
            return


@contextlib.contextmanager
def spawned(port: int = 0):
    """Run the upstream in its own process (for callers whose event loop is busy or absent);
    yields its URL and stops it on exit."""
    proc = subprocess.Popen([sys.executable, __file__, "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "fault-upstream":
            raise RuntimeError(f"the fault upstream did not start (exit {proc.poll()})")
        yield line[1]
    finally:
        proc.terminate()
        proc.wait(10)


async def _main(port: int) -> None:
    upstream = await FaultUpstream().start(port)
    print(f"fault-upstream {upstream.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    try:
        (uvloop.run if uvloop else asyncio.run)(_main(args.port))
    except KeyboardInterrupt:
        sys.exit(0)
