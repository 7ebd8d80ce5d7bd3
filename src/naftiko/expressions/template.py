"""The mustache subset used by capability files, compiled once at load.

Supported: ``{{name}}``, dotted lookup ``{{step.field}}``, namespace references
``{{env.VAR}}``, ``{{$.x}}`` (JSONPath against the scope's document), triple braces and
``{{&x}}`` (same as plain: nothing is HTML-escaped), sections ``{{#x}}…{{/x}}`` and inverted
sections ``{{^x}}…{{/x}}``, and comments ``{{! … }}``.

How a value becomes text depends on where it goes, so :meth:`Template.render` takes an
``encode`` function: plain text, JSON string contents, or a percent-encoded path segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from naftiko.expressions.jsonpath import JsonPath
from naftiko.jsonio import dumps

MISSING = object()
PATH_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}|\{([^{}]+)\}")
"""A variable in a path or route: ``{x}`` (OpenAPI) or ``{{x}}`` (mustache); its name is group 1 or 2,
to be stripped. One pattern for every module that reads paths, so they all agree on what a variable is."""
_TAG = re.compile(r"\{\{\{\s*(?P<raw>.*?)\s*\}\}\}|\{\{\s*(?P<sigil>[#^/!&]?)\s*(?P<name>.*?)\s*\}\}", re.S)


class TemplateError(ValueError):
    pass


class MissingValue(LookupError):
    """A variable had no value where one is required (a URL path segment)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def to_text(value: object) -> str:
    """How a value reads in a header, a query string or a text body."""
    if value is None or value is MISSING:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return dumps(value).decode()
    return str(value)


def to_json_fragment(value: object) -> str:
    """How a value reads inside a JSON document template: escaped, never breaking the JSON."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, str):
        return dumps(value).decode()[1:-1]
    return dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    path: tuple[str, ...]
    jsonpath: JsonPath | None


@dataclass(frozen=True, slots=True)
class Section:
    var: Var
    inverted: bool
    body: tuple[Part, ...]


Part = str | Var | Section
"""One piece of a compiled template: literal text, a variable, or a section."""
Encode = Callable[[object], str]


class Scope:
    """Where template variables and references are looked up.

    ``inputs`` are the unit's inputs (and, later, step outputs); ``aliases`` are names that
    refer to the inputs themselves (``rest``, ``tools``, the adapter namespace);
    ``binds`` maps a bind namespace to its variables, which are also visible unqualified.
    """

    __slots__ = ("aliases", "binds", "document", "flat_binds", "inputs", "parent")

    def __init__(
        self,
        inputs: dict[str, object] | None = None,
        *,
        aliases: frozenset[str] = frozenset(),
        binds: Mapping[str, Mapping[str, object]] | None = None,
        document: object = MISSING,
        parent: Scope | None = None,
        flat_binds: dict[str, object] | None = None,
    ) -> None:
        """``flat_binds``: :func:`flatten_binds` of ``binds``, when the caller keeps it (a unit
        builds a scope per request over the same binds)."""
        self.inputs: dict[str, object]
        self.inputs = inputs if inputs is not None else {}
        self.aliases = aliases
        self.binds: Mapping[str, Mapping[str, object]] = binds if binds is not None else {}
        self.flat_binds: dict[str, object] = flat_binds if flat_binds is not None else flatten_binds(self.binds)
        self.document = document
        self.parent: Scope | None = parent

    def child(self, item: object) -> Scope:
        """A scope for a section body: ``item`` first, then everything visible here."""
        scope = Scope.__new__(Scope)
        scope.inputs = item if isinstance(item, dict) else {".": item}
        scope.aliases, scope.binds, scope.flat_binds = self.aliases, self.binds, self.flat_binds
        scope.document = item
        scope.parent = self
        return scope

    def layered(self, values: dict[str, object]) -> Scope:
        """A scope where ``values`` come first, then everything visible here."""
        scope = Scope.__new__(Scope)
        scope.inputs = values
        scope.aliases, scope.binds, scope.flat_binds = self.aliases, self.binds, self.flat_binds
        scope.document = self.document
        scope.parent = self
        return scope

    def lookup(self, path: tuple[str, ...]) -> object:
        """Binds first, in their own namespace: a caller's input or argument named like a bind
        namespace or variable never replaces it (docs/reference.md, "Binding and precedence")."""
        head = path[0]
        if len(path) > 1 and head in self.binds:
            return _walk(self.binds[head].get(path[1], MISSING), path[2:])
        if head in self.flat_binds:
            return _walk(self.flat_binds[head], path[1:])
        return self._lookup_values(path)

    def _lookup_values(self, path: tuple[str, ...]) -> object:
        head = path[0]
        if head == "." and len(path) == 1:
            return self.inputs.get(".", self.document)
        if head in self.inputs:
            return _walk(self.inputs[head], path[1:])
        if len(path) > 1 and head in self.aliases:
            found = _walk_input(self.inputs, path[1:])
            if found is not MISSING or self.parent is None:
                return found
            return self.parent._lookup_values(path)
        if self.parent is not None:
            return self.parent._lookup_values(path)
        return MISSING

    def resolve(self, var: Var) -> object:
        if var.jsonpath is not None:
            return var.jsonpath.find(self.document if self.document is not MISSING else self.inputs)
        return self.lookup(var.path)


def flatten_binds(binds: Mapping[str, Mapping[str, object]] | None) -> dict[str, object]:
    """Every bind variable by its own name (the last namespace declaring it wins)."""
    return {k: v for ns in (binds or {}).values() for k, v in ns.items()}


def _walk(value: object, rest: tuple[str, ...]) -> object:
    for key in rest:
        if isinstance(value, dict):
            value = value.get(key, MISSING)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def _walk_input(inputs: Mapping[str, object], rest: tuple[str, ...]) -> object:
    """``<alias>.name…``: the input ``name`` (exact: tolerant spellings are bound at load), or
    the whole dotted remainder when that is an input's name (``rest.a.b`` for input ``a.b``)."""
    if rest[0] in inputs:
        return _walk(inputs[rest[0]], rest[1:])
    whole = ".".join(rest)
    return inputs[whole] if whole in inputs else MISSING


