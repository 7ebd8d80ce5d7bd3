"""Script steps: Python run in-process with a time limit and a statement limit.

Scripts are part of the capability, as trusted as the file itself; the limits protect the
server from a script that loops, not from a hostile author. The step context — the unit's
inputs and every earlier step's output — is bound as variables (names with ``-`` are also
reachable through the ``context`` dict), ``with`` entries are bound by name, and the script
assigns ``result``. A limit is enforced by a trace function in the worker thread, so a single
long call into C code is not interrupted.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from naftiko.errors import EngineError

# What sys.settrace takes: called per event, returns the tracer for the frame's next events.
TraceFunction = Callable[[FrameType, str, Any], "TraceFunction | None"]


def _where(exc: BaseException, files: set[str]) -> str:
    """`` at calc.py:12``: the innermost frame that belongs to one of the script's files."""
    tb, found = exc.__traceback__, ""
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if file in files:
            found = f" at {file.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


class ScriptFailed(EngineError):
    status = 500
    title = "Script failed"


@dataclass(slots=True)
class PythonScript:
    name: str
    code: list[CodeType]  # compiled dependencies, then the main file
    timeout: float  # seconds
    statement_limit: int

    async def run(self, context: dict[str, object], variables: dict[str, object]) -> object:
        return await asyncio.to_thread(self._run, context, variables)

    def _run(self, context: dict[str, object], variables: dict[str, object]) -> object:
        namespace: dict[str, object] = {"__name__": f"naftiko_script_{self.name}", "context": dict(context)}
        namespace.update({k: v for k, v in context.items() if k.isidentifier()})
        namespace.update(variables)
        deadline = time.monotonic() + self.timeout
        budget = [self.statement_limit]

        def tracer(frame: FrameType, event: str, arg: object) -> TraceFunction:
            if event == "line":
                budget[0] -= 1
                if budget[0] <= 0:
                    raise ScriptFailed(f"script step '{self.name}' exceeded {self.statement_limit} statements")
                if time.monotonic() > deadline:
                    raise ScriptFailed(f"script step '{self.name}' exceeded its time limit of {self.timeout:g}s")
            return tracer

        sys.settrace(tracer)
        try:
            for code in self.code:
                exec(code, namespace)
        except ScriptFailed:
            raise
        except Exception as exc:
            # The exception's type and the script line, never its text: that may quote data,
            # secrets passed in with `with`, or paths on this machine (reference §6).
            raise ScriptFailed(
                f"script step '{self.name}' failed: "
                f"{type(exc).__name__}{_where(exc, {c.co_filename for c in self.code})}"
            ) from None
        finally:
            sys.settrace(None)
        if "result" not in namespace:
            raise ScriptFailed(f"script step '{self.name}' did not assign 'result'")
        return namespace["result"]
