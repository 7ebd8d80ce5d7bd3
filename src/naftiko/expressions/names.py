"""Name matching between what a caller sends and what a consumed operation expects.

Generated capability files spell one variable several ways (``{customer-id}`` on the route,
``{customer_id}`` upstream; ``{orgid}`` vs ``orgId``). An exact name wins; otherwise names
match case-insensitively with ``-`` and ``_`` ignored, and only when exactly one candidate
matches (reference §3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def normalise(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def find_name(available: Mapping[str, object] | Iterable[str], wanted: str) -> str | None:
    """The key of ``available`` that ``wanted`` refers to, or None (absent or ambiguous)."""
    if wanted in available:
        return wanted
    target = normalise(wanted)
    found = [key for key in available if normalise(key) == target]
    return found[0] if len(found) == 1 else None
