"""Logging set-up (``--log-format text|json``) and the one line written per request.

The request line goes to the ``naftiko.request`` logger at INFO with its fields attached:
the text format shows them as ``key=value`` pairs, the JSON format as keys of the JSON
object (one object per line, every logger alike). Whether that logger is enabled is decided
once when serving starts; above INFO the adapters are not even wrapped, so request logging
then costs nothing. Values that could carry a secret (paths, messages) pass through the
capability's mask first.

The request line is written off the request's path: :meth:`RequestLog.write` only queues the
line's fields; one writer thread, woken at most once per batch (:data:`BATCH_SECONDS`), turns
them into records and hands them to the handlers, and the handlers configured here write a
batch's text in one write. So formatting and the write to the terminal or pipe never hold up an
answer, and cost one thread wake-up and one write per batch rather than per request. The queue is
bounded; when it is full the line is written on the spot (slower, never dropped).
:meth:`RequestLog.close` (at shutdown, and at interpreter exit as a safety net) writes every
queued line before returning.
"""

from __future__ import annotations

import atexit
import collections
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
_MILLIS = tuple(f"{n:03d}" for n in range(1000))
"""The milliseconds of a timestamp as written (``_MILLIS[7] == "007"``): looking one up costs far
less than formatting an int with ``:03d`` for every line."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's fields."""

    _second = -1
    _stamp = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once per second, not once per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{_MILLIS[int((created - second) * 1000)]}Z"

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
        return f"{self.second(int(record.created))},{int(record.msecs):03d}"

    def second(self, second: int) -> str:
        """The time part up to the second (local time), for a time ``second`` seconds after the epoch."""
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return self._stamp


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that, on the request log's writer thread, gathers a batch's lines and
    writes them in one go (:func:`_write_batch`); anywhere else it writes each record at once."""

    def emit(self, record: logging.LogRecord) -> None:
        texts = _batch.texts
        if texts is None:
            super().emit(record)
            return
        try:
            text = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        texts.setdefault(self, []).append(text)

    def write_all(self, parts: list[str]) -> None:
        if not parts:
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            try:
                stream = self.stream
                stream.write("".join(parts))
                stream.flush()
            except RecursionError:  # as StreamHandler.emit
                raise
            except Exception:
                logging.Handler.handleError(self, logging.makeLogRecord({"msg": "request log batch", "args": ()}))


class StderrHandler(BatchingStreamHandler):
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
    handler: logging.StreamHandler[TextIO] = StderrHandler() if stream is None else BatchingStreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Neither format shows process or thread: skip looking them up for every record.
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False


def request_logging_enabled() -> bool:
    return REQUEST_LOGGER.isEnabledFor(logging.INFO)


QUEUE_LINES = 10_000  # lines waiting for the writer before a request writes its own line
BATCH_SECONDS = 0.1
"""How long the writer lets lines gather after the first one before writing them together. Each
wake-up of the writer takes the interpreter lock from the event loop, and that costs the loop far
more than the instructions it runs: measured under ``wrk -c32`` (alternating rounds), 10 ms batches
cost about 28 µs of CPU per request more than 100 ms ones, whose lines cost about 7 µs over none at
all; 250 ms batches gained almost nothing more (bench/RESULTS.md). A line so appears within about a
tenth of a second; flush_request_logs() and shutdown write what is queued at once."""
_LOGS: weakref.WeakSet[RequestLog] = weakref.WeakSet()


def flush_request_logs() -> None:
    """Block until every line queued so far is written (for readers of the log, such as tests)."""
    for request_log in list(_LOGS):
        request_log.flush()


# One request line: when, adapter, namespace, method, target, operation, status, seconds, upstream
# calls, (trace id, span id), and the request's context.
Line = tuple[float, str, str, str, str, str, str, float, int, "tuple[str, str] | None", contextvars.Context]
# The same as queued by the request, target and status as RequestLog.write takes them (_settled makes a Line)
Queued = tuple[
    float, str, str, str, "str | bytes", str, "int | str", float, int, "tuple[str, str] | None", contextvars.Context
]


class RequestLog:
    """The request lines of one capability, written in batches by one writer thread.

    A request appends its line to ``pending`` and wakes the writer only when it is not awake
    already (``armed``): the writer then waits :data:`BATCH_SECONDS` for more lines to gather and
    writes them all, each handler's text in one write. So under load the writer wakes about ten
    times a second, not once per request, and the terminal or pipe sees one write per batch.

    The wake-up is a token put in a :class:`queue.SimpleQueue` that the writer blocks on: putting
    one is a single C call, where ``threading.Event.set`` runs a Condition's Python code on the
    request's thread. A token more than needed (from :meth:`flush` or :meth:`close`) only makes
    the writer look at the queue once more.
    """

    def __init__(self, mask: Callable[[str], object]) -> None:
        self.mask = mask
        self.pending: collections.deque[Queued] = collections.deque()
        self.markers: collections.deque[threading.Event] = collections.deque()  # flush() waiting for the writer
        self.armed = False  # the writer was woken and has not taken the pending lines yet
        self.wake: queue.SimpleQueue[None] = queue.SimpleQueue()  # one token per wake-up
        self.stop = threading.Event()  # the current writer's: set by close()
        self.writer: threading.Thread | None = None
        self.lock = threading.Lock()
        _LOGS.add(self)

    def flush(self) -> None:
        if self.writer is not None:
            done = threading.Event()
            self.markers.append(done)
            self.wake.put(None)
            done.wait(10)

    def _start(self) -> None:
        with self.lock:
            if self.writer is None:
                self.stop = threading.Event()
                self.writer = threading.Thread(
                    target=self._drain, args=(self.stop,), name="naftiko-request-log", daemon=True
                )
                self.writer.start()
                atexit.register(self.close)

    def write(
        self, adapter: str, namespace: str, method: str, target: str | bytes, operation: str, status: int | str,
        seconds: float, upstream_calls: int, ids: tuple[str, str] | None,
    ) -> None:
        """Queue one request's line. ``target`` may be the request's raw path as the server gave
        it (bytes, possibly with its query) and ``status`` an int: the writer thread decodes,
        cuts and masks the one and spells the other (:func:`_settled`), so the request pays for
        neither."""
        line: Queued = (
            time.time(), adapter, namespace, method, target, operation, status, seconds, upstream_calls, ids,
            contextvars.copy_context(),  # filters and formatters see the request's context
        )
        if self.writer is None:
            self._start()
        if len(self.pending) >= QUEUE_LINES:  # the writer is behind: this request writes its own line
            _emit(_settled(line, self.mask))
            return
        self.pending.append(line)
        if not self.armed:
            self.armed = True
            self.wake.put(None)

    def _drain(self, stopped: threading.Event) -> None:
        pending, markers, wake = self.pending, self.markers, self.wake
        while True:
            wake.get()
            if not (markers or stopped.is_set()):
                time.sleep(BATCH_SECONDS)  # let the lines of the next few milliseconds join this batch
            # Before the lines are taken: a line appended after this puts a token for the next batch.
            self.armed = False
            waiting = len(markers)  # flush markers set after the lines queued before them are written
            stop = stopped.is_set()
            _write_batch(pending, self.mask)
            for _ in range(waiting):
                markers.popleft().set()
            if stop:
                return

    def close(self) -> None:
        """Write every queued line, then stop the writer (idempotent)."""
        with self.lock:
            writer, self.writer = self.writer, None
            if writer is not None:
                self.stop.set()
                self.wake.put(None)
        if writer is not None:
            writer.join()
        if self.pending:  # written after the writer took its last batch
            _write_batch(self.pending, self.mask)


class _Batch(threading.local):
    """While the writer thread writes a batch: the text each handler would have written, in order."""

    texts: dict[BatchingStreamHandler, list[str]] | None = None


_batch = _Batch()


def _write_batch(pending: collections.deque[Queued], mask: Callable[[str], object]) -> None:
    """Every pending line through the logging handlers; :class:`BatchingStreamHandler`s write
    their share of the batch at once (one write, one flush) instead of once per line."""
    plain = _plain_handlers()
    if plain is not None:  # the set-up configure_logging makes: the same text, without a LogRecord per line
        lines: list[Line] = []
        while pending:
            lines.append(_settled(pending.popleft(), mask))
        for handler in plain:
            handler.write_all(_plain_texts(handler, lines))
        return
    texts: dict[BatchingStreamHandler, list[str]] = {}
    _batch.texts = texts
    try:
        while pending:
            line = _settled(pending.popleft(), mask)
            try:
                line[-1].run(_emit, line)  # in the request's context: filters may read it
            except Exception:  # a broken handler must not stop the writer; logging reports it
                pass
    finally:
        _batch.texts = None
    for handler, out in texts.items():
        handler.write_all(out)


def _settled(line: Queued, mask: Callable[[str], object]) -> Line:
    """The line as it is written: the target a masked text, cut at its query when it came as the
    raw path, and the status a text. Done by the writer, off the request's path. The mask comes
    from the capability's binds: a path may carry a bind value a caller sent back."""
    created, adapter, namespace, method, target, operation, status, seconds, upstream_calls, ids, context = line
    # bytes: ASGI's raw_path, which some servers give with its query
    text = target.decode("latin-1").split("?", 1)[0] if isinstance(target, bytes) else target
    return (created, adapter, namespace, method, str(mask(text)), operation, str(status), seconds, upstream_calls,
            ids, context)


