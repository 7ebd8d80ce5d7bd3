"""Running compiled plans: one uvicorn server per network adapter, all in one event loop.

Sockets are bound here, before any server starts, so a port conflict fails start-up at once
with a clear message; port 0 picks a free port and the start-up line shows the real one.
SIGTERM/SIGINT stop accepting, let in-flight requests finish (bounded), then close the
upstream pools (reference §10).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import uvicorn
from starlette.types import ASGIApp

from naftiko.engine.plan import AdapterPlan, McpAdapterPlan, Plan
from naftiko.exposes.http.inbound_auth import protect
from naftiko.exposes.registry import BY_TYPE
from naftiko.observability.telemetry import telemetry_for, track
from naftiko.runtime.httpserver import Budgets, ConnectionBudget, protocol_for

if TYPE_CHECKING:
    from naftiko.runtime.reload import Reloader

log = logging.getLogger("naftiko")
GRACEFUL_SECONDS = 10


def build_app(adapter: AdapterPlan, plan: Plan) -> ASGIApp:
    """The adapter's ASGI app (built by its kind, :mod:`naftiko.exposes.registry`) behind its
    inbound auth, observed (outside the auth, so refused requests count too) when the
    capability's telemetry is on."""
    kind = BY_TYPE[adapter.kind]
    inner = kind.build_app(adapter, plan)
    return telemetry_for(plan).observe_app(protect(inner, adapter, plan), adapter, kind.classifier(inner))


class StartupError(Exception):
    pass


def server_for(app: ASGIApp, plan: Plan, log_level: str = "warning", budget: ConnectionBudget | None = None) -> _Server:
    """The uvicorn server one adapter's app is served by (shared with the test harness), with
    naftiko's inbound limits (httpserver.py); ``budget`` is the connection budget it shares with
    other listeners, a budget of its own when None."""
    limits = plan.options.inbound
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=None,  # uvicorn's records go through naftiko's handler (--log-format)
        access_log=False,
        lifespan="on",
        http=protocol_for(limits, budget or ConnectionBudget(limits.max_connections)),
        ws="none",  # nothing here speaks WebSocket: an upgrade request is answered as plain HTTP
        timeout_keep_alive=limits.keepalive_timeout,  # type: ignore[arg-type]
        # --grace, default GRACEFUL_SECONDS; uvicorn hints int but passes it to asyncio.wait_for (fractions work)
        timeout_graceful_shutdown=plan.options.grace,  # type: ignore[arg-type]
        server_header=False,
        proxy_headers=False,
    )
    return _Server(config)


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: the runner stops every server together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Listener:
    kind: str
    namespace: str
    url: str
    size: str

    @property
    def line(self) -> str:
        """The start-up line announcing this listener (``kind namespace url size``)."""
        return f"{self.kind:<5} {self.namespace:<32} {self.url:<32} {self.size}"


def network_port(adapter: AdapterPlan) -> int:
    """The port a network adapter listens on (only an MCP adapter on stdio has none)."""
    if adapter.port is None:
        raise StartupError(f"adapter '{adapter.namespace}' has no port")
    return adapter.port


