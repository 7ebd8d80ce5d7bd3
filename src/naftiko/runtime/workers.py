"""``naftiko-run --workers N``: N processes serving the same ports, to use every core.

How (Linux): the parent compiles the capability once, *reserves* each port by binding a
socket with ``SO_REUSEPORT`` without listening on it (so a port conflict or ``port 0`` is
settled once, before any worker exists), then forks N workers. Each worker binds and listens
on its own ``SO_REUSEPORT`` socket on that port and runs the ordinary single-process server,
with its own event loop and its own upstream pools. The kernel spreads new connections
evenly over the listening sockets; the parent's socket never listens, so it gets none.
Fork rather than spawn: workers start at once from the already compiled plans, which the
parent never used (no loop, no sessions) and which stay shared copy-on-write.

The parent prints the start-up lines once, when every worker accepts. SIGTERM or SIGINT to
the parent stops every worker gracefully and exits 0. A worker that dies on its own is
logged and replaced; more than :data:`MAX_RESTARTS` deaths within :data:`RESTART_WINDOW`
seconds means something is wrong with the capability or the host, so everything stops and
the parent exits 1. Workers get SIGTERM if the parent itself dies (``PR_SET_PDEATHSIG``),
so none is left behind.

MCP is served sessionless, so any worker answers any request. What each worker keeps in
memory (metrics, trace buffers of a control adapter) is its own.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from naftiko.engine.plan import McpAdapterPlan, Plan
from naftiko.runtime.serve import GRACEFUL_SECONDS, StartupError, _bind, network_port, serve

log = logging.getLogger("naftiko.runtime.workers")

READY = "\0ready"
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
EXIT_FAILED = 1
EXIT_STARTUP = 2


def check_supported() -> str | None:
    """Why ``--workers`` cannot run here, or None."""
    # BSD and macOS accept SO_REUSEPORT but do not spread connections over the sockets.
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return (
            "--workers needs SO_REUSEPORT and fork (Linux); "
            "run several naftiko processes behind a load balancer instead"
        )
    return None


def _reserve(plans: list[Plan]) -> list[socket.socket]:
    """Bind (not listen) every network adapter's port with SO_REUSEPORT and pin the plans to
    the real port, so every worker binds the same one."""
    reserved: list[socket.socket] = []
    try:
        for index, plan in enumerate(plans):
            ports: dict[str, int] = {}
            for adapter in plan.adapters:
                if isinstance(adapter, McpAdapterPlan) and adapter.transport == "stdio":
                    continue
                sock = _bind(adapter.address, network_port(adapter), adapter.namespace, reuse_port=True, listen=False)
                reserved.append(sock)
                ports[adapter.namespace] = sock.getsockname()[1]
            plans[index] = plan.with_ports(ports)  # plans are frozen: the list holds the pinned copy
    except BaseException:
        for sock in reserved:
            sock.close()
        raise
    return reserved


class _Worker:
    def __init__(self, index: int, pid: int, ready_fd: int):
        self.index = index
        self.pid = pid
        self.ready_fd: int | None = ready_fd
        self.buffer = b""
        self.ready = False


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(
        self, plans: list[Plan], count: int, *, announce: Callable[[str], None], log_level: str,
        run: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.plans = plans
        self.count = count
        self.announce = announce
        self.log_level = log_level
        self.run = run
        self.workers: dict[int, _Worker] = {}
        self.deaths: collections.deque[float] = collections.deque()
        self.stopping = False
        self.failure: int | None = None
        self.announced = False  # the start-up lines are out: from now on a dead worker is replaced
        self.reserved: list[socket.socket] = []
        self.wake: tuple[int, int] = (-1, -1)  # signal wakeup pipe of the parent

    # -------------------------------------------------------------- parent

    def main(self) -> int:
        self.reserved = _reserve(self.plans)
        wake_r, wake_w = self.wake = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select through the wakeup fd
        try:
            gc.collect()
            gc.freeze()  # what the workers inherit stays shared instead of being touched by their collector
            for index in range(self.count):
                self._spawn(index)
            self._supervise(wake_r)
            return self._shutdown()
        finally:
            signal.set_wakeup_fd(-1)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (wake_r, wake_w):
                os.close(fd)
            for sock in self.reserved:
                sock.close()
            for worker in self.workers.values():
                if worker.ready_fd is not None:
                    os.close(worker.ready_fd)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _spawn(self, index: int) -> None:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the caller's code
            code = EXIT_FAILED
            try:
                os.close(read_fd)
                code = self._worker(write_fd)
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(write_fd)
        self.workers[pid] = _Worker(index, pid, read_fd)

    def _supervise(self, wake_r: int) -> None:
        while not self.stopping and self.failure is None:
            fds = [w.ready_fd for w in self.workers.values() if w.ready_fd is not None]
            readable, _, _ = select.select([wake_r, *fds], [], [], 1.0)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
            for worker in list(self.workers.values()):
                if worker.ready_fd in readable:
                    self._read_ready(worker)
            self._reap()
            all_ready = len(self.workers) == self.count and all(w.ready for w in self.workers.values())
            if not self.announced and self.failure is None and all_ready:
                self.announced = True
                first = min(self.workers.values(), key=lambda w: w.index)
                for line in first.buffer.decode().split("\n"):
                    if line and line != READY:
                        self.announce(line)
                pids = ", ".join(str(w.pid) for w in sorted(self.workers.values(), key=lambda w: w.index))
                log.info("%d workers serving (pids %s)", self.count, pids)

    def _read_ready(self, worker: _Worker) -> None:
        fd = worker.ready_fd
        if fd is None:  # already at end of file and closed
            return
        chunk = os.read(fd, 65536)
        if chunk:
            worker.buffer += chunk
            worker.ready = worker.buffer.endswith((READY + "\n").encode())
            return
        os.close(fd)
        worker.ready_fd = None

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            if worker.ready_fd is not None:
                os.close(worker.ready_fd)
            if self.stopping:
                continue
            if not self.announced:
                log.error("worker %d (pid %d) %s during start-up; stopping", worker.index, pid, _describe(status))
                self.failure = EXIT_STARTUP
                return
            now = time.monotonic()
            self.deaths.append(now)
            while self.deaths and now - self.deaths[0] > RESTART_WINDOW:
                self.deaths.popleft()
            if len(self.deaths) > MAX_RESTARTS:
                log.error(
                    "worker %d (pid %d) %s; %d worker deaths within %ds, stopping",
                    worker.index, pid, _describe(status), len(self.deaths), RESTART_WINDOW,
                )
                self.failure = EXIT_FAILED
                return
            log.error("worker %d (pid %d) %s; starting a new one", worker.index, pid, _describe(status))
            self._spawn(worker.index)

    def _shutdown(self) -> int:
        """SIGTERM every worker, wait for graceful ends (bounded), SIGKILL what remains."""
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        grace = max(
            (getattr(getattr(p, "options", None), "grace", GRACEFUL_SECONDS) for p in self.plans),
            default=GRACEFUL_SECONDS,
        )
        deadline = time.monotonic() + grace + 5  # the workers' own graceful stop, then closing pools
        clean = True
        while self.workers and time.monotonic() < deadline:
            for pid in list(self.workers):
                try:
                    done, status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    self.workers.pop(pid)
                    continue
                if done:
                    self.workers.pop(pid)
                    code = os.waitstatus_to_exitcode(status)
                    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                        clean = False
                        log.error("worker (pid %d) %s while stopping", pid, _describe(status))
            if self.workers:
                time.sleep(0.05)
        for pid in list(self.workers):
            log.error("worker (pid %d) did not stop in time; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            clean = False
        self.workers.clear()
        if self.failure is not None:
            return self.failure
        return 0 if clean else EXIT_FAILED

    # -------------------------------------------------------------- worker

    def _worker(self, ready_fd: int) -> int:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()
        for fd in self.wake:
            os.close(fd)
        for sock in self.reserved:
            sock.close()
        for worker in self.workers.values():  # the other workers' pipes belong to the parent
            if worker.ready_fd is not None:
                os.close(worker.ready_fd)
        lines: list[str] = []

        def ready() -> None:
            os.write(ready_fd, ("".join(f"{line}\n" for line in lines) + READY + "\n").encode())
            os.close(ready_fd)

        try:
            self.run(
                serve(self.plans, announce=lines.append, log_level=self.log_level, reuse_port=True, on_ready=ready)
            )
        except StartupError as exc:
            print(f"naftiko: error: {exc}", file=sys.stderr)
            return EXIT_STARTUP
        except KeyboardInterrupt:
            return 0
        except BaseException:
            log.exception("worker failed")
            return EXIT_FAILED
        return 0


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the parent dies, so no worker is orphaned."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(EXIT_FAILED)


def serve_workers(
    plans: list[Plan], count: int, *, announce: Callable[[str], None], log_level: str,
    run: Callable[[Coroutine[Any, Any, None]], object],
) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT; returns the exit code. Raises
    :class:`StartupError` when a port cannot be reserved."""
    return Supervisor(plans, count, announce=announce, log_level=log_level, run=run).main()
