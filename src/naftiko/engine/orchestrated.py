"""Orchestrated mode: ``steps`` (call, lookup, script), then ``mappings`` (reference §5).

Steps run in order. Each step's output is stored under its name, so later steps see it as
``{{step-name.field}}`` (templates) or ``$.step-name.field`` (JSONPath), and mappings build
the result from the same document: the unit's inputs plus every step output. A call step
whose upstream fails ends the unit with that status (FIX).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from naftiko.engine.result import Empty, JsonAnswer, Result, UpstreamFailure
from naftiko.engine.script import PythonScript
from naftiko.engine.shaping import Shape
from naftiko.engine.simple import Call, decode_off_loop, resolve_with_value, upstream_failure
from naftiko.engine.unit import Binds, Inputs
from naftiko.expressions.jsonpath import JsonPath
from naftiko.expressions.template import MISSING, Scope

if TYPE_CHECKING:
    from naftiko.observability.telemetry import Telemetry


class StepFailed(Exception):
    """Carries the upstream failure that ends the orchestration."""

    def __init__(self, result: UpstreamFailure) -> None:
        self.result = result


@dataclass(slots=True)
class CallStep:
    name: str
    call: Call

    async def run(self, inputs: Inputs, scope: Scope) -> object:
        response = await self.call.send(inputs, scope)
        if response.status >= 400:
            raise StepFailed(upstream_failure(response))
        if not response.body.strip():
            return None
        target = self.call.target
        return target.shape(await decode_off_loop(response, target))


@dataclass(slots=True)
class LookupStep:
    """Match values against a field of an earlier step's output; keep the listed fields."""

    name: str
    index: str
    match: str
    value: JsonPath
    fields: list[str]

    async def run(self, inputs: Inputs, scope: Scope) -> object:
        table = scope.inputs.get(self.index)
        if isinstance(table, dict):
            table = next((v for v in table.values() if isinstance(v, list)), [table])
        entries = table if isinstance(table, list) else []
        by_key: dict[str, dict[str, object]] = {}
        for entry in entries:
            if isinstance(entry, dict) and entry.get(self.match) is not None:
                by_key.setdefault(str(entry[self.match]), entry)
        wanted = self.value.find(scope.document)
        if isinstance(wanted, list):
            return [self.project(by_key.get(str(v))) for v in wanted if str(v) in by_key]
        return self.project(by_key.get(str(wanted))) if wanted is not None else None

    def project(self, entry: dict[str, object] | None) -> object:
        if entry is None or not self.fields:
            return entry
        return {f: entry.get(f) for f in self.fields}


@dataclass(slots=True)
class ScriptStep:
    name: str
    script: PythonScript
    with_: list[tuple[str, object]]

    async def run(self, inputs: Inputs, scope: Scope) -> object:
        variables: dict[str, object] = {}
        for key, compiled in self.with_:
            value = resolve_with_value(compiled, inputs, scope)
            variables[key] = None if value is MISSING else value
        context = scope.document if isinstance(scope.document, dict) else {}  # the steps' context: always a dict
        return await self.script.run(context, variables)


Step = CallStep | LookupStep | ScriptStep


def _set_path(target: dict[str, object], dotted: str, value: object) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[parts[-1]] = value


@dataclass(slots=True)
class StepsUnit:
    name: str
    steps: list[Step]
    mappings: list[tuple[str, object]]  # (targetName, compiled value)
    shape: Shape
    aliases: frozenset[str]
    binds: Binds
    telemetry: Telemetry | None = None  # when metrics or tracing are on

    @property
    def calls(self) -> list[Call]:
        return [s.call for s in self.steps if isinstance(s, CallStep)]

    @property
    def passthrough(self) -> bool:
        return False  # the answer is always built from the mappings or the last step

    async def invoke(self, inputs: Inputs) -> Result:
        context = dict(inputs)  # inputs, then step outputs by step name
        scope = Scope(context, aliases=self.aliases, binds=self.binds, document=context)
        try:
            for step in self.steps:
                if self.telemetry is None:
                    context[step.name] = await step.run(inputs, scope)
                else:
                    context[step.name] = await self.telemetry.run_step(self.name, step, inputs, scope)
        except StepFailed as failed:
            return failed.result
        source: object
        if self.mappings:
            mapped: dict[str, object] = {}
            for target, compiled in self.mappings:
                value = resolve_with_value(compiled, inputs, scope)
                _set_path(mapped, target, None if value is MISSING else value)
            source = mapped
        else:
            source = context[self.steps[-1].name] if self.steps else {}
        value = self.shape(source)
        if value is None and not self.mappings:
            return Empty(200)
        return JsonAnswer(200, value)
