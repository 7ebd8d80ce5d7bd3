"""The package's declared public surface: ``naftiko.__all__``, usable as a library, cheap to import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import naftiko

CAPABILITIES = Path(__file__).resolve().parent.parent / "capabilities"


def test_every_public_name_resolves_to_its_defining_object() -> None:
    from naftiko.document.loader import Loaded, load
    from naftiko.engine.plan import Options, Plan, compile_plan
    from naftiko.errors import Diagnostic, EngineError, LoadError
    from naftiko.runtime.serve import serve

    expected = {
        "load": load, "Loaded": Loaded, "compile_plan": compile_plan, "Options": Options, "Plan": Plan,
        "serve": serve, "Diagnostic": Diagnostic, "LoadError": LoadError, "EngineError": EngineError,
    }
    assert set(naftiko.__all__) == {*expected, "__version__"}
    for name, obj in expected.items():
        assert getattr(naftiko, name) is obj, name
    assert set(naftiko.__all__) <= set(dir(naftiko))
    with pytest.raises(AttributeError, match="no_such_name"):
        naftiko.no_such_name  # noqa: B018 - the attribute access is what is tested


def test_load_and_compile_through_the_public_names() -> None:
    loaded = naftiko.load(str(CAPABILITIES / "metronome-customers.yaml"))
    plan = naftiko.compile_plan(loaded, naftiko.Options(dry_run=True))
    assert isinstance(plan, naftiko.Plan)
    assert plan.adapters, "the capability exposes adapters"


def test_a_broken_file_raises_load_error_with_positions(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("naftiko: 1.0.0-alpha2\ncapability: [unclosed\n")
    with pytest.raises(naftiko.LoadError) as info:
        naftiko.load(str(broken))
    (first, *_) = info.value.diagnostics
    assert isinstance(first, naftiko.Diagnostic)
    assert first.file == str(broken) and first.line >= 2


def test_importing_the_package_loads_neither_the_document_nor_the_serving_stack() -> None:
    # A fresh interpreter is the subject: what `import naftiko` brings into sys.modules.
    code = textwrap.dedent(
        """
        import sys
        import naftiko
        heavy = ("naftiko.", "pydantic", "yaml", "starlette", "uvicorn", "mcp", "aiohttp", "httpx")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        naftiko.load
        print("naftiko.document.loader" in sys.modules, "naftiko.runtime.serve" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "True False"]
