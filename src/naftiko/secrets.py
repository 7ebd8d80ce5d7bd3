"""Keeping secrets out of logs, errors, dry-run output and responses.

Every value that comes from a bind is a secret. :meth:`Secrets.mask` replaces any occurrence
of one inside a string (recursively inside lists and objects) and masks credential headers
whole, keeping only the scheme word so a reader can still tell ``Bearer`` from ``Basic``.
"""

from __future__ import annotations

import json
from typing import Iterable
from urllib.parse import quote, quote_plus

MASK = "****"
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "apikey"})


def _forms(value: str) -> set[str]:
    """A secret as it may appear: raw, percent-encoded (URLs, forms) or JSON-escaped."""
    return {value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1]}


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
