"""The in-process harness serves what ``naftiko serve`` serves: the same start-up lines for the
same arguments, requests answered the same way in memory and on sockets, each capability's log
kept apart, and ``run_cli`` never left serving."""

from __future__ import annotations

import re

import pytest

from conftest import CAPABILITIES, start_naftiko
from harness import run_cli

FILE = CAPABILITIES / "metronome-customers.yaml"
REST, MCP = "metronome-customers-rest", "metronome-customers-mcp"
PORT = re.compile(r":\d+/")


async def test_start_up_lines_are_the_commands(in_memory):
    process = start_naftiko(FILE, None, adapters=[REST, MCP], extra=["--dry-run"])
    try:
        served = await in_memory(FILE, None, adapters=[REST, MCP], extra=["--dry-run"])
        lines = [line for line in process.stdout_lines if line.split()[0] in ("rest", "mcp")]
        assert [PORT.sub(":PORT/", line) for line in served.stdout_lines[1:]] == [PORT.sub(":PORT/", line) for line in lines]
        assert served.stdout_lines[0] == "dry run: upstream calls are described, not sent"
        assert served.sizes == process.sizes == {REST: 15, MCP: 15}
    finally:
        assert process.stop() == 0


@pytest.mark.parametrize("sockets", [False, True])
async def test_memory_and_sockets_answer_alike(in_memory, sockets):
    served = await in_memory(FILE, None, adapters=[REST, MCP], extra=["--dry-run"], sockets=sockets)
    async with served.http() as http:
        r = await http.get(served.urls[REST] + "v1/v1/customers/c-1")
    assert r.status_code == 200 and r.json()["url"] == "https://api.metronome.com/v1/customers/c-1"
    async with served.mcp(MCP, mode="auto") as client:
        result = await client.call_tool("get-customer", {"customer_id": "c-2"})
    assert result.structured_content["url"] == "https://api.metronome.com/v1/customers/c-2"
    assert served.alive


async def test_each_capability_keeps_its_own_log(in_memory):
    first = await in_memory(FILE, None, adapters=[REST, MCP], extra=["--dry-run"])
    second = await in_memory(FILE, None, adapters=[REST, MCP], extra=["--dry-run"])
    async with first.http() as http:
        assert (await http.get(first.urls[REST] + "v1/v1/customers/only-first")).status_code == 200
    assert "only-first" in first.stderr
    assert "only-first" not in second.stderr


def test_run_cli_never_serves():
    assert run_cli(["serve", str(FILE), "--grace", "-1"]).returncode == 2
    with pytest.raises(AssertionError, match="started serving"):
        run_cli(["serve", str(FILE), "--dry-run"])
