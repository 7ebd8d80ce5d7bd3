"""``naftiko health|status|metrics|traces``: ask a running naftiko's control port.

The port and address come from ``--port``/``--address``, else ``NAFTIKO_CONTROL_PORT`` /
``NAFTIKO_CONTROL_ADDRESS``, else 9191 on 127.0.0.1. A control port behind inbound auth takes
``--header 'Authorization: Bearer …'`` (repeatable). Exit codes: 0 healthy / answered,
1 degraded or an error answer (e.g. 404 for an endpoint switched off), 3 unreachable.
Standard library only: these commands run in probes and slim containers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_PORT = 9191
DEFAULT_ADDRESS = "127.0.0.1"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
COMMANDS = ("health", "status", "metrics", "traces")


class Unreachable(Exception):
    pass


# A control port is this host's or a pod's own: never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the four commands on the ``naftiko`` sub-command parser."""
    helps = {
        "health": "readiness of a running naftiko (exit 1 when degraded)",
        "status": "capability, versions, uptime and adapters of a running naftiko",
        "metrics": "Prometheus metrics of a running naftiko",
        "traces": "recent traces of a running naftiko, or one trace in detail",
    }
    for name in COMMANDS:
        cmd = sub.add_parser(name, help=helps[name])
        cmd.add_argument(
            "--port", type=int, metavar="PORT", help=f"control port (default $NAFTIKO_CONTROL_PORT or {DEFAULT_PORT})"
        )
        cmd.add_argument(
            "--address", metavar="HOST", help=f"control address (default $NAFTIKO_CONTROL_ADDRESS or {DEFAULT_ADDRESS})"
        )
        cmd.add_argument(
            "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
            help="request header, e.g. for an authenticated control port",
        )
        cmd.add_argument(
            "--timeout", type=float, default=5.0, metavar="SECONDS", help="give up after this long (default 5)"
        )
        if name != "metrics":
            cmd.add_argument("--json", action="store_true", help="print the JSON answer as it came")
        if name == "health":
            cmd.add_argument("--live", action="store_true", help="liveness only (/health/live) instead of readiness")
        if name == "traces":
            cmd.add_argument("trace_id", nargs="?", metavar="TRACE_ID", help="show this trace with all its spans")
            cmd.add_argument("--operation", metavar="NAME", help="only traces whose operation contains NAME")
            cmd.add_argument("--status", choices=["OK", "ERROR", "ok", "error"], help="only traces with this status")
            cmd.add_argument("--limit", type=int, metavar="N", help="at most N traces (newest first)")


def _base(args: argparse.Namespace) -> str:
    address = args.address or os.environ.get("NAFTIKO_CONTROL_ADDRESS") or DEFAULT_ADDRESS
    port: int | None = args.port
    if port is None:
        raw = os.environ.get("NAFTIKO_CONTROL_PORT", "")
        if raw and not raw.isdigit():
            raise ValueError(f"NAFTIKO_CONTROL_PORT must be a port number, got {raw!r}")
        port = int(raw) if raw else DEFAULT_PORT
    if not 0 < port < 65536:
        raise ValueError(f"port must be from 1 to 65535, got {port}")
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"http://{host}:{port}"