def _plain_handlers() -> list[BatchingStreamHandler] | None:
    """The handlers a request line reaches when logging is as :func:`configure_logging` left it
    (naftiko's own handlers and formatters, no filter anywhere on the way), else None: then
    every line goes through ``Logger.handle`` as any record does."""
    logger: logging.Logger | None = REQUEST_LOGGER
    if REQUEST_LOGGER.disabled or REQUEST_LOGGER.filters or not REQUEST_LOGGER.isEnabledFor(logging.INFO):
        return None
    found: list[BatchingStreamHandler] = []
    while logger is not None:
        for handler in logger.handlers:
            if not (
                type(handler) in (BatchingStreamHandler, StderrHandler)
                and isinstance(handler, BatchingStreamHandler)
                and not handler.filters
                and handler not in found  # on two loggers: each line twice, interleaved, as logging does
                and handler.level <= logging.INFO
                and (type(handler.formatter) is JsonFormatter
                     or (type(handler.formatter) is TextFormatter and handler.formatter._fmt == TEXT_FORMAT))
            ):
                return None
            found.append(handler)
        logger = logger.parent if logger.propagate else None
    return found


def _plain_texts(handler: BatchingStreamHandler, lines: list[Line]) -> list[str]:
    """What the handler's formatter would make of each line's record, plus the terminator."""
    formatter = handler.formatter
    if type(formatter) is JsonFormatter:
        return [_json_text(formatter, line) + handler.terminator for line in lines]
    assert isinstance(formatter, TextFormatter)
    return _text_texts(formatter, lines, handler.terminator)


