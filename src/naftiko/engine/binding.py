"""Compiled bindings: which source feeds each consumed parameter, decided once at load.

A consumed call's parameters get exactly one source each (docs/reference.md, "Binding and
precedence"): a ``with`` entry, a value fixed by the file, or one input of the exposed unit.
Tolerant name matching (``{customer-id}`` feeding ``customer_id``) happens here, at load, against
the input names the adapter actually exposes; per request the engine only looks values up by the
key chosen here. A name two inputs could match is a positioned load warning, and the exact name
is used.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from naftiko.expressions.names import normalise
from naftiko.expressions.template import MISSING, PATH_PLACEHOLDER, Template

if TYPE_CHECKING:
    from naftiko.consumes.request import ParamSpec
    from naftiko.engine.simple import Call
    from naftiko.engine.unit import Binds, Unit

Warn = Callable[[str], None]


def route_variables(path: str) -> list[str]:
    """The placeholder names of an exposed route or uri template (``{x}`` or ``{{x}}``)."""
    return [(m.group(1) or m.group(2)).strip() for m in PATH_PLACEHOLDER.finditer(path)]


@dataclass(frozen=True, slots=True)
class FromWith:
    """The parameter is fed by the unit's ``with`` entry (a compiled with value)."""

    compiled: object


@dataclass(frozen=True, slots=True)
class Fixed:
    """The parameter has a value fixed by the file (maybe a template over binds and inputs)."""

    value: object


@dataclass(frozen=True, slots=True)
class FromInput:
    """The parameter is fed by the unit's input ``key`` (the key chosen at load)."""

    key: str


Source = FromWith | Fixed | FromInput


def match_input(known: Collection[str], wanted: str, warn: Warn | None = None) -> str | None:
    """The exposed input name that ``wanted`` (a consumed parameter or a ``with`` reference)
    means: the exact name, else the one name equal to it ignoring case, ``-`` and ``_``. None
    when no exposed input matches, and when several do (with a warning)."""
    if wanted in known:
        return wanted
    target = normalise(wanted)
    found = [name for name in known if normalise(name) == target]
    if len(found) == 1:
        return found[0]
    if len(found) > 1 and warn is not None:
        warn(f"'{wanted}' could be fed by any of {', '.join(repr(f) for f in sorted(found))}; "
             f"name one exactly (e.g. with: {{{wanted}: <ns>.{sorted(found)[0]}}})")
    return None


def compile_sources(params: Mapping[str, ParamSpec], with_: list[tuple[str, object]], known: Collection[str] = (),
                    warn: Warn | None = None, *, closed: bool = False) -> list[tuple[str, Source]]:
    """One source per consumed parameter, ``with`` entries first (in their order), then the
    parameters in declaration order: fixed values, then inputs. ``known`` lists the inputs the
    adapter exposes (tolerant matches are made against them). Unless ``closed``, a parameter no
    exposed input matches reads the input of its exact name (an undeclared REST query parameter)."""
    from naftiko.engine.simple import InputRef  # invoke builds on this module

    sources: list[tuple[str, Source]] = []
    fed: set[str] = set()
    for key, compiled in with_:
        if isinstance(compiled, InputRef) and known:
            head = match_input(known, compiled.path[0], warn)
            if head is not None and head != compiled.path[0]:
                compiled = InputRef((head, *compiled.path[1:]))
            elif head is None and closed and warn is not None and ".".join(compiled.path) not in known:
                warn(f"with '{key}' references input '{compiled.path[0]}', which the unit does not expose: "
                     "it feeds nothing")
        sources.append((key, FromWith(compiled)))
        fed.add(key)
    for name, spec in params.items():
        if name in fed:
            continue
        if spec.value is not MISSING:
            sources.append((name, Fixed(spec.value)))
            continue
        matched = match_input(known, name, warn) if known else None
        if matched is not None:
            sources.append((name, FromInput(matched)))
        elif not closed:
            sources.append((name, FromInput(name)))
    return sources


def bind_unit_inputs(unit: Unit, known: Collection[str], warn: Warn | None = None, *, closed: bool = False) -> None:
    """Re-compile the bindings of every call the unit makes against the inputs its adapter
    exposes. ``closed``: only those inputs can feed parameters by name (MCP tools); otherwise
    an input of the parameter's exact name may also come from an undeclared query parameter."""
    from naftiko.engine.orchestrated import ScriptStep, StepsUnit  # orchestrated builds on this module

    for call in unit.calls:
        call.bind_inputs(known, warn, closed=closed)
    if isinstance(unit, StepsUnit):  # orchestrated: mappings and script steps read inputs too
        unit.mappings = [(key, _rebind(compiled, known)) for key, compiled in unit.mappings]
        for step in unit.steps:
            if isinstance(step, ScriptStep):
                step.with_ = [(key, _rebind(compiled, known)) for key, compiled in step.with_]


def _rebind(compiled: object, known: Collection[str]) -> object:
    """An ``ns.name`` reference with ``name`` replaced by the exposed input it means."""
    from naftiko.engine.simple import InputRef

    if not isinstance(compiled, InputRef) or not known:
        return compiled
    head = match_input(known, compiled.path[0])
    return InputRef((head, *compiled.path[1:])) if head is not None and head != compiled.path[0] else compiled


def template_inputs(template: Template, aliases: Collection[str], binds: Binds) -> list[str]:
    """The input names a template reads: ``{{x}}`` and ``{{<alias>.x}}``, never bind variables."""
    flat = {k for ns in binds.values() for k in ns}
    names: list[str] = []
    for var in template.variables():
        if not var.path or var.path == (".",):
            continue
        head = var.path[0]
        if len(var.path) > 1 and head in binds:
            continue
        if head in flat:
            continue
        if len(var.path) > 1 and head in aliases:
            head = var.path[1]
        names.append(head)
    return names


def unit_reads(unit: Unit) -> set[str]:
    """The input names a simple unit's call reads: bound input keys, ``with`` references, and the
    variables of its templates (``with``, fixed values, headers, the body)."""
    from naftiko.engine.simple import InputRef

    read: set[str] = set()
    aliases, binds = unit.aliases, unit.binds
    for call in unit.calls:
        for _, source in call.sources:
            if isinstance(source, FromInput):
                read.add(source.key)
            elif isinstance(source, FromWith) and isinstance(source.compiled, InputRef):
                read.add(source.compiled.path[0])
                read.add(".".join(source.compiled.path))
        for template in call_templates(call):
            read.update(template_inputs(template, aliases, binds))
    return read


def call_templates(call: Call) -> list[Template]:
    """Every template a call renders: ``with`` templates, fixed values, headers, the body."""
    request = call.target.request
    templates = [c for _, c in call.with_ if isinstance(c, Template)]
    templates += [t for spec in request.params.values() for t in _templates(spec.value)]
    templates += [t for _, t in request.headers]
    if request.body is not None:
        templates += list(_templates(request.body.data))
    return templates


def _templates(value: object) -> Iterable[Template]:
    if isinstance(value, Template):
        yield value
    elif isinstance(value, str) and "{{" in value:
        yield Template(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _templates(v)
    elif isinstance(value, list):
        for v in value:
            yield from _templates(v)
