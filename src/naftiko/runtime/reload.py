"""Hot reload (``naftiko-run --reload FILE…``): serve a new version of a capability file
when it, or a file it references, changes — without a restart and without dropping a request.

How it works:

- Every network listener serves a :class:`Slot`, a tiny ASGI app that forwards each request
  to the app of the *current* :class:`Generation` (one compiled version of one file). A swap
  is one attribute assignment, so a request runs entirely on the version it started on.
- A poll loop (every :data:`POLL_SECONDS`) compares ``stat`` signatures of the capability
  file and of what it references: imported consumes files, bind ``location`` files, MCP
  resource/prompt, skill and script locations, the ``--env-file``. Polling, not inotify: it
  survives editors that replace files by rename and Kubernetes ConfigMap symlink swaps, and
  costs a few ``stat`` calls per second.
- On a change the file is loaded and compiled off the event loop. A broken version is
  logged with ``file:line:col`` and the last good version keeps serving. A good one gets its
  apps built and started (MCP session managers run in the app lifespan), then the slots are
  swapped; the old version's upstream pools are closed once its in-flight requests finish.
- Sockets stay as they are: a changed port or address is logged and applies at the next
  restart (the new version is served on the old socket, with the old address, so loopback
  protections still match the real bind). A removed adapter answers 503 until restart; an
  added one is served after a restart. MCP tool lists change for the next request: the
  server is sessionless, clients list tools again when they reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from naftiko.binds.resolve import resolve_location
from naftiko.document.loader import load
from naftiko.document.source import read_source
from naftiko.engine.plan import AdapterPlan, Options, Plan, compile_plan
from naftiko.errors import LoadError

log = logging.getLogger("naftiko.runtime.reload")

POLL_SECONDS = 0.3
RELEASE_SECONDS = 0.2  # after a replaced version closed, before it is collected (Reloader._drain)
SETTLE_SECONDS = 0.1  # a change must hold still this long before it is read (editors write in steps)
MAX_DIR_ENTRIES = 2000  # watched directories are walked up to this many entries
MAX_WARNINGS = 3


# ------------------------------------------------------------------ what to watch


def _references(file: str, env_file: str | None) -> list[Path]:
    """The capability file and every local path it points at, in no particular order.

    Read from the raw YAML, not the model, so a reference anywhere is found: any ``location``
    (bind files, imported consumes files, skill/resource/prompt/script directories),
    ``scripting.defaultLocation`` and script ``file`` names (looked up next to the file and
    in each referenced directory). Non-file schemes (``vault://``…) are not watched.
    """
    found: dict[Path, None] = {Path(file).resolve(): None}
    if env_file:
        found[Path(env_file).resolve()] = None
    pending = [Path(file).resolve()]
    seen: set[Path] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            data = read_source(str(current)).data
        except (LoadError, OSError):
            continue
        base = current.parent
        scripts: list[str] = []
        locations: list[Path] = []
        for key, value in _strings(data):
            if key in ("location", "defaultLocation", "from"):  # `from`: imports since 1.0.0-alpha3
                path = _local(value, base)
                if path is not None:
                    locations.append(path)
                    if path.suffix in (".yml", ".yaml") and path.is_file():
                        pending.append(path)  # an imported consumes file has binds of its own
            elif key == "file":
                scripts.append(value)
        for path in locations:
            found[path] = None
        for name in scripts:
            for where in [base, *(p for p in locations if p.is_dir())]:
                candidate = (where / name).resolve()
                if candidate.exists():
                    found[candidate] = None
    return list(found)


def _strings(node: object, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield key, node


def _local(value: str, base: Path) -> Path | None:
    if value.startswith("file://"):
        return resolve_location(value, base).resolve()
    if "://" in value or not value:
        return None
    return (base / value).resolve()


def _signature(paths: list[Path]) -> tuple[tuple[object, ...], ...]:
    """What a change looks like: (mtime, size, inode) of every file, walked directories included."""
    out: list[tuple[object, ...]] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), None))
            continue
        out.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
        if path.is_dir():
            out.extend(_walk(path))
    return tuple(out)


def _walk(root: Path) -> list[tuple[object, ...]]:
    entries: list[tuple[object, ...]] = []
    stack = [str(root)]
    while stack and len(entries) < MAX_DIR_ENTRIES:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue  # VCS and editor state: not content, and .git can be huge
                    with contextlib.suppress(OSError):
                        st = entry.stat()
                        entries.append((entry.path, st.st_mtime_ns, st.st_size))
                        if entry.is_dir():
                            stack.append(entry.path)
        except OSError:
            continue
    return sorted(entries)


# ------------------------------------------------------------------ ASGI plumbing


class _Lifespan:
    """Runs one app's ASGI lifespan in a task, so an app built after the server started can
    still set up (the MCP session manager needs its task group) and later shut down."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self.app(scope, self._inbox.get, self._events.put)
        except Exception:  # an app without lifespan support may raise: it has nothing to run
            log.debug("lifespan of %r ended with an error", self.app, exc_info=True)
        finally:
            await self._events.put({"type": "lifespan.ended"})

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        event = await self._events.get()
        if event["type"] == "lifespan.startup.failed":
            raise RuntimeError(event.get("message") or "the adapter failed to start")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 10)
        if not task.done():
            task.cancel()


