"""Conformance to the bundled JSON Schema of the version a file declares.

Every published version's schema is bundled (``naftiko-schema.json`` is 1.0.0-alpha2, the others
are under ``schemas/``, see its README for their sources). Deviations are warnings in the default
tolerant mode and errors under ``--strict`` (docs/reference.md). Each schema is compiled once per
process, when first needed.
"""

from __future__ import annotations

import functools
import json
import re
from collections import OrderedDict
from importlib import resources
from typing import Any, NamedTuple

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from naftiko.document import JSONValue
from naftiko.document.source import Path, Source, value_at
from naftiko.errors import Diagnostic

ALPHA2 = "1.0.0-alpha2"


def schema_text(version: str = ALPHA2) -> str:
    """The bundled schema of ``version`` as published (``KeyError`` for an unknown version)."""
    name = "naftiko-schema.json" if version == ALPHA2 else f"schemas/{version}.json"
    path = resources.files(__package__).joinpath(name)
    if not path.is_file():
        raise KeyError(version)
    return path.read_text("utf-8")


@functools.cache
def schema(version: str = ALPHA2) -> dict[str, Any]:
    """The bundled schema of ``version``, parsed (a JSON Schema document: its values are arbitrary)."""
    parsed: dict[str, Any] = json.loads(schema_text(version))
    return parsed


@functools.cache
def _validator(version: str = ALPHA2) -> Draft202012Validator:
    return Draft202012Validator(schema(version))


_QUOTED = re.compile(r"'([^']+)'")

# Documented naftiko extension keys, as (parent list, key): the spec's schema does not know
# them, so they are accepted silently in tolerant mode and still reported under --strict.
# resilience: timeouts, retries, concurrency and response-size limits (docs/resilience.md).
# pagination: on consumed operations (how the upstream pages) and on exposed units (callers may
# ask for several pages), docs/reference.md "Pagination".
# style/explode/schema on parameters, encoding/contentType on bodies: OpenAPI serialisation and
# full input schemas, written by `naftiko import openapi` (docs/openapi.md).
EXTENSION_KEYS = frozenset(
    {("consumes", "resilience"), ("operations", "pagination"), ("tools", "pagination"), ("functions", "pagination"),
     ("resources", "pagination"), ("inputParameters", "style"), ("inputParameters", "explode"),
     ("inputParameters", "schema")}
)
EXTENSION_FIELDS = frozenset({("body", "encoding"), ("body", "contentType")})


def _is_extension(where: Path, data: JSONValue = None) -> bool:
    if len(where) >= 2 and (where[-2], where[-1]) in EXTENSION_FIELDS:
        return True
    if len(where) >= 3 and isinstance(where[-2], int) and (where[-3], where[-1]) in EXTENSION_KEYS:
        return True
    return _in_token_auth(where, data)


def _in_token_auth(where: Path, data: JSONValue) -> bool:
    """Inside a consumes entry's ``authentication`` of an outbound token kind (``oauth2`` with a
    ``grantType``, ``custom-token``): naftiko extensions (docs/reference.md, "Outbound OAuth2")."""
    for i in range(len(where) - 2):
        if where[i] == "consumes" and isinstance(where[i + 1], int) and where[i + 2] == "authentication":
            node = value_at(data, where[: i + 3])
            return isinstance(node, dict) and (
                node.get("type") == "custom-token" or (node.get("type") == "oauth2" and "grantType" in node)
            )
    return False


def _json_path(path: Path) -> str:
    out = "$"
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _is_kind_mismatch(error: ValidationError) -> bool:
    return error.validator in ("const", "enum") and list(error.relative_path)[-1:] == ["type"]


def _leaves(error: ValidationError) -> list[ValidationError]:
    """For ``oneOf``/``anyOf`` failures, the errors of the branch the author meant: not one
    whose ``type`` differs, and among the rest the one whose errors reach deepest."""
    if not error.context:
        return [error]
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    candidates = [errs for errs in branches.values() if not any(_is_kind_mismatch(e) for e in errs)]
    if not candidates:
        return _leaves(best_match(error.context))
    chosen = max(candidates, key=lambda errs: (max(len(e.absolute_path) for e in errs), -len(errs)))
    return [leaf for sub in chosen for leaf in _leaves(sub)]


class _Deviation(NamedTuple):
    path: Path
    message: str


# The schema check is most of a load's cost, and the same document is checked again and again
# (--reload of an unchanged section, several commands on one file, the test suite): its
# deviations are remembered by (version, the document's JSON), the last few documents only.
_MEMO: OrderedDict[tuple[str, bytes], tuple[_Deviation, ...]] = OrderedDict()
_MEMO_SIZE = 32


def _deviations(data: JSONValue, version: str) -> tuple[_Deviation, ...] | None:
    """Where ``data`` deviates from the schema; None when it is nested too deeply to check."""
    try:
        key: tuple[str, bytes] | None = (version, orjson.dumps(data))
    except TypeError:  # a YAML value JSON has no spelling for: checked every time
        key = None
    if key is not None and key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    try:
        leaves = [leaf for error in _validator(version).iter_errors(data) for leaf in _leaves(error)]
    except RecursionError:  # the validator recurses per level of the document
        return None
    found: list[_Deviation] = []
    for leaf in leaves:
        path = tuple(leaf.absolute_path)
        if leaf.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(leaf.instance, dict):
            # One warning per unknown key, at the key itself.
            keys = [k for k in _QUOTED.findall(leaf.message) if k in leaf.instance]
            found.extend(_Deviation((*path, k), f"unknown field '{k}'") for k in keys)
        else:
            found.append(_Deviation(path, leaf.message))
    if key is not None:
        _MEMO[key] = tuple(found)
        if len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return tuple(found)


def check(
    source: Source, severity: str, version: str = ALPHA2, skip: frozenset[Path] = frozenset()
) -> list[Diagnostic]:
    """Deviations of ``source`` from the schema of ``version``; paths in ``skip`` are not reported
    (the version key, which the loader reports itself)."""
    seen: set[tuple[Path, str]] = set()
    out: list[Diagnostic] = []
    deviations = _deviations(source.data, version)
    if deviations is None:
        return [source.diagnostic((), "the document is nested too deeply to be checked against the schema")]
    for where, message in deviations:
        if where in skip:
            continue
        if (where, message) in seen or (severity == "warning" and _is_extension(where, source.data)):
            continue
        seen.add((where, message))
        out.append(source.diagnostic(where, f"{message} (schema, at {_json_path(where)})", severity))
    out.sort(key=lambda d: (d.line, d.col))
    return out


def unknown_keys(data: JSONValue, version: str = ALPHA2) -> list[Path]:
    """Paths of the keys the schema of ``version`` does not know (naftiko extensions excepted)."""
    found: list[Path] = []
    for error in _validator(version).iter_errors(data):
        for leaf in _leaves(error):
            if leaf.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(leaf.instance, dict):
                for key in _QUOTED.findall(leaf.message):
                    where = (*tuple(leaf.absolute_path), key)
                    if key in leaf.instance and not _is_extension(where, data) and where not in found:
                        found.append(where)
    return found
