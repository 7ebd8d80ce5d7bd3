"""Inbound authentication for every network adapter (contract §9).

:func:`protect` wraps an adapter's ASGI app when its ``authentication`` is set.
"""

from __future__ import annotations


def protect(app, adapter, plan):
    """Return ``app`` guarded by ``adapter.authentication`` (unchanged when there is none)."""
    if getattr(adapter, "authentication", None) is None:
        return app
    raise NotImplementedError("inbound authentication is not implemented yet")
