"""Loading a capability file: YAML with positions → document model → diagnostics.

Errors stop the load (a :class:`~naftiko.errors.LoadError` with one ``file:line:col`` line
per problem); schema deviations are warnings unless ``strict`` (contract §1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from .errors import Diagnostic, LoadError
from .spec import SPEC_VERSION
from .spec import schema as spec_schema
from .spec.model import Document
from .yamlsource import Source, read_source

_KIND_FIELDS = {"type"}


@dataclass
class Loaded:
    source: Source
    document: Document
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.source.file


def _data_path(data: object, loc: tuple) -> tuple:
    """Pydantic locations include union tags (``'rest'``, ``'http'``); keep only real keys."""
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and part == "in_" and "in" in node:
            node, path = node["in"], path + ["in"]
        elif isinstance(node, dict) and isinstance(part, str) and part.rstrip("_") in node:
            node, path = node[part.rstrip("_")], path + [part.rstrip("_")]
    return tuple(path)


def _message(err: dict, path: tuple) -> str:
    kind = err["type"]
    where = str(path[-1]) if path else "document"  # Diagnostic.__str__ escapes control characters
    ctx = err.get("ctx") or {}
    if kind == "union_tag_invalid":
        field = ctx.get("discriminator", "type").strip("'")
        return f"unknown {field} {ctx.get('tag')!r} (expected {ctx.get('expected_tags', '')})"
    if kind == "literal_error" and path and path[-1] in _KIND_FIELDS:
        return f"unknown type {err.get('input')!r} (expected {ctx.get('expected', '')})"
    if kind == "union_tag_not_found":
        return f"missing field '{ctx.get('discriminator', 'type').strip(chr(39))}'"
    if kind == "missing":
        return f"missing required field '{err['loc'][-1]}'"
    if kind == "literal_error":
        return f"'{where}' must be one of {ctx.get('expected')}, got {err.get('input')!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"'{where}' must be an integer, got {err.get('input')!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"'{where}' must be a boolean, got {err.get('input')!r}"
    if kind in ("string_type",):
        return f"'{where}' must be a string, got {type(err.get('input')).__name__}"
    if kind in ("list_type",):
        return f"'{where}' must be a list, got {type(err.get('input')).__name__}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"'{where}' must be a mapping, got {type(err.get('input')).__name__}"
    return f"'{where}': {err['msg']}"


def validate_model(source: Source, strict: bool = False) -> Document:
    if not isinstance(source.data, dict):
        raise LoadError([source.diagnostic((), "a capability file must be a YAML mapping")])
    try:
        return Document.model_validate(source.data)
    except ValidationError as exc:
        diagnostics: list[Diagnostic] = []
        seen: set = set()
        for err in exc.errors(include_url=False):
            path = _data_path(source.data, err["loc"])
            if err["type"] == "union_tag_invalid":  # point at the offending `type:` itself
                path = path + ((err.get("ctx") or {}).get("discriminator", "type").strip("'"),)
            message = _message(err, path)
            if strict:  # every --strict error names its JSON path, like the schema's
                message += " (at $" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) + ")"
            d = source.diagnostic(path, message)
            if (d.line, d.col, d.message) not in seen:
                seen.add((d.line, d.col, d.message))
                diagnostics.append(d)
        diagnostics.sort(key=lambda d: (d.line, d.col))
        raise LoadError(diagnostics) from None


def load(path: str, *, strict: bool = False) -> Loaded:
    source = read_source(path)
    return load_source(source, strict=strict)


def load_source(source: Source, *, strict: bool = False) -> Loaded:
    document = validate_model(source, strict)
    severity = "error" if strict else "warning"
    problems = list(source.duplicates)
    if document.naftiko != SPEC_VERSION:
        problems.append(
            source.diagnostic(("naftiko",), f"expected naftiko: {SPEC_VERSION}, got {document.naftiko!r}" + (" (at $.naftiko)" if strict else ""), severity)
        )
    problems.extend(spec_schema.check(source, severity))
    errors = [d for d in problems if d.severity == "error"]
    if errors:
        raise LoadError(errors)
    return Loaded(source, document, problems)
