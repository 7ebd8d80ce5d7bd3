"""Mock mode: a unit with no ``call`` and no ``steps`` answers from its outputs' values.

Each output's ``value`` is a template rendered against the inputs (``"Hello {{name}}"``) and
typed per its ``type`` (FIX: the reference makes everything a string); ``const`` is used as
is; objects nest through ``properties``. Named outputs form an object keyed by name (REF).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from naftiko.consumes.request import compile_value, render_value
from naftiko.document.model import OutputParameter
from naftiko.engine.result import JsonAnswer
from naftiko.engine.shaping import conform_output
from naftiko.engine.simple import Call
from naftiko.engine.unit import Binds, Inputs
from naftiko.expressions.template import Scope, Template

Render = Callable[[Scope], object]


_TYPED = ("number", "integer", "boolean")


def _compile(param: OutputParameter, names: dict[tuple[str, ...], str]) -> Render:
    if param.const is not None:
        const = param.const
        return lambda scope: const
    if param.type == "object" and param.properties:
        props = [(name, _compile(p, names)) for name, p in param.properties.items()]
        return lambda scope: {n: fn(scope) for n, fn in props}
    if param.type == "array" and isinstance(param.items, list) and param.value is None:
        items = [_compile(p, names) for p in param.items]
        return lambda scope: [fn(scope) for fn in items]
    if param.type == "array" and isinstance(param.items, OutputParameter) and param.value is None:
        if is_mock([param.items]):  # REF: one `items` with values → an array of that one element
            item = _compile(param.items, names)
            return lambda scope: [item(scope)]
    value = compile_value(param.value)
    for template in _templates(value):
        whole = template.single_var is not None  # "{{x}}" alone: x takes the output's type
        for v in template.variables():
            if v.path:
                names.setdefault(v.path, param.type if whole and param.type in _TYPED else "string")
    kind, max_length = param.type, param.maxLength
    return lambda scope: conform_output(kind, render_value(value, scope), max_length)


def _templates(value: object) -> Iterator[Template]:
    if isinstance(value, Template):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _templates(v)
    elif isinstance(value, list):
        for v in value:
            yield from _templates(v)


def is_mock(params: list[OutputParameter]) -> bool:
    """Every output has a value: ``value``, ``const``, ``properties``, or (an array) ``items``
    that have values (REF: an array's ``mapping`` is then ignored, as in naftiko 0.5 examples)."""
    return bool(params) and all(
        p.value is not None
        or p.const is not None
        or p.properties
        or (p.type == "array" and p.items is not None and is_mock(p.items if isinstance(p.items, list) else [p.items]))
        for p in params
    )


@dataclass(slots=True)
class MockUnit:
    name: str
    outputs: list[tuple[str | None, Render]]
    aliases: frozenset[str]
    binds: Binds
    template_inputs: list[tuple[str, str]] = field(default_factory=list)  # (input, JSON type) for inferred MCP schemas

    @property
    def calls(self) -> list[Call]:
        return []

    @property
    def passthrough(self) -> bool:
        return False  # the answer is the outputs' values

    async def invoke(self, inputs: Inputs) -> JsonAnswer:
        scope = Scope(inputs, aliases=self.aliases, binds=self.binds)
        if len(self.outputs) == 1 and self.outputs[0][0] is None:
            return JsonAnswer(200, self.outputs[0][1](scope))
        return JsonAnswer(200, {n: fn(scope) for n, fn in self.outputs})


def compile_mock(name: str, params: list[OutputParameter], aliases: frozenset[str], binds: Binds) -> MockUnit:
    paths: dict[tuple[str, ...], str] = {}
    outputs = [(p.name, _compile(p, paths)) for p in params]
    bind_names = set(binds) | {k for ns in binds.values() for k in ns}
    refs: dict[str, str] = {}
    for path, kind in paths.items():
        name = path[1] if path[0] in aliases and len(path) > 1 else path[0]
        if name not in bind_names and name != ".":
            refs.setdefault(name, kind)
    inputs = sorted(refs.items())
    return MockUnit(name, outputs, aliases, binds, inputs)