THIS = "$this."


def is_jsonpath_name(name: str) -> bool:
    """``$``, ``$.x`` and ``$[…]`` are JSONPath; ``$top`` or ``$filter`` are parameter names (OData)."""
    return name == "$" or name.startswith(("$.", "$["))


def _var(name: str) -> Var:
    if name.startswith(THIS):  # $this.<ns>.<input> is <ns>.<input>
        name = name[len(THIS) :]
    if is_jsonpath_name(name):
        return Var(name, (), JsonPath(name))
    return Var(name, tuple(name.split(".")) if name != "." else (".",), None)


def _compile(text: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    stack: list[tuple[Var, bool, list[Part]]] = []
    pos = 0
    for m in _TAG.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        pos = m.end()
        if m.group("raw") is not None:
            sigil, name = "&", m.group("raw")
        else:
            sigil, name = m.group("sigil"), m.group("name")
        if sigil == "!":
            continue
        if not name:
            raise TemplateError(f"empty variable in template {text!r}")
        if sigil == "&":
            parts.append(_var(name))
        elif sigil in ("#", "^"):
            stack.append((_var(name), sigil == "^", parts))
            parts = []
        elif sigil == "/":
            if not stack or stack[-1][0].name != name:
                raise TemplateError(f"unexpected closing section {{{{/{name}}}}} in template {text!r}")
            var, inverted, outer = stack.pop()
            outer.append(Section(var, inverted, tuple(parts)))
            parts = outer
        else:
            parts.append(_var(name))
    if stack:
        raise TemplateError(f"section {{{{#{stack[-1][0].name}}}}} is never closed in template {text!r}")
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


class Template:
    """A compiled template. Constant templates render without any lookup."""

    __slots__ = ("_text", "constant", "parts", "source")

    def __init__(self, source: str):
        self.source = source
        self._settle(_compile(source) if "{{" in source else ((source,) if source else ()))

    def _settle(self, parts: tuple[Part, ...]) -> None:
        """Keep the parts; a template of literals alone keeps its text ready to return."""
        self.parts = parts
        self.constant = all(isinstance(p, str) for p in parts)
        self._text = "".join(p for p in parts if isinstance(p, str)) if self.constant else ""

    @property
    def single_var(self) -> Var | None:
        """The variable when the template is exactly one ``{{x}}`` (its value keeps its type)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Var):
            return self.parts[0]
        return None

    def variables(self) -> Iterator[Var]:
        """Every variable the template reads, sections' own and their bodies' included."""

        def walk(parts: tuple[Part, ...]) -> Iterator[Var]:
            for p in parts:
                if isinstance(p, Var):
                    yield p
                elif isinstance(p, Section):
                    yield p.var
                    yield from walk(p.body)

        return walk(self.parts)

    def render(self, scope: Scope, encode: Callable[[object], str] = to_text, *, strict: bool = False) -> str:
        if self.constant:
            return self._text
        out: list[str] = []
        _render(self.parts, scope, encode, strict, out)
        return "".join(out)

    def bind(self, binds: Mapping[str, Mapping[str, str]]) -> Template:
        """Pre-render every variable that binds alone can answer (auth tokens, base URLs)."""
        scope = Scope(binds=binds)
        parts: list[Part] = []
        for p in self.parts:
            if isinstance(p, Var) and p.jsonpath is None:
                value = scope.lookup(p.path)
                if value is not MISSING:
                    parts.append(to_text(value))
                    continue
            parts.append(p)
        bound = Template.__new__(Template)
        bound.source = self.source
        merged: list[Part] = []
        for p in parts:  # join neighbouring literals so constant templates stay constant
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] += p
            else:
                merged.append(p)
        bound._settle(tuple(merged))
        return bound

    def bare_json_slots(self) -> frozenset[int]:
        """Indexes of the variables that stand alone as JSON values (``"crew": {{crewIds}}``),
        not inside a string: a missing value there must render ``null`` to keep the JSON valid."""
        slots: set[int] = set()
        for i, p in enumerate(self.parts):
            if not isinstance(p, Var):
                continue
            before = self.parts[i - 1] if i > 0 else ""
            after = self.parts[i + 1] if i + 1 < len(self.parts) else ""
            if not isinstance(before, str) or not isinstance(after, str):
                continue
            b, a = before.rstrip(), after.lstrip()
            if (not b or b[-1] in ":[,") and (not a or a[0] in ",}]"):
                slots.add(i)
        return frozenset(slots)

    def render_json(self, scope: Scope, bare: frozenset[int]) -> str:
        """A JSON document template: values JSON-escaped; a missing value in a bare slot is ``null``."""
        if self.constant:
            return self._text
        out: list[str] = []
        for i, p in enumerate(self.parts):
            if i in bare and isinstance(p, Var):
                value = scope.resolve(p)
                out.append("null" if value is MISSING or value is None else to_json_fragment(value))
            else:
                _render((p,), scope, to_json_fragment, False, out)
        return "".join(out)

    def render_constant(self) -> str:
        """Render with nothing but literals; unresolved variables render empty."""
        return self.render(Scope())

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def _render(parts: tuple[Part, ...], scope: Scope, encode: Encode, strict: bool, out: list[str]) -> None:
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Var):
            value = scope.resolve(p)
            if value is MISSING or value is None:
                if strict:
                    raise MissingValue(p.name)
                value = None
            out.append(encode(value))
        else:
            value = scope.resolve(p.var)
            truthy = value not in (MISSING, None, False, "", [], {})
            if p.inverted:
                if not truthy:
                    _render(p.body, scope, encode, strict, out)
            elif isinstance(value, list):
                for item in value:
                    _render(p.body, scope.child(item), encode, strict, out)
            elif truthy:
                _render(p.body, scope.child(value) if isinstance(value, dict) else scope, encode, strict, out)
