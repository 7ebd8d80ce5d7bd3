"""In-process serving for tests: the capability compiled and its adapters' ASGI apps built exactly
as ``naftiko serve`` does, driven in memory instead of through a subprocess and sockets.

What is shared with the real command, so a test exercises what a user runs:

- the flags → :class:`~naftiko.engine.plan.Options` code (:func:`naftiko.cli.serve_options`) and
  the load + compile step (:func:`naftiko.cli.compile_files`);
- telemetry started before any app is built, and each app built by :func:`naftiko.runtime.serve.build_app`
  (the adapter's builder behind its inbound auth, observed when telemetry is on);
- each app's ASGI lifespan (the MCP adapter's session manager lives in it), run by the same
  helper hot reload uses;
- the start-up lines (:class:`naftiko.runtime.serve.Listener`) and the log output, formatted by
  :func:`naftiko.observability.logs.configure_logging`'s formatters and kept in ``stderr``.

What differs: nothing listens on a socket. ``urls`` are the addresses the start-up lines would
show (the declared port, or a free port number for ``--port NS=0``); :meth:`Served.http` and
:meth:`Served.mcp` give clients whose transport hands each request to the app behind that
address with ``httpx.ASGITransport`` (``httpx2`` for the MCP SDK's client). Responses are
buffered, so a test about a caller hanging up, or a command that must reach a port, serves with
``sockets=True`` (the command's uvicorn server on loopback, in this event loop); a test about
signals, workers, reload, stdio or the process itself keeps :func:`conftest.start_naftiko`.

:func:`run_cli` runs the command's entry point in this process for commands that end before
serving. docs/testing.md says when to use which.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from naftiko import cli
from naftiko.cli import MAX_WARNINGS_ON_SERVE, _print_diagnostics, compile_files, serve_options, serve_parser
from naftiko.engine.plan import Plan
from naftiko.observability.logs import TEXT_FORMAT, JsonFormatter, TextFormatter, flush_request_logs
from naftiko.observability.telemetry import _LISTENERS, telemetry_for, track
from naftiko.runtime.reload import _Lifespan
from naftiko.runtime.serve import Listener, _bind, build_app, listen_url, server_for

# Variables a developer's shell may hold that would change what a test capability binds.
_SCRUBBED_ENV = ("METRONOME_API_KEY", "M3TER_API_KEY")
_CLIENT_ADDRESS = ("127.0.0.1", 50123)  # the peer address the apps see
_CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own clients: not in a naftiko process's output
# The capability a log record comes from: set while it is compiled and started, and around each
# request to its apps (tasks started meanwhile inherit it), so two capabilities served at once
# each keep their own ``stderr`` as two processes would.
_SERVING: ContextVar[Served | None] = ContextVar("naftiko_test_serving", default=None)


@dataclass
class _Listening:
    """What :func:`naftiko.observability.telemetry.track` records for a uvicorn server: the
    control adapter reads ``started`` / ``should_exit`` to report each listener's state."""

    started: bool = True
    should_exit: bool = False


