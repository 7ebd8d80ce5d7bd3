"""Connection-level attacks on loopback, with the control adapter's health probe watched throughout.

    python bench/attacks.py                       # every attack, default limits
    python bench/attacks.py --only slow-connections --json /tmp/attacks.json

Run it with the project's venv active. It starts one naftiko process serving
tests/fixtures/observability.yaml (REST, MCP and control adapters) under an open-file limit of
1,024 (soft and hard, so naftiko cannot raise it), then for each attack: samples the process's
RSS, runs the attack against the REST port for ``--seconds`` while probing
``GET /health/live`` on the control port every 100 ms (1 s client timeout), stops the attack,
and measures how long until an ordinary REST request is answered again and the RSS after a pause.

Attacks (docs/reliability.md, "Inbound attacks"):

* ``header-value``: 20 connections each sending one endless header value, 64 KiB at a time;
* ``header-lines``: 20 connections each sending endless short header lines;
* ``slow-connections``: 1,100 connections opened at once that send one byte of a request line and
  then nothing (slowloris), held for the attack's duration;
* ``slow-body``: 200 connections to the MCP endpoint each sending headers announcing a 1 MiB body,
  then a byte a second.

Exit code 1 when a probe failed, RSS grew by more than ``--max-rss-growth-mb`` at any sample, or
REST did not answer again within 15 s of the end of an attack; 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPABILITY = ROOT / "tests" / "fixtures" / "observability.yaml"
REST, MCP = "keeper-rest", "keeper-mcp"
FD_LIMIT = 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Result:
    attack: str
    probes: int
    probe_failures: int
    probe_p50_ms: float
    probe_max_ms: float
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    recover_s: float
    refused: dict


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


paths: dict[str, str] = {}


def start(extra: list[str]) -> tuple[subprocess.Popen, dict[str, tuple[str, int]]]:
    def limit_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    cmd = [sys.executable, "-m", "naftiko", "serve", str(CAPABILITY), "--base-uri", "up=http://127.0.0.1:9",
           "--port", f"{REST}=0", "--port", f"{MCP}=0", "--port", "control=0", "--log-level", "warning", *extra]
    env = {**os.environ, "LIGHTHOUSE_TOKEN": "t0ken-for-bench"}
    popen = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                             text=True, env=env, preexec_fn=limit_fds)
    urls: dict[str, tuple[str, int]] = {}
    deadline = time.monotonic() + 30
    while len(urls) < 3:
        line = popen.stdout.readline()  # type: ignore[union-attr]
        if not line or time.monotonic() > deadline:
            raise SystemExit("attacks: naftiko did not start")
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("http://"):
            host_port = parts[2].split("/")[2]
            host, port = host_port.rsplit(":", 1)
            urls[parts[0] if parts[0] == "control" else parts[1]] = (host, int(port))
            paths[parts[1]] = "/" + parts[2].split("/", 3)[3] if parts[2].count("/") >= 3 else "/"
    return popen, urls


async def _request(host: str, port: int, path: str, timeout: float) -> int:  # noqa: ASYNC109
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), timeout)
        return int(raw.split(b" ", 2)[1])
    finally:
        writer.close()


async def probe_loop(control: tuple[str, int], stop: asyncio.Event, samples: list[float | None]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status = await _request(*control, "/health/live", 1.0)
            samples.append((time.perf_counter() - started) * 1000 if status == 200 else None)
        except (TimeoutError, OSError, ValueError, IndexError):
            samples.append(None)
        await asyncio.sleep(0.1)


async def _endless(host: str, port: int, head: bytes, chunk: bytes, stop: asyncio.Event, refused: dict) -> None:
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        try:
            writer.write(head)
            while not stop.is_set():
                writer.write(chunk)
                await writer.drain()
                if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]
                    break
        except (ConnectionError, OSError):
            pass
        status = _status_of(reader)
        if status is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.read(200), 0.5)
            status = _status_of(reader) or "closed"
        refused[status] = refused.get(status, 0) + 1
        writer.close()


def _status_of(reader: asyncio.StreamReader) -> str | None:
    """The status of an answer already received, if any (a reset afterwards does not lose it)."""
    data = bytes(reader._buffer)  # type: ignore[attr-defined]
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else None


async def header_value(rest: tuple[str, int], stop: asyncio.Event, refused: dict) -> None:
    head = b"GET /lamps/1 HTTP/1.1\r\nhost: x\r\nx-endless: "
    await asyncio.gather(*(_endless(*rest, head, b"a" * 65536, stop, refused) for _ in range(20)))


async def header_lines(rest: tuple[str, int], stop: asyncio.Event, refused: dict) -> None:
    head = b"GET /lamps/1 HTTP/1.1\r\nhost: x\r\n"
    await asyncio.gather(*(_endless(*rest, head, b"x-a: b\r\n" * 8192, stop, refused) for _ in range(20)))


async def _hold(host: str, port: int, first: bytes, drip: bytes | None, stop: asyncio.Event, refused: dict) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        refused["connect-failed"] = refused.get("connect-failed", 0) + 1
        return
    try:
        writer.write(first)
        while not stop.is_set():
            if reader.at_eof() or reader._buffer:  # type: ignore[attr-defined]
                status = _status_of(reader) or "closed"
                refused[status] = refused.get(status, 0) + 1
                return
            if drip is not None:
                writer.write(drip)
            await asyncio.sleep(1.0 if drip else 0.2)
    except (ConnectionError, OSError):
        status = _status_of(reader) or "reset"
        refused[status] = refused.get(status, 0) + 1
    finally:
        writer.close()


async def slow_connections(rest: tuple[str, int], stop: asyncio.Event, refused: dict) -> None:
    await asyncio.gather(*(_hold(*rest, b"G", None, stop, refused) for _ in range(1100)))


async def slow_body(rest: tuple[str, int], stop: asyncio.Event, refused: dict) -> None:
    """Against the MCP endpoint, which reads every POST body (REST answers 405 to POST here)."""
    head = (
        b"POST " + paths[MCP].encode()
        # the MCP endpoint's own Host check (DNS-rebinding protection) answers 421 to any other host at once
        + b" HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n{"
    )
    await asyncio.gather(*(_hold(*rest, head, b" ", stop, refused) for _ in range(200)))


ATTACKS = {
    "header-value": header_value, "header-lines": header_lines, "slow-connections": slow_connections,
    "slow-body": slow_body,
}


async def run_attack(name: str, pid: int, urls: dict, seconds: float) -> Result:
    rest, control = urls[REST], urls["control"]
    before = _rss_mb(pid)
    stop, probe_stop = asyncio.Event(), asyncio.Event()
    samples: list[float | None] = []
    refused: dict = {}
    peak = before
    prober = asyncio.create_task(probe_loop(control, probe_stop, samples))
    target = urls[MCP] if name == "slow-body" else rest
    attack = asyncio.create_task(ATTACKS[name](target, stop, refused))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.2)
        peak = max(peak, _rss_mb(pid))
    stop.set()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(attack, 10)
    stopped = time.monotonic()
    recover = float("inf")
    while time.monotonic() - stopped < 15:
        try:
            if await _request(*rest, "/lamps/1", 1.0) in (502, 200):  # the upstream is a closed port: 502 is an answer
                recover = time.monotonic() - stopped
                break
        except (TimeoutError, OSError, ValueError, IndexError):
            await asyncio.sleep(0.1)
    probe_stop.set()
    await prober
    await asyncio.sleep(2)
    ok = sorted(s for s in samples if s is not None)
    return Result(
        attack=name, probes=len(samples), probe_failures=sum(s is None for s in samples),
        probe_p50_ms=round(ok[len(ok) // 2], 1) if ok else float("nan"),
        probe_max_ms=round(ok[-1], 1) if ok else float("nan"),
        rss_before_mb=round(before, 1), rss_peak_mb=round(peak, 1), rss_after_mb=round(_rss_mb(pid), 1),
        recover_s=round(recover, 2), refused=refused,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(ATTACKS), help="run only this attack (repeatable)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each attack (default 15)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=200.0, help="fail beyond this growth (default 200)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("naftiko_flags", nargs="*", help="extra naftiko-run flags (after --)")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, max(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
    popen, urls = start(args.naftiko_flags)
    results: list[Result] = []
    try:
        for name in args.only or list(ATTACKS):
            log(f"attack {name} for {args.seconds:g}s …")
            results.append(asyncio.run(run_attack(name, popen.pid, urls, args.seconds)))
            log(f"  {asdict(results[-1])}")
    finally:
        popen.send_signal(signal.SIGTERM)
        popen.wait(30)
    print(f"{'attack':<18} {'probes':>6} {'failed':>6} {'p50 ms':>7} {'max ms':>7} "
          f"{'RSS MB before/peak/after':>26} {'recover s':>9}")
    failed = False
    for r in results:
        print(f"{r.attack:<18} {r.probes:>6} {r.probe_failures:>6} {r.probe_p50_ms:>7} {r.probe_max_ms:>7} "
              f"{f'{r.rss_before_mb}/{r.rss_peak_mb}/{r.rss_after_mb}':>26} {r.recover_s:>9}   refused: {r.refused}")
        failed |= r.probe_failures > 0 or r.rss_peak_mb - r.rss_before_mb > args.max_rss_growth_mb or r.recover_s > 15
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
