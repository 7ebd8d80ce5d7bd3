"""``naftiko.serve`` in process (runtime/serve.py): what serving sets up for the whole process."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.runtime.serve import SERVING_GC_THRESHOLD, serve

CAPABILITY = Path(__file__).resolve().parents[2] / "capabilities" / "metronome-customers.yaml"


@pytest.mark.asyncio
async def test_serving_raises_the_collectors_first_threshold_and_restores_it_after() -> None:
    """While serving, the collector's first threshold is at least SERVING_GC_THRESHOLD (requests
    in flight no longer trigger it every dozen requests) and what start-up built is frozen; when
    serving ends, the thresholds the process had come back."""
    plan = compile_plan(
        load(str(CAPABILITY)),
        Options(dry_run=True, environ={}, ports={"metronome-customers-rest": 0, "metronome-customers-mcp": 0}),
    )
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()  # the test process may have frozen objects of its own
    stop = asyncio.Event()
    seen: list[tuple[tuple[int, int, int], int]] = []

    def ready() -> None:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        stop.set()

    try:
        await asyncio.wait_for(serve([plan], announce=lambda line: None, stop=stop, on_ready=ready), 30)
    finally:
        gc.unfreeze()  # this test process lives on: let the collector see those objects again
    assert len(seen) == 1
    (threshold, frozen) = seen[0]
    assert threshold[0] >= SERVING_GC_THRESHOLD and threshold[1:] == before[1:]
    assert frozen > frozen_before
    assert gc.get_threshold() == before
