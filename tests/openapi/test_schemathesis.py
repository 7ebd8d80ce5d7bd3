"""schemathesis against the REST adapter's own exported OpenAPI document.

``naftiko export openapi capabilities/metronome-customers.yaml`` (the real command) describes
the REST adapter; schemathesis generates requests from that description — valid ones and,
in negative mode, ones that break it — and sends them to the same capability served twice:
with ``--dry-run`` and against a local upstream (tests/fault_upstream.py, answering every
request with a JSON object). Checks: no 5xx from the engine (``not_a_server_error``), and every answer matches
what the document declares for it: status code, content type and body schema.

Bounded for CI; ``NAFTIKO_FUZZ_EXAMPLES=N`` raises the examples per operation (default 15).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections import Counter

import orjson
import pytest
import schemathesis
from hypothesis import settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import API_KEY, CAPABILITIES, start_naftiko
from fault_upstream import spawned

pytestmark = pytest.mark.slow  # minutes of generated requests: the slow step of .ci/run runs it

from naftiko.cli import main  # noqa: E402  # after the slow mark, as the module reads

FILE = CAPABILITIES / "metronome-customers.yaml"
REST, MCP = "metronome-customers-rest", "metronome-customers-mcp"
EXAMPLES = int(os.environ.get("NAFTIKO_FUZZ_EXAMPLES", "0")) or 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
RUNS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("NAFTIKO_FUZZ_EXPLORE", "") in ("", "0"),
)


def _exported() -> dict:
    """The document ``naftiko export openapi FILE -o OUT`` writes (the CLI entry point, run in-process
    at collection: schemathesis needs the document to generate the test cases)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "metronome-customers.openapi.json")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["export", "openapi", str(FILE), "-o", out]) == 0
        with open(out, "rb") as fh:
            return orjson.loads(fh.read())


API = schemathesis.openapi.from_dict(_exported())
API.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES)


# Responses by status, printed at the end of each server's run (pytest -s shows them).
TALLY: dict[str, Counter] = {"dry-run": Counter(), "upstream": Counter()}


def _report(target: str) -> None:
    tally = TALLY[target]
    print(f"\nschemathesis, {target}: {sum(tally.values())} requests; by status {dict(sorted(tally.items()))}")


@pytest.fixture(scope="module")
def dry_served():
    n = start_naftiko(FILE, None, adapters=[REST, MCP], extra=["--dry-run"])
    yield n
    _report("dry-run")
    assert n.stop() == 0
    assert "Traceback" not in n.stderr, n.stderr


@pytest.fixture(scope="module")
def upstream_served():
    # The upstream runs in its own process: these tests are synchronous, so an upstream on the
    # test session's event loop would not answer while a request waits for it.
    with spawned() as upstream_url:
        n = start_naftiko(
            FILE,
            upstream_url,
            consumes=["metronome-customers"],
            adapters=[REST, MCP],
            env={"METRONOME_API_KEY": API_KEY},
        )
        yield n
        _report("upstream")
        assert n.stop() == 0
    assert "Traceback" not in n.stderr, n.stderr
    assert API_KEY not in n.stderr


@API.parametrize()
@RUNS
def test_dry_run_honours_its_openapi(case, dry_served):
    response = case.call_and_validate(base_url=dry_served.urls[REST].rstrip("/"), checks=CHECKS, timeout=10)
    TALLY["dry-run"][response.status_code] += 1


@API.parametrize()
@RUNS
def test_upstream_calls_honour_the_openapi(case, upstream_served):
    response = case.call_and_validate(base_url=upstream_served.urls[REST].rstrip("/"), checks=CHECKS, timeout=10)
    TALLY["upstream"][response.status_code] += 1
    assert API_KEY not in response.text
