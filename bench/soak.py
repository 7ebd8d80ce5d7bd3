"""Soak: many requests over REST and MCP (both protocol eras) with injected upstream faults.

    python bench/soak.py                                   # 20,000 requests, default fault mix
    python bench/soak.py --requests 50000 --faults 5xx=5,hang=1,reset=1,malformed=1,slow=1
    python bench/soak.py --requests 2000 --concurrency 8 --json /tmp/soak.json

Run it with the project's venv active. It starts its own fault upstream (tests/fault_upstream.py,
in its own process) and one naftiko process serving tests/fixtures/faults.yaml, then sends the
requests from a fixed-seed plan: each one picks an interface (REST, MCP handshake era, MCP
2026-07-28), a unit (REST: relayed, shaped, two-step orchestration, forward; MCP: the same three
as tools) and a fault from the mix (the rest of 100 % are normal calls). Every answer is checked
against what that fault must produce — the exact status and problem detail over REST, the exact
``isError`` flag and text over MCP. Anything else is an *unexpected error*: a transport error, a
client timeout (a hang), an engine 500, or an answer of the wrong class or text.

Reported: requests sent, responses by class, unexpected errors (must be 0, with the first few
shown), throughput and latency, and the naftiko process's RSS and open sockets (from /proc):
*before* = after a warm-up run and an idle pause (--settle, so pooled keep-alive connections
expire), *after* = after the measured run and the same pause. Exit code 1 when there is an unexpected error, or
when the process did not come back to its starting figures (sockets above the start + slack,
RSS growth above --max-rss-growth-mb); 0 otherwise.

Faults (``--faults NAME=PERCENT,…``): 4xx, 5xx (500/502/503, relayed with the upstream body),
hang (no answer: a 504 after --timeout), stall (half a body, then silence: 504), reset (RST
before or during the answer: 502), close (FIN before any byte: 502), truncated (Content-Length
not kept: 502), garbage (not HTTP: 502), malformed (cut-off JSON: relayed as is, or a 502 where it
must be parsed), binary (octet-stream: relayed, a blob over MCP, 502 where parsed), empty (204),
slow (a body dripped over 200 ms: a normal answer), huge (1 MiB JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fault_upstream import BINARY, error_body, huge_body, ok_body, spawned  # noqa: E402  # needs the path above

CAPABILITY = ROOT / "tests" / "fixtures" / "faults.yaml"
REST, MCP = "faults-rest", "faults-mcp"
REST_UNITS = ("simple", "shaped", "steps", "fwd/f")
TOOLS = ("simple", "shaped", "steps")
DEFAULT_FAULTS = (
    "4xx=2,5xx=5,hang=1,stall=0.5,reset=1,close=0.5,truncated=0.5,garbage=0.5,malformed=1,binary=1,empty=1,slow=1"
)
HUGE_BYTES = 1024 * 1024
# fault name in the mix → the upstream fault paths it picks from (tests/fault_upstream.py)
FAULTS = {
    "ok": ["ok"], "4xx": ["400", "404", "429"], "5xx": ["500", "502", "503"], "hang": ["hang"], "stall": ["stall"],
    "reset": ["reset-before", "reset-mid"], "close": ["close-before"], "truncated": ["truncated"],
    "garbage": ["garbage", "bad-chunked"], "malformed": ["malformed"], "binary": ["binary", "binary-json"],
    "empty": ["204"], "slow": ["drip-8-25"], "huge": [f"huge-{HUGE_BYTES}"],
}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "soak", "version": "1"},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- what each fault must produce


@dataclass(frozen=True)
class Call:
    iface: str  # rest | legacy | modern
    unit: str
    fault: str  # the upstream fault path segment
    item: str


def _not_json(ctype: str) -> str:
    return f"upstream answered {ctype} that is not JSON; cannot apply outputParameters"


class Expectations:
    """``check(call, answer)`` → None when the answer is exactly what the fault must produce,
    else a short reason. ``answer`` is (status, content type, body bytes)."""

    def __init__(self, host: str, timeout: float):
        self.host = host
        self.timeout = timeout

    def engine(self, fault: str) -> tuple[int, str, bool] | None:
        """(status, detail, detail is only a prefix) for faults every unit reports as an engine error."""
        if fault in ("hang", "stall"):
            return 504, f"upstream {self.host} did not answer within {self.timeout:g}s", False
        if fault in ("reset-before", "reset-mid", "close-before", "truncated", "garbage", "bad-chunked"):
            return 502, f"upstream {self.host} failed: ", True  # the client library names the failure
        return None

    def check(self, call: Call, status: int, ctype: str, body: bytes) -> str | None:
        return self.rest(call, status, ctype, body) if call.iface == "rest" else self.mcp(call, status, body)

    def rest(self, call: Call, status: int, ctype: str, body: bytes) -> str | None:
        fault, unit, relayed = call.fault, call.unit, call.unit in ("simple", "fwd/f")
        engine = self.engine(fault)
        if engine is None and fault.isdigit() and fault != "204":
            want = (int(fault), "application/json", error_body(int(fault), call.item))
            return None if (status, ctype, body) == want else f"want relayed {fault}, got {status} {body[:80]!r}"
        if engine is None and not relayed and fault in ("malformed", "binary", "binary-json"):
            engine = (502, _not_json("application/octet-stream" if fault == "binary" else "application/json"), False)
        if engine is not None:
            want_status, detail, prefix = engine
            if status != want_status or ctype != "application/problem+json":
                return f"want {want_status} problem, got {status} {ctype} {body[:80]!r}"
            got = orjson.loads(body).get("detail", "")
            return None if (got.startswith(detail) if prefix else got == detail) else f"detail {got!r}"
        if fault == "204":
            if unit == "steps":
                empty_step = (status, orjson.loads(body or b"null")) == (200, {"id": call.item, "name": None})
                return None if empty_step else f"got {status} {body[:80]!r}"
            return None if (status, body) == (204, b"") else f"want 204, got {status} {body[:80]!r}"
        if status != 200:
            return f"want 200, got {status} {body[:120]!r}"
        if relayed:
            malformed = b'{"id": "' + call.item.encode() + b'", "name": '
            want = {"malformed": malformed, "binary": BINARY, "binary-json": BINARY}.get(fault)
            if want is None:
                want = huge_body(HUGE_BYTES) if fault.startswith("huge") else ok_body(call.item)
            return None if body == want else f"relayed body differs ({len(body)} bytes)"
        value = orjson.loads(body)
        want = {"name": "Acme"} if unit == "shaped" else {"id": call.item, "name": "Acme"}
        return None if value == want else f"got {value!r}"

    def mcp(self, call: Call, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"MCP HTTP {status}: {body[:120]!r}"
        answer = orjson.loads(body)
        result = answer.get("result")
        if result is None:
            return f"JSON-RPC error {answer.get('error')}"
        texts = [block.get("text", "") for block in result.get("content", [])]
        fault, unit = call.fault, call.unit
        engine = self.engine(fault)
        if engine is None and fault.isdigit() and fault != "204":
            expected = f"upstream returned HTTP {fault}: " + error_body(int(fault), call.item).decode()
            return None if result.get("isError") and texts == [expected] else f"got {result!r}"[:200]
        if engine is None and unit != "simple" and fault in ("malformed", "binary", "binary-json"):
            engine = (0, _not_json("application/octet-stream" if fault == "binary" else "application/json"), False)
        if engine is not None:
            _, detail, prefix = engine
            matches = len(texts) == 1 and (texts[0].startswith(detail) if prefix else texts[0] == detail)
            ok = result.get("isError") and matches
            return None if ok else f"want isError {detail!r}, got {result!r}"[:200]
        if result.get("isError"):
            return f"unexpected isError {texts!r}"[:200]
        if fault == "204":
            want_empty = unit != "steps"
            return None if (result.get("content") == []) == want_empty else f"got {result!r}"[:200]
        if unit == "simple" and fault in ("binary", "binary-json"):
            blocks = result.get("content", [])
            return None if len(blocks) == 1 and blocks[0].get("type") == "resource" else f"got {blocks!r}"[:200]
        if unit == "simple" and fault == "malformed":
            return None if texts == ['{"id": "' + call.item + '", "name": '] else f"got {texts!r}"
        simple = orjson.loads(huge_body(HUGE_BYTES)) if fault.startswith("huge") else orjson.loads(ok_body(call.item))
        want = {"simple": simple, "shaped": "Acme", "steps": {"id": call.item, "name": "Acme"}}[unit]
        got = orjson.loads(texts[0]) if len(texts) == 1 else None
        return None if got == want else f"got {texts!r}"[:200]


# ---------------------------------------------------------------- the plan


def parse_mix(text: str, names) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in names:
            raise SystemExit(f"soak: unknown name {name!r} in {text!r} (known: {', '.join(sorted(names))})")
        try:
            mix[name] = float(value)
        except ValueError:
            raise SystemExit(f"soak: {part!r} needs a number: NAME=PERCENT") from None
    return mix


def plan(n: int, faults: dict[str, float], ifaces: dict[str, float], seed: int) -> list[Call]:
    rng = random.Random(seed)
    fault_names = [*faults, "ok"]
    fault_weights = [*faults.values(), max(100.0 - sum(faults.values()), 0.0)]
    calls = []
    for i in range(n):
        iface = rng.choices(list(ifaces), list(ifaces.values()))[0]
        unit = rng.choice(REST_UNITS if iface == "rest" else TOOLS)
        kind = rng.choices(fault_names, fault_weights)[0]
        calls.append(Call(iface, unit, rng.choice(FAULTS[kind]), f"s{i}"))
    return calls


# ---------------------------------------------------------------- the naftiko process and /proc


@dataclass
class Naftiko:
    popen: subprocess.Popen
    stderr_path: Path
    rest: str = ""
    mcp: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def sockets(self) -> int:
        count = 0
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                count += os.readlink(fd).startswith("socket:")
            except OSError:
                pass
        return count

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def start_naftiko(upstream: str, timeout: float, tmp: Path) -> Naftiko:
    stderr_path = tmp / "naftiko.stderr"
    cmd = [sys.executable, "-m", "naftiko", "serve", str(CAPABILITY), "--base-uri", f"up={upstream}",
           "--port", f"{REST}=0", "--port", f"{MCP}=0", "--timeout", str(timeout), "--log-level", "warning"]
    with open(stderr_path, "wb") as err:
        popen = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
    n = Naftiko(popen, stderr_path)
    deadline = time.monotonic() + 30
    while not (n.rest and n.mcp):
        line = popen.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise SystemExit(f"soak: naftiko did not start: {stderr_path.read_text()[-2000:]}")
        parts = line.split()
        if len(parts) >= 3 and parts[1] == REST:
            n.rest = parts[2]
        elif len(parts) >= 3 and parts[1] == MCP:
            n.mcp = parts[2]
    return n


# ---------------------------------------------------------------- sending


@dataclass
class Tally:
    classes: Counter = field(default_factory=Counter)
    by_fault: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    unexpected_count: int = 0
    latencies: list[float] = field(default_factory=list)

    def bad(self, call: Call, reason: str) -> None:
        self.unexpected_count += 1
        if len(self.unexpected) < 20:
            self.unexpected.append(f"{call.iface} {call.unit} {call.fault} {call.item}: {reason}")


def _mcp_message(call: Call, modern: bool) -> tuple[bytes, dict]:
    params: dict = {"name": call.unit, "arguments": {"fault": call.fault, "id": call.item}}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if modern:
        params["_meta"] = MODERN_META
        headers.update({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": call.unit})
    else:
        headers["MCP-Protocol-Version"] = "2025-11-25"
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}), headers


def classify(call: Call, status: int, body: bytes) -> str:
    if call.iface == "rest":
        return f"REST {status // 100}xx"
    if status != 200:
        return f"MCP HTTP {status}"
    answer = orjson.loads(body)
    if "error" in answer:
        return "MCP JSON-RPC error"
    return "MCP isError" if answer["result"].get("isError") else "MCP result"


async def send(
    session: aiohttp.ClientSession, n: Naftiko, call: Call, expect: Expectations, tally: Tally, client_timeout: float
) -> None:
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=client_timeout)
    try:
        if call.iface == "rest":
            request = session.get(f"{n.rest}{call.unit}/{call.fault}/{call.item}", timeout=timeout)
        else:
            data, headers = _mcp_message(call, call.iface == "modern")
            request = session.post(n.mcp, data=data, headers=headers, timeout=timeout)
        async with request as resp:
            body = await resp.read()
            status, ctype = resp.status, resp.headers.get("Content-Type", "")
    except TimeoutError:
        tally.classes["client timeout (hang)"] += 1
        tally.bad(call, f"no answer within {client_timeout:g}s")
        return
    except aiohttp.ClientError as exc:
        tally.classes["transport error"] += 1
        tally.bad(call, f"transport error {type(exc).__name__}: {exc}")
        return
    tally.latencies.append(time.perf_counter() - started)
    tally.by_fault[call.fault] += 1
    try:
        tally.classes[classify(call, status, body)] += 1
        reason = expect.check(call, status, ctype, body)
    except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
        reason = f"unreadable answer ({type(exc).__name__}): {status} {body[:120]!r}"
    if status == 500 and call.iface == "rest" and call.fault != "500":
        reason = reason or "engine 500"
    if reason:
        tally.bad(call, reason)


async def run_calls(n: Naftiko, calls: list[Call], concurrency: int, expect: Expectations, client_timeout: float,
                    progress: bool = False) -> Tally:
    tally = Tally()
    queue = iter(calls)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=True) as session:
        done = 0
        last = time.monotonic()

        async def worker() -> None:
            nonlocal done, last
            for call in queue:
                await send(session, n, call, expect, tally, client_timeout)
                done += 1
                if progress and time.monotonic() - last > 10:
                    last = time.monotonic()
                    log(f"  {done}/{len(calls)} sent, unexpected so far {tally.unexpected_count}, "
                        f"RSS {n.rss_kb() / 1024:.1f} MiB, sockets {n.sockets()}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


def snapshot(n: Naftiko) -> dict:
    return {"rss_mib": round(n.rss_kb() / 1024, 1), "sockets": n.sockets()}


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring (bench/soak.py) for the faults and what each must produce.",
    )
    parser.add_argument("--requests", type=int, default=20000, help="requests in the measured run (default 20000)")
    parser.add_argument("--faults", default=DEFAULT_FAULTS,
                        help=f"NAME=PERCENT,… (default {DEFAULT_FAULTS}); the rest are normal calls")
    parser.add_argument("--mix", default="rest=50,legacy=25,modern=25",
                        help="interfaces by weight (default rest=50,legacy=25,modern=25)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at once (default 32)")
    parser.add_argument("--timeout", type=float, default=2.0, help="naftiko's --timeout, what a hang costs (default 2)")
    parser.add_argument("--warmup", type=int, default=2000,
                        help="requests (same mix) before the first /proc figures (default 2000)")
    parser.add_argument("--settle", type=float, default=35.0,
                        help="seconds idle before each figure, so pooled keep-alive connections expire: "
                             "aiohttp closes an idle one 15-30 s after its last use (default 35)")
    parser.add_argument("--seed", type=int, default=1, help="plan seed (default 1)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=30.0,
                        help="allowed RSS growth, start to end (default 30)")
    parser.add_argument("--socket-slack", type=int, default=2, help="allowed extra sockets at the end (default 2)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    faults = parse_mix(args.faults, set(FAULTS) - {"ok"})
    ifaces = parse_mix(args.mix, {"rest", "legacy", "modern"})
    if sum(faults.values()) > 100 or not sum(ifaces.values()):
        raise SystemExit("soak: the faults add up to more than 100 %, or the mix is empty")
    try:
        import uvloop

        return uvloop.run(_main(args, faults, ifaces))
    except ImportError:
        return asyncio.run(_main(args, faults, ifaces))


async def _main(args, faults: dict[str, float], ifaces: dict[str, float]) -> int:
    client_timeout = args.timeout + 10
    with tempfile.TemporaryDirectory(prefix="naftiko-soak-") as tmp, spawned() as upstream:
        n = start_naftiko(upstream, args.timeout, Path(tmp))
        try:
            host = upstream.split("://", 1)[1]
            expect = Expectations(host, args.timeout)
            log(f"soak: naftiko pid {n.pid} on {n.rest} and {n.mcp}; fault upstream {upstream}")
            at_start = snapshot(n)
            log(f"warm-up: {args.warmup} requests")
            warmup = plan(args.warmup, faults, ifaces, args.seed + 1)
            warm = await run_calls(n, warmup, args.concurrency, expect, client_timeout)
            log(f"idle for {args.settle:g}s (pooled keep-alive connections expire)…")
            await asyncio.sleep(args.settle)
            before = snapshot(n)
            log(f"measured run: {args.requests} requests, faults {faults}, mix {ifaces}, "
                f"concurrency {args.concurrency}")
            started = time.monotonic()
            calls = plan(args.requests, faults, ifaces, args.seed)
            tally = await run_calls(n, calls, args.concurrency, expect, client_timeout, progress=True)
            elapsed = time.monotonic() - started
            after = snapshot(n)
            log(f"idle for {args.settle:g}s again…")
            await asyncio.sleep(args.settle)
            settled = snapshot(n)
            final = [Call("rest", "simple", "ok", "final"), Call("modern", "steps", "ok", "final")]
            healthy = await run_calls(n, final, 1, expect, client_timeout)
        finally:
            code = n.stop()
        stderr = n.stderr_path.read_text(errors="replace")
    tracebacks = stderr.count("Traceback")
    lat = sorted(tally.latencies)
    figures = {
        "command": "python bench/soak.py " + " ".join(sys.argv[1:]),
        "requests": args.requests, "faults_percent": faults, "mix": ifaces, "concurrency": args.concurrency,
        "timeout_s": args.timeout,
        "elapsed_s": round(elapsed, 1), "requests_per_s": round(args.requests / elapsed, 1),
        "latency_ms": (
            {"p50": round(lat[len(lat) // 2] * 1000, 2), "p99": round(lat[int(len(lat) * 0.99)] * 1000, 2)}
            if lat else {}
        ),
        "responses_by_class": dict(sorted(tally.classes.items())),
        "upstream_faults": dict(sorted(tally.by_fault.items())),
        "unexpected_errors": tally.unexpected_count + warm.unexpected_count + healthy.unexpected_count,
        "warmup_unexpected": warm.unexpected_count, "final_call_unexpected": healthy.unexpected_count,
        "tracebacks_in_stderr": tracebacks, "exit_code": code,
        "naftiko": {"at_start": at_start, "before": before, "end_of_run": after, "after": settled},
        "rss_delta_mib": round(settled["rss_mib"] - before["rss_mib"], 1),
        "sockets_delta": settled["sockets"] - before["sockets"],
    }
    stable = (
        figures["rss_delta_mib"] <= args.max_rss_growth_mb
        and settled["sockets"] <= before["sockets"] + args.socket_slack
    )
    figures["stable"] = stable
    report(figures, tally.unexpected + warm.unexpected + healthy.unexpected)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")  # noqa: ASYNC240  # once, at the end
    ok = figures["unexpected_errors"] == 0 and tracebacks == 0 and code == 0 and stable
    return 0 if ok else 1


def report(f: dict, unexpected: list[str]) -> None:
    w = print
    w(f"requests sent       {f['requests']:,} (+ warm-up), concurrency {f['concurrency']}, "
      f"naftiko --timeout {f['timeout_s']:g}s")
    w(f"fault mix (%)       {', '.join(f'{k}={v:g}' for k, v in f['faults_percent'].items())}; interfaces {f['mix']}")
    w(f"duration            {f['elapsed_s']} s, {f['requests_per_s']} req/s, "
      f"latency p50 {f['latency_ms'].get('p50')} ms, p99 {f['latency_ms'].get('p99')} ms")
    w("responses by class  " + ", ".join(f"{k}: {v:,}" for k, v in f["responses_by_class"].items()))
    w("upstream faults     " + ", ".join(f"{k}: {v:,}" for k, v in f["upstream_faults"].items()))
    w(f"unexpected errors   {f['unexpected_errors']}   (tracebacks in naftiko's stderr: {f['tracebacks_in_stderr']}; "
      f"exit code {f['exit_code']})")
    for line in unexpected:
        w(f"    {line}")
    p = f["naftiko"]
    w(f"naftiko RSS (MiB)   before {p['before']['rss_mib']}, after {p['after']['rss_mib']} "
      f"(delta {f['rss_delta_mib']:+}); "
      f"fresh process {p['at_start']['rss_mib']}, at the end of the run {p['end_of_run']['rss_mib']}")
    w(f"naftiko sockets     before {p['before']['sockets']}, after {p['after']['sockets']} "
      f"(delta {f['sockets_delta']:+}); "
      f"fresh process {p['at_start']['sockets']}, at the end of the run {p['end_of_run']['sockets']}")
    w("                    (before = after the warm-up and an idle pause; after = after the run and the same pause)")
    w(f"stable              {'yes' if f['stable'] else 'NO'}")


if __name__ == "__main__":
    sys.exit(main())
