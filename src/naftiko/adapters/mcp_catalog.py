"""MCP resources and prompts: compiled from the adapter's ``resources`` and ``prompts``."""

from __future__ import annotations


def compile_catalog(compiler, adapter, path: tuple, consumers, aliases, binds):
    """Return (resources, prompts) plans for an MCP adapter."""
    for i, _ in enumerate(adapter.resources):
        compiler.warn(path + ("resources", i), "MCP resources are not served yet; skipped")
    for i, _ in enumerate(adapter.prompts):
        compiler.warn(path + ("prompts", i), "MCP prompts are not served yet; skipped")
    return [], []
