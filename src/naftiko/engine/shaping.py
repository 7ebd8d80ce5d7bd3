"""Output shaping: turning an upstream JSON document into the unit's result (reference §4).

Each output parameter compiles once into a small function ``node → value``. Consumed outputs
(``{name, value: $…}``) and mapped outputs (``mapping``, ``const``, nested ``properties`` and
``items`` relative to the mapped node, ``maxLength``) share this one mechanism.
"""

from __future__ import annotations

from collections.abc import Callable

from naftiko.document.model import OutputParameter
from naftiko.expressions.jsonpath import JsonPath, is_jsonpath

Shape = Callable[[object], object]


def _identity(node: object) -> object:
    return node


def conform_output(kind: str | None, value: object, max_length: int | None) -> object:
    """An output value made to look like its declared type where it can; never an error (not REST input parsing)."""
    if value is None:
        return None
    if kind == "string" and not isinstance(value, str) and not isinstance(value, (dict, list)):
        value = "true" if value is True else "false" if value is False else str(value)
    elif kind in ("number", "integer") and isinstance(value, str):
        try:
            value = int(value) if kind == "integer" or value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            pass
    elif kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if max_length is not None and isinstance(value, str):
        value = value[:max_length]
    return value


def compile_output(param: OutputParameter) -> Shape:
    """``node → value`` for one output parameter, evaluated relative to ``node``."""
    if param.const is not None:
        const = param.const
        return lambda node: const
    if param.mapping is None and param.value is not None and not is_jsonpath(param.value):
        static = conform_output(param.type, param.value, param.maxLength)  # a fixed value, never the document
        return lambda node: static

    expr = param.mapping if param.mapping is not None else (param.value if is_jsonpath(param.value) else None)
    select: Shape = JsonPath(expr).find if expr is not None else _identity
    if expr is not None and JsonPath(expr).is_whole_document:
        select = _identity

    if param.type == "object" and param.properties:
        fields = {name: compile_output(sub) for name, sub in param.properties.items()}

        def shape_object(node: object) -> object:
            scoped = select(node)
            if scoped is None:
                return None
            return {name: fn(scoped) for name, fn in fields.items()}

        return shape_object

    if param.type == "array" and param.items is not None:
        items = param.items
        element: Shape = compile_outputs(items) if isinstance(items, list) else compile_output(items)

        def shape_array(node: object) -> object:
            scoped = select(node)
            if scoped is None:
                return None
            return [element(item) for item in scoped] if isinstance(scoped, list) else [element(scoped)]

        return shape_array

    kind, max_length = param.type, param.maxLength
    if kind in ("object", "array") or (kind is None and max_length is None):
        return select  # pass the node through unchanged (reference §4, FIX)
    return lambda node: conform_output(kind, select(node), max_length)


def compile_outputs(params: list[OutputParameter]) -> Shape:
    """One unnamed output → its value; named outputs → an object keyed by name."""
    if not params:
        return _identity
    if len(params) == 1 and not params[0].name:
        return compile_output(params[0])
    fields = [(p.name or f"output{i}", compile_output(p)) for i, p in enumerate(params)]
    return lambda node: {name: fn(node) for name, fn in fields}


def compile_consumed(params: list[OutputParameter]) -> Shape:
    """Consumed outputs: named JSONPath projections of the upstream document. When the upstream
    answers an array, each element is augmented with the projections of itself."""
    shape = compile_outputs(params)
    if not params or not all(p.name for p in params):
        return shape

    def augment(element: object) -> object:
        projected = shape(element)
        if isinstance(element, dict) and isinstance(projected, dict):  # named outputs: always an object
            return {**element, **projected}
        return projected

    def project(document: object) -> object:
        if isinstance(document, list):
            return [augment(e) for e in document]
        return shape(document)

    return project


def is_passthrough(params: list[OutputParameter]) -> bool:
    """True when shaping would return the upstream document unchanged."""
    if not params:
        return True
    if len(params) != 1 or params[0].name or params[0].const is not None:
        return False
    p = params[0]
    expr = p.mapping if p.mapping is not None else (p.value if is_jsonpath(p.value) else None)
    return (
        expr is not None
        and JsonPath(expr).is_whole_document
        and not p.properties
        and p.items is None
        and p.type in (None, "object", "array")
    )


def compile_orchestrated(params: list[OutputParameter]) -> Shape:
    """Orchestrated outputs pick their value by ``name`` from what the mappings built, typed
    per ``type``; arrays project each element onto their ``items``, objects onto ``properties``."""
    if not params:
        return _identity
    fields = [(p.name, _orchestrated(p)) for p in params if p.name]
    return lambda source: {name: fn(source.get(name) if isinstance(source, dict) else None) for name, fn in fields}


def _orchestrated(param: OutputParameter) -> Shape:
    if param.type == "array" and param.items is not None:
        items = param.items if isinstance(param.items, list) else [param.items]
        named = [(p.name, _orchestrated(p)) for p in items if p.name]
        if not named:
            element = _orchestrated(items[0])
            return lambda value: [element(v) for v in value] if isinstance(value, list) else value
        return lambda value: (
            [{n: fn(e.get(n) if isinstance(e, dict) else None) for n, fn in named} for e in value]
            if isinstance(value, list)
            else value
        )
    if param.type == "object" and param.properties:
        props = [(name, _orchestrated(p)) for name, p in param.properties.items()]
        return lambda value: {n: fn(value.get(n)) for n, fn in props} if isinstance(value, dict) else value
    kind, max_length = param.type, param.maxLength
    return lambda value: conform_output(kind, value, max_length)