class Generation:
    """One compiled version of one capability file, the apps built from it and how many
    requests are still running on them."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.lifespans: dict[tuple, _Lifespan] = {}
        self.inflight = 0
        self.retired = False
        self.drained = asyncio.Event()

    def leave(self) -> None:
        self.inflight -= 1
        if self.retired and self.inflight == 0:
            self.drained.set()

    def retire(self) -> None:
        self.retired = True
        if self.inflight == 0:
            self.drained.set()

    async def close(self) -> None:
        for lifespan in self.lifespans.values():
            await lifespan.stop()
        self.lifespans.clear()
        await self.plan.aclose()
        telemetry = getattr(self.plan, "telemetry", None)
        if telemetry is not None:
            await asyncio.to_thread(telemetry.shutdown)  # flushes this version's trace exporter


class Slot:
    """The app uvicorn serves on one socket; ``current`` (generation, app) is swapped whole."""

    def __init__(
        self, key: tuple[object, ...], adapter: AdapterPlan, port: int, generation: Generation, app: ASGIApp
    ) -> None:
        self.key = key
        self.declared = (adapter.address, adapter.port)  # as asked for at start-up (port may be 0)
        self.address = adapter.address  # as bound: what a new version is served with
        self.port = port
        self.current = (generation, app)
        generation.lifespans[key] = _Lifespan(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        generation, app = self.current
        generation.inflight += 1
        try:
            await app(scope, receive, send)
        finally:
            generation.leave()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            generation, _ = self.current
            lifespan = generation.lifespans.get(self.key)
            if message["type"] == "lifespan.startup":
                try:
                    if lifespan is not None:
                        await lifespan.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if lifespan is not None:
                    await lifespan.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _gone(scope: Scope, receive: Receive, send: Send) -> None:
    """What a port whose adapter was removed from the file answers until the next restart."""
    body = (
        b'{"type":"about:blank","title":"Service Unavailable","status":503,'
        b'"detail":"this adapter was removed from the capability; restart naftiko to stop listening"}'
    )
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------ the reloader


def _key(index: int, adapter: AdapterPlan) -> tuple[object, ...]:
    return (index, adapter.kind, adapter.namespace)


def _network(plan: Plan) -> list[AdapterPlan]:
    return [a for a in plan.adapters if not (a.kind == "mcp" and a.transport == "stdio")]


class Reloader:
    """Watches the files behind ``plans`` and swaps new versions into the running listeners.

    ``plans`` is the list :func:`naftiko.runtime.serve.serve` serves; it is updated in place, so what
    the server closes at shutdown is always the current version."""

    def __init__(self, files: list[str], plans: list[Plan], options: Options, *, strict: bool = False):
        self.files = files
        self.plans = plans
        self.options = options
        self.strict = strict
        self.generations = [Generation(p) for p in plans]
        self.slots: dict[tuple, Slot] = {}
        self.retired: set[Generation] = set()
        self.drainers: set[asyncio.Task] = set()
        self.warned = [{str(d) for d in p.warnings} for p in plans]  # already printed at start-up
        self.watched = [_references(f, options.env_file) for f in files]
        self.signatures = [_signature(w) for w in self.watched]

    def wrap(self, app: ASGIApp, adapter: AdapterPlan, plan: Plan, port: int) -> Slot:
        """Called by the server for each listener it builds; ``port`` is the bound port."""
        index = next(i for i, p in enumerate(self.plans) if p is plan)
        key = _key(index, adapter)
        slot = self.slots[key] = Slot(key, adapter, port, self.generations[index], app)
        return slot

    async def run(self) -> None:
        log.info("watching %d file(s) for changes", sum(len(w) for w in self.watched))
        while True:
            await asyncio.sleep(POLL_SECONDS)
            for index in range(len(self.files)):
                try:
                    await self.check(index)
                except Exception:  # a bug here must not end reloading for the rest of the run
                    log.exception("checking %s for changes failed", self.files[index])

    async def check(self, index: int) -> None:
        signature = await asyncio.to_thread(_signature, self.watched[index])
        if signature == self.signatures[index]:
            return
        while True:  # let a multi-step save finish before reading
            await asyncio.sleep(SETTLE_SECONDS)
            settled = await asyncio.to_thread(_signature, self.watched[index])
            if settled == signature:
                break
            signature = settled
        self.signatures[index] = signature
        await self.reload(index)

    async def reload(self, index: int) -> bool:
        """Load, compile and swap in file ``index``; on any failure keep the running version."""
        file = self.files[index]
        try:
            plan = await asyncio.to_thread(self._compile, file)
        except LoadError as exc:
            lines = "\n".join(str(d) for d in exc.diagnostics)
            log.error("reload of %s failed; still serving the last good version:\n%s", file, lines)
            return False
        except Exception as exc:  # a bug, not the file: say so briefly, keep serving
            log.error(
                "reload of %s failed (%s: %s); still serving the last good version", file, type(exc).__name__, exc
            )
            log.debug("reload failure", exc_info=True)
            return False
        new_warnings = [d for d in plan.warnings if str(d) not in self.warned[index]]  # not news twice
        for d in new_warnings[:MAX_WARNINGS]:
            log.warning("%s", d)
        self.warned[index] = {str(d) for d in plan.warnings}
        generation = Generation(plan)
        try:
            apps = self._build(index, generation)
            for lifespan in generation.lifespans.values():
                await lifespan.start()
        except Exception as exc:
            log.error(
                "reload of %s failed while starting its adapters (%s); still serving the last good version", file, exc
            )
            await generation.close()
            return False
        old = self.generations[index]
        for key, slot in self.slots.items():
            if key[0] == index:
                slot.current = (generation, apps.get(key, _gone))
        self.generations[index] = generation
        self.plans[index] = plan
        self.watched[index] = await asyncio.to_thread(_references, file, self.options.env_file)
        self.signatures[index] = await asyncio.to_thread(_signature, self.watched[index])
        old.retire()
        self.retired.add(old)
        task = asyncio.create_task(self._drain(old))
        self.drainers.add(task)
        task.add_done_callback(self.drainers.discard)
        sizes = ", ".join(f"{a.kind} {a.namespace} ({a.size})" for a in plan.adapters)
        log.info("reloaded %s: %s", file, sizes or "no adapters")
        return True

    def _compile(self, file: str) -> Plan:
        plan = compile_plan(load(file, strict=self.strict), self.options)
        if plan.left_out:  # a reload never drops a unit that is being served: keep the last good version
            raise LoadError(plan.left_out)
        return plan

    def _build(self, index: int, generation: Generation) -> dict[tuple[object, ...], ASGIApp]:
        """The new version's apps, keyed like the slots; port and address changes are logged
        and the new version is built for the socket that is really bound."""
        from naftiko.runtime.serve import build_app

        plan = generation.plan
        apps: dict[tuple[object, ...], ASGIApp] = {}
        for adapter in _network(plan):
            key = _key(index, adapter)
            slot = self.slots.get(key)
            if slot is None:
                log.warning("adapter '%s' (%s) is new: restart naftiko to serve it", adapter.namespace, adapter.kind)
                continue
            if (adapter.address, adapter.port) != slot.declared:
                log.warning(
                    "adapter '%s' now asks for %s:%s; ports and addresses change on restart"
                    " — it keeps listening on %s:%s",
                    adapter.namespace, adapter.address, adapter.port, slot.address, slot.port,
                )
            app = build_app(replace(adapter, address=slot.address, port=slot.port), plan)  # plans are frozen
            apps[key] = app
            generation.lifespans[key] = _Lifespan(app)
        for key in self.slots:
            if key[0] == index and key not in apps:
                log.warning("adapter '%s' (%s) was removed: its port answers 503 until restart", key[2], key[1])
        return apps

    async def _drain(self, generation: Generation) -> None:
        from naftiko.runtime.serve import resettle_collector

        await generation.drained.wait()
        self.retired.discard(generation)
        await generation.close()
        del generation  # this frame's reference too, before the collection
        # close() shut the telemetry down in a worker thread, whose work item (and through it the
        # replaced version) the thread lets go of only after it has handed back the result: let it.
        await asyncio.sleep(RELEASE_SECONDS)
        resettle_collector()

    async def aclose(self) -> None:
        """Stop draining and close every retired version (the current ones belong to the server)."""
        for task in list(self.drainers):
            task.cancel()
        for generation in list(self.retired):
            await generation.close()
        self.retired.clear()