def _authority(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or 80


def _router(module: Any, apps: Mapping[tuple[str, int], Any]) -> Any:
    """An ``AsyncBaseTransport`` of ``module`` (httpx or httpx2) sending each request to the app
    at its host:port; any other address goes to the network as usual."""

    class Router(module.AsyncBaseTransport):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.routes = {key: module.ASGITransport(app, client=_CLIENT_ADDRESS) for key, app in apps.items()}
            self.network: Any = None  # made on first use: its TLS context costs ~70 ms

        async def handle_async_request(self, request: Any) -> Any:
            key = (request.url.host, request.url.port or 80)
            target = request.extensions.get("target")
            if target is not None and key in apps:  # a request line sent as is (no ``..`` folding)
                app = _with_target(apps[key], target)
                return await module.ASGITransport(app, client=_CLIENT_ADDRESS).handle_async_request(request)
            route = self.routes.get(key)
            if route is None:
                self.network = self.network or module.AsyncHTTPTransport()
                route = self.network
            return await route.handle_async_request(request)

        async def aclose(self) -> None:
            if self.network is not None:
                await self.network.aclose()

    return Router()


def _with_target(app: Any, target: bytes) -> Any:
    """``app`` seeing ``target`` (the ``target`` request extension) as the request line, the way
    uvicorn fills the scope from it: ``raw_path`` as sent, ``path`` percent-decoded."""
    raw_path, _, query = target.partition(b"?")

    async def sent_as_is(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = unquote(raw_path.decode("latin-1"))
        await app({**scope, "raw_path": raw_path, "path": path, "query_string": query}, receive, send)

    return sent_as_is


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """The process environment a ``start_naftiko`` subprocess would get, for as long as the
    plan is compiled and its telemetry started (the only moments naftiko reads it)."""
    saved = dict(os.environ)
    for name in _SCRUBBED_ENV:
        os.environ.pop(name, None)
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _free_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A port number nothing listens on, other than those in ``taken``: the OS may hand out the
    number it just freed again, and two adapters of one capability on the same number would
    be one address (the second app would answer for the first)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


@dataclass
class Served:
    """A capability served in memory; the same attributes as ``conftest.Naftiko`` where they
    make sense (``urls``, ``sizes``, ``stdout_lines``, ``stderr``, ``stop``)."""

    plans: list[Plan]
    urls: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    stdout_lines: list[str] = field(default_factory=list)
    apps: dict[tuple[str, int], Any] = field(default_factory=dict)
    _log: io.StringIO = field(default_factory=io.StringIO)
    _handler: logging.Handler | None = None
    _saved_levels: tuple[int, int] = (logging.WARNING, logging.NOTSET)
    _lifespans: list[_Lifespan] = field(default_factory=list)
    _servers: list[tuple[Any, asyncio.Task[None]]] = field(default_factory=list)  # sockets=True
    _tracked: list[tuple[tuple[str, str], tuple[int | None, object]]] = field(default_factory=list)
    _stopped: bool = False

    @property
    def stderr(self) -> str:
        """Diagnostics printed at start-up and every log line written since (all loggers); request
        log lines are written by a writer thread, so the ones queued so far are written first."""
        flush_request_logs()
        return self._log.getvalue()

    @property
    def alive(self) -> bool:
        """Still serving: not stopped, and no app's lifespan (the MCP session manager's task
        group) has ended — what ``proc.poll() is None`` says of a subprocess."""
        return (
            not self._stopped
            and all(ls._task is not None and not ls._task.done() for ls in self._lifespans)
            and not any(task.done() for _, task in self._servers)
        )

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` reaching this capability's adapters at their ``urls``."""
        return httpx.AsyncClient(transport=_router(httpx, self.apps), **kwargs)

    def mcp_http(self, **kwargs: Any) -> httpx2.AsyncClient:
        """The ``httpx2`` client the MCP SDK uses, reaching the adapters in memory (the SDK's
        default timeouts unless given)."""
        kwargs.setdefault("timeout", httpx2.Timeout(30.0, read=300.0))
        return httpx2.AsyncClient(transport=_router(httpx2, self.apps), **kwargs)

    def mcp(self, target: str, mode: str = "auto", *, headers: dict[str, str] | None = None, **kwargs: Any) -> Client:
        """The official MCP client over streamable HTTP to ``target`` (a URL from ``urls`` or an
        adapter namespace), as ``mcp.Client(url, mode=mode)`` would connect over the network."""
        url = target if target.startswith("http") else self.urls[target]
        http = self.mcp_http(headers=headers) if headers else self.mcp_http()
        return Client(streamable_http_client(url, http_client=http), mode=mode, **kwargs)

    async def stop(self) -> int:
        """Shut every app down (lifespan), close the upstream pools; 0 when all went cleanly,
        like the exit status of a process stopped with SIGTERM."""
        if self._stopped:
            return 0
        self._stopped = True
        token = _SERVING.set(self)  # what shutting down logs is this capability's
        try:
            return await self._shutdown()
        finally:
            _SERVING.reset(token)

    async def _shutdown(self) -> int:
        status = 0
        for listening in (server for _, (_, server) in self._tracked):
            listening.should_exit = True
        for server, _ in self._servers:
            server.should_exit = True
        for _, task in self._servers:
            try:
                await task
            except Exception:
                status = 1
        for lifespan in reversed(self._lifespans):
            task = lifespan._task
            await lifespan.stop()
            if task is not None and task.cancelled():
                status = 1  # the lifespan did not finish its shutdown in time
        for plan in self.plans:
            await plan.aclose()
        for key, value in self._tracked:
            if _LISTENERS.get(key) is value:
                del _LISTENERS[key]
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._saved_levels[0])
            logging.getLogger("mcp").setLevel(self._saved_levels[1])
        return status


def _capture_logs(served: Served, level: str, fmt: str) -> None:
    """What ``configure_logging`` sets up, writing into ``served.stderr``; added beside the
    handlers already on the root logger (pytest's) rather than replacing them."""
    handler = logging.StreamHandler(served._log)
    handler.addFilter(lambda record: _SERVING.get() is served and not record.name.startswith(_CLIENT_LOGGERS))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root, sdk = logging.getLogger(), logging.getLogger("mcp")
    served._saved_levels = (root.level, sdk.level)
    served._handler = handler
    root.addHandler(handler)
    root.setLevel(level.upper())
    if level != "debug":  # as the command does: the SDK's lifecycle chatter stays out
        sdk.setLevel(logging.WARNING)


async def serve_in_memory(
    file: Path | str | Sequence[Path | str],
    upstream_url: str | None = None,
    *,
    consumes: Sequence[str] = (),
    adapters: Sequence[str] = (),
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    sockets: bool = False,
) -> Served:
    """``start_naftiko`` in memory: the same arguments build the same command line, which is
    parsed by the command's own parser into the same options.

    ``sockets=True`` serves each app with the uvicorn server ``naftiko serve`` would use
    (:func:`naftiko.runtime.serve.server_for`) on a real loopback socket, in this event loop, for tests
    that need the network (a caller hanging up, a command reaching the control port): ``urls``
    are then real and any client reaches them."""
    files = [file] if isinstance(file, (str, Path)) else list(file)
    argv = [str(f) for f in files]
    for ns in consumes:
        argv += ["--base-uri", f"{ns}={upstream_url}"]
    for ns in adapters:
        argv += ["--port", f"{ns}=0"]
    argv += [str(item) for item in extra]
    args = serve_parser().parse_args(argv)
    served = Served(plans=[])
    _capture_logs(served, args.log_level, args.log_format)
    token = _SERVING.set(served)
    try:
        with _environment(env):
            served.plans = compile_files(args.files, serve_options(args), strict=args.strict)
            for plan in served.plans:
                _print_diagnostics(list(plan.warnings), MAX_WARNINGS_ON_SERVE, stream=served._log)
                telemetry_for(plan)  # before any app is built: it instruments the plan
        if args.dry_run:
            served.stdout_lines.append("dry run: upstream calls are described, not sent")
        for plan in served.plans:
            for adapter in plan.adapters:
                if adapter.kind == "mcp" and adapter.transport == "stdio":
                    continue  # a process's stdin/stdout: tests of stdio start a subprocess
                app = _attributed(build_app(adapter, plan), served)
                listening: Any
                if sockets:
                    sock = _bind(adapter.address, adapter.port, adapter.namespace)
                    port = sock.getsockname()[1]
                    listening = server_for(app, plan, "debug" if args.log_level == "debug" else "warning")
                    task = asyncio.create_task(listening.serve(sockets=[sock]))
                    served._servers.append((listening, task))
                    while not listening.started and not task.done():  # noqa: ASYNC110 - uvicorn sets a flag, no event
                        await asyncio.sleep(0.01)
                    if task.done():
                        raise RuntimeError(f"adapter {adapter.namespace!r} failed to start: {task.exception()!r}")
                else:
                    port = adapter.port or _free_port({taken for _, taken in served.apps})
                    lifespan = _Lifespan(app)
                    await lifespan.start()
                    served._lifespans.append(lifespan)
                    listening = _Listening()
                track(adapter, port, listening)
                key = (adapter.kind, adapter.namespace)
                served._tracked.append((key, _LISTENERS[key]))
                url = listen_url(adapter.address, port, adapter.url_path)
                listener = Listener(adapter.kind, adapter.namespace, url, adapter.size)
                if not sockets:
                    served.apps[_authority(listener.url)] = app
                served.urls[adapter.namespace] = listener.url
                served.sizes[adapter.namespace] = int(str(adapter.size).split()[0])
                served.stdout_lines.append(listener.line)
    except BaseException:
        await served.stop()
        raise
    finally:
        _SERVING.reset(token)
    return served


async def get_once(
    file: Path | str, upstream_url: str | None, path: str, *, consumes: Sequence[str] = (), adapter: str | None = None
) -> httpx.Response:
    """Serve ``file`` in memory, send one GET for ``path`` (relative to the URL of ``adapter``, by
    default the only one) and stop: the answer, read whole; the capability must stop cleanly."""
    served = await serve_in_memory(file, upstream_url, consumes=consumes)
    try:
        url = served.urls[adapter] if adapter is not None else next(iter(served.urls.values()))
        async with served.http() as http:
            return await http.get(url.rstrip("/") + "/" + path.lstrip("/"))
    finally:
        assert await served.stop() == 0


def _attributed(app: Any, served: Served) -> Any:
    """``app`` with its requests' log records attributed to ``served``."""

    async def call(scope: Any, receive: Any, send: Any) -> None:
        token = _SERVING.set(served)
        try:
            await app(scope, receive, send)
        finally:
            _SERVING.reset(token)

    return call


@dataclass
class Ran:
    """What ``subprocess.run(..., capture_output=True, text=True)`` returns, for a command run
    in this process."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Ran:
    """``naftiko ARGV`` through the command's own entry point (:func:`naftiko.cli.main`), in this
    process, for a command that ends before serving: a refused flag, a file that does not load,
    ``validate``. Should it start serving instead, the test fails at once rather than hang.
    The logging set-up the command makes is undone afterwards."""
    from naftiko.runtime import serve as serve_module

    async def refuse_to_serve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the command started serving; run_cli is for commands that end before serving")

    root, sdk = logging.getLogger(), logging.getLogger("mcp")
    saved = (root.handlers[:], root.level, sdk.level)
    saved_serve = serve_module.serve
    out, err = io.StringIO(), io.StringIO()
    serve_module.serve = refuse_to_serve  # type: ignore[assignment]
    try:
        with _environment(env), redirect_stdout(out), redirect_stderr(err):
            try:
                code = cli.main(list(argv))
            except SystemExit as exc:  # argparse and flag parsing exit this way
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        serve_module.serve = saved_serve  # type: ignore[assignment]
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        sdk.setLevel(saved[2])
    return Ran(code, out.getvalue(), err.getvalue())