def _bind(address: str, port: int, namespace: str, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # --workers: each worker listens on its own socket, the kernel spreads connections
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno in (98, 48) else f"cannot be bound ({exc.strerror})"
        raise StartupError(
            f"adapter '{namespace}': port {port} on {address} {reason}; choose another with --port {namespace}=PORT"
        ) from None
    if listen:  # --workers reserves ports in the parent without listening (see workers.py)
        sock.listen(2048)
    sock.setblocking(False)
    return sock


def listen_url(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


async def serve(
    plans: list[Plan], *, announce: Callable[[str], None] | None = None, stop: asyncio.Event | None = None,
    log_level: str = "warning", reuse_port: bool = False, on_ready: Callable[[], None] | None = None,
    reloader: Reloader | None = None,
) -> None:
    """``on_ready`` is called once every listener accepts (after the start-up lines);
    ``reloader`` (:class:`naftiko.runtime.reload.Reloader`) wraps each app for hot reload."""
    announce = announce or (lambda line: print(line, flush=True))
    stop = stop or asyncio.Event()
    servers: list[tuple[_Server, socket.socket]] = []
    stdio = []
    listeners: list[Listener] = []
    # Inbound limits are per process (the first plan's options: every file of one run shares the flags).
    limits = plans[0].options.inbound if plans else None
    budgets = Budgets.for_limits(limits) if limits is not None else None
    try:
        for plan in plans:
            for adapter in plan.adapters:
                if isinstance(adapter, McpAdapterPlan) and adapter.transport == "stdio":
                    stdio.append((adapter, plan))
                    track(adapter, None, None)
                    listeners.append(Listener("mcp", adapter.namespace, "stdio", adapter.size))
                    continue
                app = build_app(adapter, plan)
                sock = _bind(adapter.address, network_port(adapter), adapter.namespace, reuse_port)
                port = sock.getsockname()[1]
                if reloader is not None:
                    app = reloader.wrap(app, adapter, plan, port)
                budget = budgets.for_kind(adapter.kind) if budgets is not None else None
                servers.append((server_for(app, plan, log_level, budget), sock))
                track(adapter, port, servers[-1][0])
                url = listen_url(adapter.address, port, adapter.url_path)
                listeners.append(Listener(adapter.kind, adapter.namespace, url, adapter.size))
    except BaseException:
        for _, sock in servers:
            sock.close()
        raise

    if len(stdio) > 1:
        for _, sock in servers:
            sock.close()
        names = ", ".join(a.namespace for a, _ in stdio)
        raise StartupError(f"only one MCP adapter can use transport stdio (found: {names})")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    for server, _ in servers:
        # uvicorn exposes start-up only as the flag `started` (no event to await), so it is polled.
        while not server.started and not any(t.done() for t in tasks):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    for t in tasks:
        if t.done() and t.exception() is not None:
            raise StartupError(f"an adapter failed to start: {t.exception()}")
    thresholds = settle_collector()
    try:
        for item in listeners:
            announce(item.line)
        if on_ready is not None:
            on_ready()
        if stdio:
            tasks.append(asyncio.create_task(_serve_stdio(stdio[0][0], stdio[0][1], stop)))
        watcher = asyncio.create_task(reloader.run()) if reloader is not None else None
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for server, _ in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        stopper.cancel()
        if watcher is not None and reloader is not None:
            watcher.cancel()
            await reloader.aclose()
        for plan in plans:
            await plan.aclose()
    finally:
        gc.set_threshold(*thresholds)


# The cyclic garbage collector's first threshold while serving (CPython's default is 700). The
# collector runs when tracked allocations outnumber deallocations by this much; with a few dozen
# requests in flight, each holding its own objects (frames, futures, headers), 700 is crossed
# every dozen requests, and every run moves the in-flight objects of the moment to the older
# generations, whose runs then scan everything alive: 17-30 µs per request at 32 connections
# (bench/RESULTS.md, "Where the REST time goes"). Requests create no reference cycles (the inbound
# protocol breaks its own, runtime/httpserver.py), so their objects are freed by reference
# counting and the collector has nothing to find in them; 10,000 lets the in-flight set come and
# go between runs. Still bounded: a cycle made by anything else is collected after at most that
# many net allocations.
SERVING_GC_THRESHOLD = 10_000


def settle_collector() -> tuple[int, int, int]:
    """Before the first request: collect, freeze what start-up built (it lives as long as the
    process, so full collections skip it) and raise the first threshold to
    :data:`SERVING_GC_THRESHOLD`; returns the thresholds to restore when serving ends."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(previous[0], SERVING_GC_THRESHOLD), previous[1], previous[2])
    return previous


def resettle_collector() -> None:
    """After a reload's replaced version has closed: it was frozen with everything else
    (:func:`settle_collector`), and frozen objects that refer to each other are never collected,
    so it would stay in memory for the life of the process. Unfreeze, collect it, and freeze
    again what lives on (the new version). One full collection per reload."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def _serve_stdio(adapter: McpAdapterPlan, plan: Plan, stop: asyncio.Event) -> None:
    from naftiko.exposes.mcp.server import build_server
    from naftiko.exposes.mcp.stdio import serve_stdio

    server, _ = build_server(adapter, plan.secrets.mask)
    await serve_stdio(server)
    stop.set()


def announce_to(stream: TextIO = sys.stdout) -> Callable[[str], None]:
    return lambda line: print(line, file=stream, flush=True)