def _json_text(formatter: JsonFormatter, line: Line) -> str:
    created, adapter, namespace, method, target = line[:5]
    fields = _fields(line)
    message = f"{adapter} {namespace} {method} {target} " + " ".join(f"{k}={fields[k]}" for k in list(fields)[4:])
    out: dict[str, Any] = {
        "time": formatter._time(created), "level": "INFO", "logger": REQUEST_LOGGER.name, "message": message,
    }
    out.update(fields)
    return orjson.dumps(out, default=str).decode()


def _text_texts(formatter: TextFormatter, lines: list[Line], terminator: str) -> list[str]:
    """:data:`TEXT_FORMAT` lines, with what is the same for every line looked up once per batch."""
    head = f" INFO {REQUEST_LOGGER.name}: "
    texts: list[str] = []
    last, day_time = -1.0, ""
    for created, adapter, namespace, method, target, operation, status, seconds, upstream_calls, ids, _ in lines:
        fraction = created % 1.0  # created - int(created), without a call to int()
        second = created - fraction
        if second != last:  # the formatter's cached text, asked for once per second
            last, day_time = second, formatter.second(int(second))
        millis = _MILLIS[int(fraction * 1000)]  # as logging sets a record's msecs
        trace = "" if ids is None else f" trace_id={ids[0]} span_id={ids[1]}"
        texts.append(
            f"{day_time},{millis}{head}{adapter} {namespace} {method} {target} operation={operation} status={status} "
            f"duration_ms={_milliseconds(seconds)} upstream_calls={upstream_calls}{trace}{terminator}"
        )
    return texts


def _milliseconds(seconds: float) -> str:
    """``str(round(seconds * 1000, 2))`` (the ``duration_ms`` of a text line) for less than half
    its cost. ``%.2f`` takes the same correctly rounded digits as ``round(x, 2)``, and below
    2**46 two-decimal values are distinct floats, so the shortest repr of the rounded value is those
    digits with at most one trailing zero dropped ("12.30" → "12.3", "12.00" → "12.0"). Beyond
    that (centuries) and for inf/nan, ``round`` itself."""
    ms = seconds * 1000
    if -1e13 < ms < 1e13:
        text = f"{ms:.2f}"
        return text[:-1] if text[-1] == "0" else text
    return str(round(ms, 2))


def _fields(line: Line) -> dict[str, object]:
    _, adapter, namespace, method, target, operation, status, seconds, upstream_calls, ids, _context = line
    fields: dict[str, object] = {
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
    return fields


def _emit(line: Line) -> None:
    created, adapter, namespace, method, target = line[:5]
    fields = _fields(line)
    text = f"{adapter} {namespace} {method} {target} " + " ".join(f"{k}={fields[k]}" for k in list(fields)[4:])
    # makeRecord + handle: what .info() does, minus the stack walk for the caller's line.
    record = REQUEST_LOGGER.makeRecord(
        REQUEST_LOGGER.name, logging.INFO, "", 0, text, (), None, extra={"fields": fields}
    )
    record.created, record.msecs = created, (created - int(created)) * 1000
    REQUEST_LOGGER.handle(record)
