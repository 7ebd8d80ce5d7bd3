"""MCP tool metadata derived from a capability: input schemas and annotations (reference §7).

A tool that declares ``inputParameters`` gets exactly that schema. One that declares none —
the usual case in generated files — gets a schema inferred from its call: each ``with``
reference to an input becomes a property typed and described by the consumed parameter it
feeds, and the consumed parameters left over are added under their own names.
"""

from __future__ import annotations

from typing import Any

from naftiko.document.model import McpTool, OutputParameter, Semantics
from naftiko.engine.binding import call_templates, template_inputs
from naftiko.engine.simple import Call, InputRef
from naftiko.engine.unit import Binds, Unit
from naftiko.expressions.names import normalise
from naftiko.expressions.template import MISSING, Template

JsonSchema = dict[str, Any]

_HINTS = {
    "readOnly": "readOnlyHint",
    "destructive": "destructiveHint",
    "idempotent": "idempotentHint",
    "openWorld": "openWorldHint",
}
_SIMPLE = ("path", "query", "header", "cookie")


def _property(type_: str | None, description: str | None, location: str | None = None) -> JsonSchema:
    prop: dict = {}
    if type_:
        prop["type"] = type_
    elif location == "path":
        prop["type"] = "string"  # untyped query/header values stay open: a list is repeated keys
    if prop.get("type") == "array":
        prop["items"] = {"type": "string"} if location in _SIMPLE else {}
    if description:
        prop["description"] = description
    return prop


def input_schema_for(
    tool: McpTool, unit: Unit, aliases: frozenset[str] = frozenset(), binds: Binds | None = None
) -> JsonSchema:
    properties: dict[str, dict] = {}
    required: list[str] = []
    if tool.inputParameters is not None:
        for p in tool.inputParameters:
            properties[p.name] = _property(p.type, p.description, p.in_)
            if p.schema_:  # EXT: the input's whole JSON Schema; `type` and `description` fill what it leaves out
                typed = {"type": p.type} if p.type and not {"anyOf", "oneOf", "$ref"} & p.schema_.keys() else {}
                properties[p.name] = {**typed, **({"description": p.description} if p.description else {}), **p.schema_}
            if p.required is not False:
                required.append(p.name)
        return {"type": "object", "properties": properties, "required": required}

    for call in unit.calls:
        _infer_from_call(call, properties, required)
    for call in unit.calls:  # a consumed value that is exactly '{{x}}': x typed and described by that parameter
        for spec in call.target.request.params.values():
            value = spec.value
            whole = isinstance(value, Template) and value.single_var is not None
            names = template_inputs(value, aliases, binds or {}) if whole and isinstance(value, Template) else []
            if names and names[0] not in properties:
                properties[names[0]] = _property(spec.type, spec.description, spec.location)
    for call in unit.calls:  # inputs read only by templates: fixed values, `with` templates, the body
        for name in _template_inputs(call, aliases, binds or {}):
            if name not in properties and not any(normalise(name) == normalise(p) for p in properties):
                properties[name] = {}
    for name, kind in getattr(unit, "template_inputs", ()):  # mock outputs rendered from inputs
        properties.setdefault(name, {"type": kind})
    return {"type": "object", "properties": properties, "required": required}


def _infer_from_call(call: Call, properties: dict[str, JsonSchema], required: list[str]) -> None:
    params = call.target.request.params
    fed: set[str] = set()
    for key, compiled in call.with_:
        fed.add(key)
        if not isinstance(compiled, InputRef):
            continue  # a literal, template or JSONPath: not something the caller provides
        name = compiled.path[0]
        spec = params.get(key)
        if name in properties:
            continue
        properties[name] = _property(
            spec.type if spec else None, spec.description if spec else None, spec.location if spec else None
        )
        if spec is not None and (spec.location == "path" or spec.required) and name not in required:
            required.append(name)
    for name, spec in params.items():
        if name in fed or spec.value is not MISSING:
            continue
        if any(normalise(name) == normalise(existing) for existing in properties):
            continue
        properties[name] = _property(spec.type, spec.description, spec.location)
        if spec.location == "path" or spec.required:
            required.append(name)


def _template_inputs(call: Call, aliases: frozenset[str], binds: Binds) -> list[str]:
    fed = {k for k, _ in call.with_} | set(call.target.request.params)
    names: list[str] = []
    for template in call_templates(call):
        names += [n for n in template_inputs(template, aliases, binds) if n not in fed and n != "body"]
    return list(dict.fromkeys(names))


def annotations_for(tool: McpTool, unit: Unit, semantics: Semantics | None = None) -> dict[str, bool]:
    """From the HTTP methods the unit calls, then aggregate ``semantics``, then ``hints``."""
    methods = {call.target.method for call in unit.calls}
    derived: dict[str, bool] = {"readOnlyHint": methods <= {"GET", "HEAD"}}
    if methods and methods <= {"GET", "HEAD", "PUT", "DELETE"}:
        if methods & {"PUT", "DELETE"}:
            derived["idempotentHint"] = True
    if "DELETE" in methods:
        derived["destructiveHint"] = True
    if semantics is not None:
        if semantics.safe is not None:
            derived["readOnlyHint"] = semantics.safe
            if semantics.safe:
                derived["destructiveHint"] = False
        if semantics.idempotent is not None:
            derived["idempotentHint"] = semantics.idempotent
    if tool.hints is not None:
        for field, hint in _HINTS.items():
            value = getattr(tool.hints, field)
            if value is not None:
                derived[hint] = value
    return derived


_JSON_TYPES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean"}


def _typed(param: OutputParameter) -> JsonSchema | None:
    """The JSON Schema of one output, or None when the file leaves part of it untyped. Every
    value may be null: a JSONPath that matches nothing yields null (reference §4)."""
    if param.type in _JSON_TYPES:
        return {"type": [_JSON_TYPES[param.type], "null"]}
    if param.type == "object" and param.properties:
        props = {name: _typed(p) for name, p in param.properties.items()}
        if any(v is None for v in props.values()):
            return None
        return {"type": ["object", "null"], "properties": props}
    if param.type == "array" and param.items is not None:
        if isinstance(param.items, list):  # orchestrated: items name the fields of each element
            fields = {p.name: _typed(p) for p in param.items if p.name}
            if not fields or any(v is None for v in fields.values()):
                return None
            item = {"type": ["object", "null"], "properties": fields}
        else:
            typed = _typed(param.items)
            if typed is None:
                return None
            item = typed
        return {"type": ["array", "null"], "items": item}
    return None


def output_schema_for(tool: McpTool, unit: Unit | None = None) -> JsonSchema | None:
    """``outputSchema`` only when the declared outputs fully type an object result (reference §7):
    named outputs form an object keyed by name; one unnamed output must itself be an object.
    Pass-through outputs (``mapping: $.`` without ``properties``) are not typed, so get none."""
    params = tool.outputParameters
    if not params:
        return None
    if len(params) == 1 and not params[0].name:
        schema = _typed(params[0])
        if schema is None or "object" not in schema["type"]:
            return None
        return {"type": "object", "properties": schema["properties"]}
    if not all(p.name for p in params):
        return None
    props = {p.name: _typed(p) for p in params}
    if any(v is None for v in props.values()):
        return None
    return {"type": "object", "properties": props}
