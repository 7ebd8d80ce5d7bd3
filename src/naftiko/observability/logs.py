"""Logging set-up (``--log-format text|json``) and the one line written per request.

The request line goes to the ``naftiko.request`` logger at INFO with its fields attached:
the text format shows them as ``key=value`` pairs, the JSON format as keys of the JSON
object (one object per line, every logger alike). Whether that logger is enabled is decided
once when serving starts; above INFO the adapters are not even wrapped, so request logging
then costs nothing. Values that could carry a secret (paths, messages) pass through the
capability's mask first.
"""

from __future__ import annotations

import logging
import sys
import time

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
        out: dict = {
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

    def formatTime(self, record: logging.LogRecord, datefmt=None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int(record.msecs):03d}"


def configure_logging(level: str, fmt: str = "text", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Neither format shows process or thread: skip looking them up for every record.
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False


def request_logging_enabled() -> bool:
    return REQUEST_LOGGER.isEnabledFor(logging.INFO)


class RequestLog:
    def __init__(self, mask):
        self.mask = mask

    def write(
        self, adapter: str, namespace: str, method: str, target: str, operation: str, status: str,
        seconds: float, upstream_calls: int, ids: tuple[str, str] | None,
    ) -> None:
        target = self.mask(target)
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
        REQUEST_LOGGER.handle(REQUEST_LOGGER.makeRecord(REQUEST_LOGGER.name, logging.INFO, "", 0, text, (), None, extra={"fields": fields}))
