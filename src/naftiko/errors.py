"""Errors and diagnostics.

Every problem found in a capability file is reported as ``file:line:col: message``; every
problem found while serving a request is an :class:`EngineError` that adapters turn into a
problem+json body (REST) or an ``isError`` tool result (MCP).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnostic:
    file: str
    line: int
    col: int
    message: str
    severity: str = "error"  # "error" | "warning" | "note" (context for the errors that follow)

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.file}:{self.line}:{self.col}: {prefix}{one_line(self.message)}"


def one_line(text: str) -> str:
    """Escape what would break a one-line diagnostic (newlines, control characters).

    Messages quote the author's text (keys, namespaces, values), which may hold any character;
    escaping here, where every diagnostic is rendered, keeps each report on one line.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LoadError(Exception):
    """A capability file cannot be served. Carries one diagnostic per problem."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class EngineError(Exception):
    """A request-time failure made by the engine itself (not relayed from upstream).

    ``status`` is the HTTP status a REST adapter answers with; ``field`` names the offending
    input when there is one.
    """

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, *, field: str | None = None, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        if status is not None:
            self.status = status


class InvalidInput(EngineError):
    status = 400
    title = "Invalid input"


class PayloadTooLarge(EngineError):
    status = 413
    title = "Payload too large"


class UpstreamUnavailable(EngineError):
    status = 502
    title = "Bad gateway"


class UpstreamTimeout(EngineError):
    status = 504
    title = "Gateway timeout"
