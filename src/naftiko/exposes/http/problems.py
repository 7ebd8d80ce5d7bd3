"""RFC 9457 problem documents for engine-made REST errors (reference §6)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson
from starlette.responses import Response

from naftiko.errors import EngineError

_TITLES = {
    400: "Invalid input",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    413: "Payload too large",
    500: "Internal error",
    502: "Bad gateway",
    504: "Gateway timeout",
}


def problem(status: int, detail: str, *, field: str | None = None, title: str | None = None,
            headers: Mapping[str, str] | None = None) -> Response:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/problem+json")


def problem_from(exc: EngineError, mask: Callable[[str], object]) -> Response:
    return problem(exc.status, str(mask(exc.detail)), field=exc.field, title=exc.title)
