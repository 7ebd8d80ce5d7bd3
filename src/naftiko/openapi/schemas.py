"""OpenAPI schemas as JSON Schema 2020-12 for tool arguments: local ``$ref`` resolution and conversion.

Bounded by design: reference chains are followed with a seen-set, a recursive schema stays open
where it recurs, nesting and the number of schema nodes per argument are capped, and every
converted schema is checked with the validator the MCP adapter uses, so no document can hang
the import, blow up the capability or make a tool refuse every call (docs/openapi.md).
"""

from __future__ import annotations

import copy
import re

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from naftiko.document import JSONObject

TYPES = ("string", "number", "integer", "boolean", "array", "object")
JSON_TYPES = (*TYPES, "null")
MAX_SCHEMA_DEPTH = 12  # nesting kept in one argument's schema
MAX_SCHEMA_NODES = 4000  # schema objects written for one argument; beyond, sub-schemas stay open
_KEEP = (
    "enum", "const", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
    "maxLength", "minItems", "maxItems", "uniqueItems", "multipleOf", "default", "title", "minProperties",
    "maxProperties", "deprecated", "examples", "contentMediaType", "contentEncoding",
)  # fmt: skip
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def primary_type(schema: JSONObject) -> str | None:
    """The one capability ``type`` of a JSON Schema (REST coercion uses it)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind in TYPES:
        return kind
    for sub in schema.get("anyOf") or []:
        found = primary_type(sub)
        if found:
            return found
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


class Refs:
    """Local ``$ref`` resolution and OpenAPI → JSON Schema (2020-12) conversion, bounded."""

    def __init__(self, root: JSONObject, warnings: list[str]):
        self.root = root
        self.warnings = warnings
        self.reported: set[str] = set()
        self.budget = 0

    def warn(self, message: str) -> None:
        if message not in self.reported:
            self.reported.add(message)
            self.warnings.append(message)

    def _pointer(self, ref: str) -> object:
        node: object = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def resolve(self, node: object) -> object:
        seen: set[str] = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                self.warn(f"{ref}: $ref {ref!r} is not a local reference; ignored")
                return {}
            if ref in seen:
                self.warn(f"{ref}: $ref {ref!r} refers to itself; ignored")
                return {}
            seen.add(ref)
            target = self._pointer(ref)
            if target is None:
                self.warn(f"{ref}: $ref {ref!r} does not resolve; ignored")
                return {}
            node = target
        return node

    def properties(self, schema: object, depth: int = 0) -> dict[str, JSONObject]:
        """Top-level properties of an object schema, through ``allOf``, unconverted."""
        schema = self.resolve(schema)
        if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
            return {}
        out: dict[str, JSONObject] = {}
        for sub in schema.get("allOf") or []:
            out.update(self.properties(sub, depth + 1))
        for name, prop in (schema.get("properties") or {}).items():
            out[str(name)] = prop if isinstance(prop, dict) else {}
        return out

    # ------------------------------------------------------------------ conversion

    def schema(self, node: object, where: str, request: bool = True) -> JSONObject:
        """A JSON Schema 2020-12 for an OpenAPI schema (or a Swagger 2 parameter), checked."""
        self.budget = MAX_SCHEMA_NODES
        out = self._convert(node, where, 0, (), request)
        try:
            Draft202012Validator.check_schema(out)
        except SchemaError as exc:
            self.warn(f"{where}: schema cannot be used as given ({exc.message}); only its type is kept")
            kind = primary_type(out)
            out = {"type": kind} if kind else {}
        return out

    def _convert(self, node: object, where: str, depth: int, stack: tuple[int, ...], request: bool) -> JSONObject:
        if node is True or not isinstance(node, dict):
            return {}
        if self.budget <= 0:
            self.warn(f"{where}: schema is larger than {MAX_SCHEMA_NODES} nodes; deeper parts are left open")
            return {}
        self.budget -= 1  # an open {} written below the depth limit counts too: the budget bounds the output
        if depth > MAX_SCHEMA_DEPTH:
            return {}
        sibling_description = node.get("description") if "$ref" in node else None
        target = self.resolve(node)
        if not isinstance(target, dict):
            return {}
        if id(target) in stack:  # recursive schema: the inner occurrence stays open below its type
            inner: JSONObject = {"type": "object"} if target.get("type") == "object" or "properties" in target else {}
            if isinstance(sibling_description, str) and sibling_description.strip():
                inner["description"] = sibling_description.strip()
            return inner
        stack = (*stack, id(target))
        node = target
        out: JSONObject = {}
        for branch in node.get("allOf") or []:  # merged first; the node's own keys win
            _merge_all_of(out, self._convert(branch, where, depth + 1, stack, request))
        _set_type(out, node)
        _keep_keywords(out, node)
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
                out["pattern"] = pattern
            except re.error:
                self.warn(f"{where}: pattern {pattern!r} is not a regular expression Python reads; dropped")
        description = sibling_description or node.get("description")
        if isinstance(description, str) and description.strip():
            out["description"] = description.strip()
        self._convert_object(out, node, where, depth, stack, request)
        if "items" in node:
            out["items"] = self._convert(node["items"], where, depth + 1, stack, request)
        branches = [b for key in ("oneOf", "anyOf") for b in node.get(key) or []]
        if branches:
            converted = [self._convert(b, where, depth + 1, stack, request) for b in branches]
            if len(converted) == 1:
                for key, value in converted[0].items():
                    out.setdefault(key, value)
            elif all(converted):
                out["anyOf"] = converted  # anyOf, not oneOf: overlapping branches must not refuse valid input
        return out

    def _convert_object(
        self, out: JSONObject, node: JSONObject, where: str, depth: int, stack: tuple[int, ...], request: bool
    ) -> None:
        """``properties`` (less the read-only ones in a request), ``required`` and ``additionalProperties``."""
        props = node.get("properties")
        if isinstance(props, dict):
            merged = out.setdefault("properties", {})
            for name, prop in props.items():
                if self.budget <= 0:  # out of budget: the rest stay unlisted and the object open
                    self.warn(f"{where}: schema is larger than {MAX_SCHEMA_NODES} nodes; deeper parts are left open")
                    break
                resolved = self.resolve(prop)
                if request and isinstance(resolved, dict) and resolved.get("readOnly") is True:
                    continue  # the server sets it: not something a caller sends
                merged[str(name)] = self._convert(prop, where, depth + 1, stack, request)
        required = node.get("required")
        if isinstance(required, list):
            out["required"] = list(dict.fromkeys([*out.get("required", []), *(str(r) for r in required)]))
        if "properties" in out and "required" in out:
            out["required"] = [r for r in out["required"] if r in out["properties"]]
            if not out["required"]:
                del out["required"]
        extra = node.get("additionalProperties")
        if self.budget <= 0:
            return  # properties may be missing: additionalProperties false would refuse valid input
        if isinstance(extra, bool):
            out["additionalProperties"] = extra
        elif isinstance(extra, dict):
            out["additionalProperties"] = self._convert(extra, where, depth + 1, stack, request)


def _merge_all_of(out: JSONObject, sub: JSONObject) -> None:
    """Merge one converted ``allOf`` branch: properties and required lists add up, else the first wins."""
    for key, value in sub.items():
        if key == "properties":
            out.setdefault("properties", {}).update(value)
        elif key == "required":
            out["required"] = list(dict.fromkeys([*out.get("required", []), *value]))
        else:
            out.setdefault(key, value)


def _set_type(out: JSONObject, node: JSONObject) -> None:
    """The JSON Schema ``type``: Swagger's ``file`` as a binary string, OpenAPI 3.0 ``nullable`` as ``null``."""
    kind = node.get("type")
    if kind == "file":  # Swagger 2
        kind, out["format"] = "string", "binary"
    if isinstance(kind, list):
        kind = [k for k in kind if k in JSON_TYPES] or None
    elif kind not in JSON_TYPES:
        kind = None
    if node.get("nullable") is True and kind is not None:
        kind = list(dict.fromkeys([*(kind if isinstance(kind, list) else [kind]), "null"]))
    if kind is not None:
        out["type"] = kind


def _keep_keywords(out: JSONObject, node: JSONObject) -> None:
    """The validation keywords kept (well-typed ones only), with OpenAPI 3.0 forms rewritten."""
    for key in _KEEP:
        if key not in node:
            continue
        value = node[key]
        if key in _NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            continue
        if key in _COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            continue
        if key in ("enum", "examples") and not isinstance(value, list):
            continue
        out[key] = copy.deepcopy(value)
    if node.get("exclusiveMinimum") is True and "minimum" in out:  # OpenAPI 3.0 booleans
        out["exclusiveMinimum"] = out.pop("minimum")
    if node.get("exclusiveMaximum") is True and "maximum" in out:
        out["exclusiveMaximum"] = out.pop("maximum")
    if "enum" in out and isinstance(out.get("type"), list) and "null" in out["type"] and None not in out["enum"]:
        out["enum"].append(None)
    if "example" in node and "examples" not in out:
        out["examples"] = [copy.deepcopy(node["example"])]
