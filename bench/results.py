"""Rendering bench/RESULTS.md from the measurements bench/run.py collected (no measuring here)."""

from __future__ import annotations

import math
import statistics

TARGETS = {  # issue 12's goals, checked against the medians
    "rest_ratio": 0.8,  # REST req/s, naftiko (defaults) / bare forwarder, 32 connections
    "mcp_ratio_2026": 3.0,  # MCP req/s, naftiko / FastMCP, 16 connections, 2026-07-28
    "mcp_ratio_legacy": 2.5,  # MCP req/s, naftiko / FastMCP, 16 connections, handshake era
    "added_p50_ms": 0.3,  # REST p50, naftiko - bare forwarder, 1 connection
}


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def ratio(scenario, conns: int, attr: str = "rps", other: str | None = None) -> float:
    """First target's median over another's (naftiko / the second target unless ``other`` names one)."""
    cell = scenario.cell(conns)
    a = scenario.targets[0].name
    b = other or scenario.targets[1].name
    return cell.median(a, attr) / cell.median(b, attr)


def cpu_ratio(scenario, conns: int, other: str | None = None) -> float:
    """Throughput ratio implied by server CPU per request (other's / naftiko's)."""
    return 1 / ratio(scenario, conns, "cpu_us", other)


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def scenario_table(scenario, cores: int) -> list[str]:
    lines = [
        f"### {scenario.title}",
        "",
        f"Other processes on the machine used {scenario.other_cores:.2f} of {cores} cores on average while "
        + "this scenario ran.",
        "",
        "| conns | server | req/s | p50 ms | p99 ms | server CPU µs/req | upstream calls/req | errors "
        "| req/s per round |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for cell in scenario.cells:
        for target in scenario.targets:
            name, runs = target.name, cell.runs[target.name]
            cols = [
                str(cell.conns), name, fmt(cell.median(name, "rps")), fmt(cell.median(name, "p50_ms"), 2),
                fmt(cell.median(name, "p99_ms"), 2), fmt(cell.median(name, "cpu_us")),
                fmt(cell.median(name, "upstream_per_request"), 2), str(sum(r.errors for r in runs)),
                " / ".join(fmt(r.rps) for r in runs),
            ]
            lines.append("| " + " | ".join(cols) + " |")
    return [*lines, ""]


def targets_table(rest, mcp26, mcp_legacy) -> list[str]:
    rest_ratio, r26, rlegacy = ratio(rest, 32), ratio(mcp26, 16), ratio(mcp_legacy, 16)
    c1 = rest.cell(1)
    added = c1.median("naftiko", "p50_ms") - c1.median("bare forwarder", "p50_ms")
    added_cpu = c1.median("naftiko", "cpu_us") - c1.median("bare forwarder", "cpu_us")
    rows = [
        ("REST req/s, naftiko (defaults, request log on) / bare forwarder, 32 conns", f"{rest_ratio:.2f}×",
         f"≥ {TARGETS['rest_ratio']}×", rest_ratio >= TARGETS["rest_ratio"], f"{cpu_ratio(rest, 32):.2f}×"),
        ("MCP req/s, naftiko / FastMCP, 16 conns, 2026-07-28", f"{r26:.2f}×", f"≥ {TARGETS['mcp_ratio_2026']}×",
         r26 >= TARGETS["mcp_ratio_2026"], f"{cpu_ratio(mcp26, 16):.2f}×"),
        ("MCP req/s, naftiko / FastMCP, 16 conns, handshake era (2025-11-25)", f"{rlegacy:.2f}×",
         f"≥ {TARGETS['mcp_ratio_legacy']}×", rlegacy >= TARGETS["mcp_ratio_legacy"],
         f"{cpu_ratio(mcp_legacy, 16):.2f}×"),
        ("REST p50 added latency at 1 conn, naftiko − bare forwarder", f"{added:.2f} ms",
         f"≤ {TARGETS['added_p50_ms']} ms", added <= TARGETS["added_p50_ms"], f"{added_cpu / 1000:+.2f} ms CPU"),
    ]
    lines = ["| target | measured | goal | met | cross-check from server CPU per request |",
             "|---|---:|---:|---|---:|"]
    lines += [f"| {what} | {got} | {goal} | {met(ok)} | {cpu} |" for what, got, goal, ok, cpu in rows]
    return [
        *lines,
        "",
        "The cross-check divides the servers' CPU time per request (from /proc) instead of their throughput: "
        + "on a busy machine it moves less than req/s, but it ignores time spent waiting, so it is a second "
        + "opinion, not the target.",
        "",
        "MCP SDK floor (the SDK's low-level server forwarding with aiohttp, bench/sdk_floor.py), 16 conns: "
        + f"naftiko / floor {ratio(mcp26, 16, other='MCP SDK floor'):.2f}× (2026-07-28), "
        + f"{ratio(mcp_legacy, 16, other='MCP SDK floor'):.2f}× (handshake era); floor / FastMCP "
        + f"{ratio(mcp26, 16, other='FastMCP') / ratio(mcp26, 16, other='MCP SDK floor'):.2f}× (2026-07-28), "
        + f"{ratio(mcp_legacy, 16, other='FastMCP') / ratio(mcp_legacy, 16, other='MCP SDK floor'):.2f}× "
        + "(handshake era).",
        "",
        f"Also, at 32 connections: MCP naftiko / FastMCP {ratio(mcp26, 32):.2f}× (2026-07-28), "
        + f"{ratio(mcp_legacy, 32):.2f}× (handshake era); at 1 connection: REST naftiko / bare "
        + f"{ratio(rest, 1):.2f}×, MCP naftiko / FastMCP {ratio(mcp26, 1):.2f}× (2026-07-28), "
        + f"{ratio(mcp_legacy, 1):.2f}× (handshake era).",
        "",
    ]


def memory_table(memory: list[tuple[str, int, int, int]]) -> list[str]:
    lines = [
        "## Memory (RSS of each server process, from /proc)",
        "",
        "naftiko is one process serving both the REST and the MCP adapter of `metronome-customers.yaml`, "
        + "with its default settings (log level info: one request log line per request).",
        "",
        "| server | RSS after first request | RSS after all load runs | peak RSS (VmHWM) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {idle / 1024:.1f} MiB | {after / 1024:.1f} MiB | {peak / 1024:.1f} MiB |"
              for name, idle, after, peak in memory]
    return [*lines, ""]


def startup_table(results: dict[str, list[tuple[float, int]]], operations: int) -> list[str]:
    lines = [
        f"## Start-up, generated capability with {operations} operations",
        "",
        "Process start → first successful MCP `tools/call` (handshake era, stateless), polled every 5 ms. "
        + f"naftiko serves `bench/gen_capability.py`'s capability (REST + MCP adapters, {operations} operations "
        + "each); FastMCP serves the equivalent OpenAPI document with `from_openapi`. Alternating, "
        + f"{len(results['naftiko'])} rounds.",
        "",
        "| server | start-up ms (median) | per round | RSS after first call |",
        "|---|---:|---|---:|",
    ]
    for name, runs in results.items():
        times = [t for t, _ in runs]
        lines.append(f"| {name} | {statistics.median(times):,.0f} | {' / '.join(f'{t:,.0f}' for t in times)} "
                     f"| {statistics.median(r for _, r in runs) / 1024:.1f} MiB |")
    return [*lines, ""]


def machine_lines(meta: dict) -> list[str]:
    return [
        f"- Date: {meta['date']}",
        f"- Command: `{meta['command']}` (took {meta['elapsed']:.0f} s)",
        f"- Machine: {meta['cpu']}, {meta['cores']} cores (nproc {meta['nproc']}), {meta['kernel']}, "
        + f"Python {meta['python']}",
        f"- Load average (1/5/15 min) at start: {meta['load_start']}; at end (includes this benchmark's own "
        + f"load): {meta['load_end']}",
        f"- Versions: naftiko {meta['naftiko']} at `{meta['commit']}`, mcp {meta['mcp']}, fastmcp "
        + f"{meta['fastmcp']} (own venv), {meta['wrk']}",
        f"- Upstream: {meta['upstream']} on 127.0.0.1",
        f"- Method: wrk, 1 thread, {meta['duration']} s per run after a {meta['warmup']} s warm-up per server and "
        + f"scenario; {meta['rounds']} rounds per cell alternating the servers (A B A B … or A B C A B C …); "
        + "every figure is "
        + "the median of the rounds. Each server is one process on loopback.",
    ]


def render_rest(meta: dict, rest, memory: list) -> str:
    """``run.py --only rest``: the REST targets, the REST table (with granian rows when measured), memory."""
    rest_ratio = ratio(rest, 32)
    c1 = rest.cell(1)
    added = c1.median("naftiko", "p50_ms") - c1.median("bare forwarder", "p50_ms")
    added_cpu = c1.median("naftiko", "cpu_us") - c1.median("bare forwarder", "cpu_us")
    rows = [
        ("REST req/s, naftiko (defaults, request log on) / bare forwarder, 32 conns", f"{rest_ratio:.2f}×",
         f"≥ {TARGETS['rest_ratio']}×", rest_ratio >= TARGETS["rest_ratio"], f"{cpu_ratio(rest, 32):.2f}×"),
        ("REST p50 added latency at 1 conn, naftiko − bare forwarder", f"{added:.2f} ms",
         f"≤ {TARGETS['added_p50_ms']} ms", added <= TARGETS["added_p50_ms"], f"{added_cpu / 1000:+.2f} ms CPU"),
    ]
    names = [t.name for t in rest.targets]
    out = ["# Benchmark results (REST only)", "", *machine_lines(meta), "",
           "| target | measured | goal | met | cross-check from server CPU per request |",
           "|---|---:|---:|---|---:|"]
    out += [f"| {what} | {got} | {goal} | {met(ok)} | {cpu} |" for what, got, goal, ok, cpu in rows]
    out.append("")
    if "naftiko (granian)" in names:
        c32 = rest.cell(32)

        def versus(a: str, b: str) -> str:
            rps = c32.median(a, "rps") / c32.median(b, "rps")
            cpu = c32.median(a, "cpu_us") / c32.median(b, "cpu_us")
            return f"{a} / {b}: {rps:.2f}× req/s, {cpu:.2f}× CPU per request"

        out += [
            "granian in place of uvicorn, 32 connections (the naftiko row runs its REST app under granian, "
            + "bench/granian_app.py, without naftiko's own inbound limits): "
            + "; ".join([versus("bare forwarder (granian)", "bare forwarder"), versus("naftiko (granian)", "naftiko"),
                         versus("naftiko (granian)", "bare forwarder")]) + ".",
            "",
        ]
    out += scenario_table(rest, meta["cores"])
    out += memory_table(memory)
    return "\n".join(out)


def render(meta: dict, scenarios: list, memory: list, startups: tuple[dict, int] | None) -> str:
    """``meta``: date, command, elapsed, machine facts, load averages, upstream, method settings."""
    rest, mcp26, mcp_legacy = scenarios
    out = [
        "# Benchmark results",
        "",
        "Generated by `bench/run.py`; `bench/README.md` says how to run it and what each number means.",
        "",
        "> **Indicative figures.** The machine is a virtual one whose speed drifts (by up to 1.5× within "
        + "minutes here) and may be shared with other work (see the load average and, per scenario, the share "
        + "of CPU used by other processes), so absolute numbers are noisy. Read the ratios: the servers of a "
        + "comparison run alternately, seconds apart, under the same conditions.",
        "",
        f"- Date: {meta['date']}",
        f"- Command: `{meta['command']}` (took {meta['elapsed']:.0f} s)",
        f"- Machine: {meta['cpu']}, {meta['cores']} cores (nproc {meta['nproc']}), {meta['kernel']}, "
        + f"Python {meta['python']}",
        f"- Load average (1/5/15 min) at start: {meta['load_start']}; at end (includes this benchmark's own "
        + f"load): {meta['load_end']}",
        f"- Versions: naftiko {meta['naftiko']} at `{meta['commit']}`, mcp {meta['mcp']}, fastmcp "
        + f"{meta['fastmcp']} (own venv), {meta['wrk']}",
        f"- Upstream: {meta['upstream']} on 127.0.0.1",
        f"- Method: wrk, 1 thread, {meta['duration']} s per run after a {meta['warmup']} s warm-up per server and "
        + f"scenario; {meta['rounds']} rounds per cell alternating the servers (A B A B … or A B C A B C …); "
        + "every figure is "
        + "the median of the rounds. Each server is one process on loopback.",
        "",
        "## Targets (issue 12)",
        "",
        *targets_table(rest, mcp26, mcp_legacy),
        "## Throughput and latency",
        "",
    ]
    for scenario in scenarios:
        out += scenario_table(scenario, meta["cores"])
    out += memory_table(memory)
    if startups:
        out += startup_table(*startups)
    return "\n".join(out)
