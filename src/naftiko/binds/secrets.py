"""Keeping secrets out of logs, errors, dry-run output and responses.

Every value that comes from a bind is a secret. :meth:`Secrets.mask` replaces any occurrence
of one inside a string (recursively inside lists and objects) and masks credential headers
whole, keeping only the scheme word so a reader can still tell ``Bearer`` from ``Basic``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus

MASK = "****"
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "apikey"})
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def _forms(value: str) -> set[str]:
    """A secret as it may appear in text an upstream or a library wrote.

    Raw; percent-encoded as a whole value, as a path (``/`` kept) and as a form (``+`` for
    space), each with upper- and lower-case hex; JSON-escaped with and without non-ASCII
    escapes and with ``/`` escaped as ``\\/`` (PHP, some Java encoders).
    """
    forms = {value}
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value, safe="")):
        forms.add(encoded)
        forms.add(_PERCENT.sub(lambda m: m.group(0).lower(), encoded))
    for escaped in (json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))
    return forms


def masked_prefix(mask: Callable[[str], object], text: str, limit: int) -> str:
    """``text`` masked, then cut to at most ``limit`` characters: masking after the cut would
    miss a secret that straddles it and let all but its last characters out."""
    masked = str(mask(text))  # a masked string is a string
    return masked if len(masked) <= limit else masked[:limit]


class Secrets:
    def __init__(self, values: Iterable[str] = (), *, credential_headers: Iterable[str] = ()):
        # Very short values would mask ordinary text everywhere; they are still never logged
        # on their own because credential headers are masked whole.
        forms = {f for v in values if isinstance(v, str) and len(v) >= 4 for f in _forms(v)}
        self._values = sorted(forms, key=len, reverse=True)
        self._headers = _CREDENTIAL_HEADERS | {h.lower() for h in credential_headers}

    def add(self, value: str) -> None:
        if isinstance(value, str) and len(value) >= 4 and value not in self._values:
            self._values = sorted({*self._values, *_forms(value)}, key=len, reverse=True)

    def add_credential_header(self, name: str) -> None:
        self._headers = self._headers | {name.lower()}

    def mask(self, value: object, header: str | None = None) -> object:
        if header is not None and header.lower() in self._headers and isinstance(value, str):
            scheme, sep, _ = value.partition(" ")
            return f"{scheme} {MASK}" if sep and scheme.isalpha() and len(scheme) < 16 else MASK
        if isinstance(value, str):
            for secret in self._values:
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value
