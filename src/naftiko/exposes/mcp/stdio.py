"""MCP over stdio with JSON-RPC framing answered as the specification requires.

The SDK's stdio transport drops a line it cannot read: a line that is not JSON, a message that
is not JSON-RPC (``params`` as an array, ``"id": null``) or a batch gets no answer at all, so the
client waits forever. Here every line is screened first (docs/reference.md, "MCP adapter"):

- not JSON → ``-32700`` with ``id: null``; not a JSON-RPC request/notification → ``-32600``
  (the id echoed when it is usable), written straight to stdout;
- a batch is served when ``initialize`` negotiated 2025-03-26 (the only revision with batches):
  its requests go to the SDK one by one and the replies go out together as one array; on any
  other revision a batch is ``-32600``;
- a ``cursor`` on a list method is ``-32602`` (naftiko never paginates);
- anything else goes to the SDK unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import orjson
from mcp.server.stdio import (  # the SDK's own claim of fds 0/1, so stray output misses the wire
    _claim_fd,
    _open_stdin_diversion,
    _open_stdout_diversion,
    _UnownedTextWrapper,
)

from naftiko.exposes.mcp.envelope import (
    BATCH_VERSION,
    INVALID_REQUEST,
    PARSE_ERROR,
    RpcError,
    check_cursor,
    check_message,
)
from naftiko.jsonio import dumps, loads

log = logging.getLogger("naftiko.mcp")


class _Batch:
    def __init__(self) -> None:
        self.waiting: set[object] = set()
        self.replies: list[dict] = []


class StdioFront:
    """Stands between the process's stdio and the SDK: an async line source for the SDK's reader
    and a writable sink for its writer."""

    def __init__(self, stdin, stdout):
        self.stdin, self.stdout = stdin, stdout
        self.version: str | None = None  # negotiated by initialize
        self.initializing: set[object] = set()
        self.batches: list[_Batch] = []
        self.lock = anyio.Lock()

    # ---------------------------------------------------------- the SDK reads from here

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self.stdin:
            if not line.strip():
                continue
            for message in await self.screen(line):
                yield message

    async def screen(self, line: str) -> list[str]:
        """The lines to hand to the SDK for one line read (none when it was answered here)."""
        try:
            decoded = loads(line)
        except orjson.JSONDecodeError:
            await self._emit(RpcError(PARSE_ERROR, "Parse error: the line is not valid JSON").body())
            return []
        if isinstance(decoded, list):
            return await self._batch(decoded)
        try:
            self._check(decoded)
        except RpcError as exc:
            await self._emit(exc.body())
            return []
        return [line]

    def _check(self, message: object) -> bool:
        """Raise :class:`RpcError` for a message the SDK must not see; True for a request."""
        method, rid, params, is_request = check_message(message)
        if method is not None and is_request:
            check_cursor(method, params, rid)
            if method == "initialize":
                self.initializing.add(rid)
        return method is not None and is_request

    async def _batch(self, items: list) -> list[str]:
        if self.version != BATCH_VERSION:
            await self._emit(
                RpcError(
                    INVALID_REQUEST,
                    f"JSON-RPC batches are only part of protocol version {BATCH_VERSION}"
                    + (f", not {self.version}" if self.version else ""),
                ).body()
            )
            return []
        if not items:
            await self._emit(RpcError(INVALID_REQUEST, "an empty batch").body())
            return []
        batch, forward = _Batch(), []
        for item in items:
            try:
                if isinstance(item, dict) and item.get("method") == "initialize":
                    raise RpcError(INVALID_REQUEST, "initialize must not be part of a batch", item.get("id"))
                if self._check(item):
                    batch.waiting.add(item["id"])
                forward.append(dumps(item).decode())
            except RpcError as exc:
                batch.replies.append(exc.body())
        if batch.waiting:
            self.batches.append(batch)
        elif batch.replies:
            await self._emit(batch.replies)
        return forward

    # ---------------------------------------------------------- the SDK writes here

    async def write(self, text: str) -> None:
        message = loads(text)
        rid = message.get("id") if isinstance(message, dict) else None
        if rid in self.initializing and "result" in message:
            self.initializing.discard(rid)
            self.version = message["result"].get("protocolVersion")
        for batch in self.batches:
            if rid in batch.waiting:
                batch.waiting.discard(rid)
                batch.replies.append(message)
                if not batch.waiting:
                    self.batches.remove(batch)
                    await self._emit(batch.replies)
                return
        async with self.lock:
            await self.stdout.write(text if text.endswith("\n") else text + "\n")
            await self.stdout.flush()

    async def flush(self) -> None:
        """Each write above flushes already."""

    async def _emit(self, payload: object) -> None:
        async with self.lock:
            await self.stdout.write(dumps(payload).decode() + "\n")
            await self.stdout.flush()


async def serve_stdio(server) -> None:
    """Run the low-level ``server`` on this process's stdin/stdout until stdin closes."""
    import sys

    from mcp.server.stdio import stdio_server

    stdin_buffer, restore_stdin = _claim_fd(0, sys.stdin, "rb", _open_stdin_diversion)
    stdout_buffer, restore_stdout = _claim_fd(1, sys.stdout, "wb", _open_stdout_diversion)
    try:
        stdin = anyio.wrap_file(_UnownedTextWrapper(stdin_buffer, encoding="utf-8", errors="replace"))
        stdout = anyio.wrap_file(_UnownedTextWrapper(stdout_buffer, encoding="utf-8"))
        front = StdioFront(stdin, stdout)
        async with stdio_server(front, front) as (read_stream, write_stream):  # type: ignore[arg-type]
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        if restore_stdout is not None:
            restore_stdout()
        if restore_stdin is not None:
            restore_stdin()
