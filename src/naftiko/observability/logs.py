"""Logging set-up (``--log-format text|json``) and the one line written per request.

The request line goes to the ``naftiko.request`` logger at INFO with its fields attached:
the text format shows them as ``key=value`` pairs, the JSON format as keys of the JSON
object (one object per line, every logger alike). Whether that logger is enabled is decided
once when serving starts; above INFO the adapters are not even wrapped, so request logging
then costs nothing. Values that could carry a secret (paths, messages) pass through the
capability's mask first.

The request line is written off the request's path: :meth:`RequestLog.write` only queues the
line's fields; one writer thread turns them into records and hands them to the handlers, so
formatting and the write to the terminal or pipe never hold up an answer. The queue is bounded;
when it is full the line is written on the spot (slower, never dropped). :meth:`RequestLog.close`
(at shutdown, and at interpreter exit as a safety net) writes every queued line before returning.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TextIO

import orjson

REQUEST_LOGGER = logging.getLogger("naftiko.request")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's fields."""

    _second = -1
    _stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once per second, not once per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` with the time part rendered once per second."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int(record.msecs):03d}"


class StderrHandler(logging.StreamHandler[TextIO]):
    """A stream handler on whatever ``sys.stderr`` is when a record is written, not when the
    handler was made: the request log is written later, by its writer thread, and a process that
    swaps ``sys.stderr`` (an embedding application, a test capturing output) and closes the old one
    must not leave logging writing into a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # read at each write
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__/setStream assign it; sys.stderr wins
        pass


def configure_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Every logger's records to ``stream`` (default: the current ``sys.stderr`` at each write)."""
    handler: logging.StreamHandler[TextIO] = StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Neither format shows process or thread: skip looking them up for every record.
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False


def request_logging_enabled() -> bool:
    return REQUEST_LOGGER.isEnabledFor(logging.INFO)


QUEUE_LINES = 10_000  # lines waiting for the writer before a request writes its own line
_LOGS: weakref.WeakSet[RequestLog] = weakref.WeakSet()


def flush_request_logs() -> None:
    """Block until every line queued so far is written (for readers of the log, such as tests)."""
    for request_log in list(_LOGS):
        request_log.flush()


# One queued request line: when, adapter, namespace, method, target, operation, status, seconds,
# upstream calls, (trace id, span id), and the request's context.
Line = tuple[float, str, str, str, object, str, str, float, int, "tuple[str, str] | None", contextvars.Context]
# What the writer thread takes from the queue: a line, a flush marker, or None (stop).
Queued = Line | threading.Event | None


class RequestLog:
    def __init__(self, mask: Callable[[str], object]) -> None:
        self.mask = mask
        self.lines: queue.SimpleQueue[Queued] | None = None
        self.writer: threading.Thread | None = None
        self.lock = threading.Lock()
        _LOGS.add(self)

    def flush(self) -> None:
        lines = self.lines
        if lines is not None:
            done = threading.Event()
            lines.put(done)
            done.wait(10)

    def _start(self) -> queue.SimpleQueue[Queued]:
        with self.lock:
            if self.lines is None:
                self.lines = queue.SimpleQueue()
                self.writer = threading.Thread(
                    target=self._drain, args=(self.lines,), name="naftiko-request-log", daemon=True
                )
                self.writer.start()
                atexit.register(self.close)
        return self.lines

    def write(
        self, adapter: str, namespace: str, method: str, target: str, operation: str, status: str,
        seconds: float, upstream_calls: int, ids: tuple[str, str] | None,
    ) -> None:
        line: Line = (
            time.time(), adapter, namespace, method, self.mask(target), operation, status, seconds, upstream_calls, ids,
            contextvars.copy_context(),  # filters and formatters see the request's context
        )
        lines = self.lines or self._start()
        if lines.qsize() >= QUEUE_LINES:  # the writer is behind: this request writes its own line
            _emit(line)
            return
        lines.put(line)

    def _drain(self, lines: queue.SimpleQueue[Queued]) -> None:
        while True:
            line = lines.get()
            if line is None:
                return
            if isinstance(line, threading.Event):  # a flush marker: everything before it is written
                line.set()
                continue
            try:
                line[-1].run(_emit, line)
            except Exception:  # a broken handler must not stop the writer; logging reports it
                pass

    def close(self) -> None:
        """Write every queued line, then stop the writer (idempotent)."""
        with self.lock:
            lines, writer = self.lines, self.writer
            self.lines = self.writer = None
        if lines is not None and writer is not None:
            lines.put(None)
            writer.join()


def _emit(line: Line) -> None:
    created, adapter, namespace, method, target, operation, status, seconds, upstream_calls, ids, _ = line
    fields = {
        "adapter": adapter,
        "namespace": namespace,
        "method": method,
        "target": target,
        "operation": operation,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "upstream_calls": upstream_calls,
    }
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    text = f"{adapter} {namespace} {method} {target} " + " ".join(f"{k}={fields[k]}" for k in list(fields)[4:])
    # makeRecord + handle: what .info() does, minus the stack walk for the caller's line.
    record = REQUEST_LOGGER.makeRecord(
        REQUEST_LOGGER.name, logging.INFO, "", 0, text, (), None, extra={"fields": fields}
    )
    record.created, record.msecs = created, (created - int(created)) * 1000
    REQUEST_LOGGER.handle(record)
