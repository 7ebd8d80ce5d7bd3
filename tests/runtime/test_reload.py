"""Hot reload in process (runtime/reload.py): what becomes of the version a reload replaces."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from conftest import MINIMAL_CAPABILITY
from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.runtime.reload import Reloader
from naftiko.runtime.serve import build_app


@pytest.mark.asyncio
async def test_a_replaced_version_is_collected_once_it_has_drained(tmp_path: Path) -> None:
    """Serving freezes what start-up built (runtime/serve.py, ``settle_collector``), and frozen
    objects in reference cycles are never collected: a replaced version would stay in memory
    for the life of the process, one more per reload. Once it has drained and closed, it is gone."""
    file = tmp_path / "cap.yaml"
    file.write_text(MINIMAL_CAPABILITY)
    options = Options(dry_run=True, environ={})
    plan = compile_plan(load(str(file)), options)
    reloader = Reloader([str(file)], [plan], options)
    adapter = plan.adapters[0]
    reloader.wrap(build_app(adapter, plan), adapter, plan, port=8080)
    gc.collect()
    gc.freeze()  # as serving does at start-up
    try:
        old = weakref.ref(plan)
        del plan, adapter
        file.write_text(MINIMAL_CAPABILITY.replace("label: T", "label: T2"))
        assert await reloader.reload(0)
        assert reloader.plans[0].label == "T2"
        await asyncio.wait_for(asyncio.gather(*reloader.drainers), 10)
        assert old() is None, "the replaced version is still in memory"
    finally:
        await reloader.aclose()
        for current in reloader.plans:
            await current.aclose()
        gc.unfreeze()