def _get(url: str, args: argparse.Namespace) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json, text/plain;q=0.9"})
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header expects 'NAME: VALUE', got {header!r}")
        request.add_header(name.strip(), value.strip())
    try:
        with _OPENER.open(request, timeout=args.timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach the control port at {url.split('/', 3)[2]}: {reason}") from None


def _problem(status: int, body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return f"HTTP {status}"
    if isinstance(data, dict) and data.get("detail"):
        return f"HTTP {status}: {data['detail']}"
    return f"HTTP {status}"


def _adapters(adapters: list[dict[str, Any]]) -> list[str]:
    rows: list[str] = []
    for a in adapters:
        where = f"port {a['port']}" if a.get("port") else a.get("transport", "-")
        rows.append(f"  {a['type']:<8} {a['namespace']:<32} {where:<11} {a['state']}")
    return rows


def _ms(value: object) -> str:
    return f"{value:.1f} ms" if isinstance(value, (int, float)) else "-"


def _health(args: argparse.Namespace, base: str) -> int:
    path = "/health/live" if args.live else "/health/ready"
    status, _, body = _get(base + path, args)
    if status not in (200, 503):
        print(f"naftiko: {path}: {_problem(status, body)}", file=sys.stderr)
        return EXIT_FAILED
    data = json.loads(body)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"{data.get('status')}  {base}")
        print("\n".join(_adapters(data.get("adapters", []))))
    return EXIT_OK if status == 200 and data.get("status") == "UP" else EXIT_FAILED


def _status(args: argparse.Namespace, base: str) -> int:
    status, _, body = _get(base + "/status", args)
    if status == 404:
        print(
            "naftiko: this control port does not serve /status (set management.info: true on the control adapter)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if status != 200:
        print(f"naftiko: /status: {_problem(status, body)}", file=sys.stderr)
        return EXIT_FAILED
    data = json.loads(body)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    cap, engine, obs = data.get("capability", {}), data.get("engine", {}), data.get("observability", {})
    print(f"capability     {cap.get('label') or '-'} (naftiko {cap.get('specVersion') or '?'})")
    print(f"engine         {engine.get('name')} {engine.get('version')} (python {engine.get('python')})")
    print(f"uptime         {data.get('uptime')} (since {data.get('startedAt')})")
    print(f"status         {data.get('status')}")
    exporter = obs.get("exporter")
    print(
        f"observability  metrics {'on' if obs.get('metrics') else 'off'}, "
        f"traces {'on' if obs.get('traces') else 'off'}, "
        f"sampling {obs.get('sampling')}, propagation {obs.get('propagation')}"
        + (f", exporting to {exporter['endpoint']}" if exporter else "")
    )
    print("adapters")
    print("\n".join(_adapters(data.get("adapters", []))))
    return EXIT_OK


def _metrics(args: argparse.Namespace, base: str) -> int:
    status, _, body = _get(base + "/metrics", args)
    if status != 200:
        print(f"naftiko: /metrics: {_problem(status, body)}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.write(body.decode("utf-8", "replace"))
    return EXIT_OK


def _traces(args: argparse.Namespace, base: str) -> int:
    if args.trace_id:
        url = f"{base}/traces/{quote(args.trace_id, safe='')}"
    else:
        wanted = (("operation", args.operation), ("status", args.status), ("limit", args.limit))
        query = {k: v for k, v in wanted if v is not None}
        url = f"{base}/traces" + (f"?{urlencode(query)}" if query else "")
    status, _, body = _get(url, args)
    if status != 200:
        print(f"naftiko: {url[len(base):]}: {_problem(status, body)}", file=sys.stderr)
        return EXIT_FAILED
    data = json.loads(body)
    if args.json:
        print(json.dumps(data, indent=2))
    elif args.trace_id:
        _print_trace(data)
    else:
        print(f"{'TRACE ID':<32}  {'OPERATION':<28} {'STATUS':<6} {'DURATION':>10} {'SPANS':>5}  TIME")
        for t in data.get("traces", []):
            print(
                f"{t['traceId']:<32}  {t['operation']:<28} {t['status']:<6} {_ms(t['durationMs']):>10} "
                f"{t['spanCount']:>5}  {t['timestamp']}"
            )
        print(f"({data.get('bufferUsed')} of {data.get('bufferSize')} kept)")
    return EXIT_OK


def _print_trace(data: dict[str, Any]) -> None:
    print(f"trace {data['traceId']}  {data['operation']}  {data['status']}  {_ms(data['durationMs'])}")
    spans = data.get("spans", [])
    ids = {s["spanId"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s.get("parentSpanId")
        children.setdefault(parent if parent in ids else None, []).append(s)

    def show(span: dict[str, Any], depth: int) -> None:
        print(f"{'  ' * depth}- {span['kind']:<8} {span['name']}  {span['status']}  {_ms(span['durationMs'])}")
        for child in children.get(span["spanId"], []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 1)


def run(args: argparse.Namespace) -> int:
    try:
        base = _base(args)
        return {"health": _health, "status": _status, "metrics": _metrics, "traces": _traces}[args.command](args, base)
    except json.JSONDecodeError:
        print(
            "naftiko: the control port answered something that is not JSON (is it a naftiko control port?)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except ValueError as exc:
        print(f"naftiko: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Unreachable as exc:
        print(f"naftiko: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
