"""Command line: ``naftiko-run FILE…`` (= ``naftiko serve FILE…``) and ``naftiko validate FILE…``.

Thin on purpose: parse flags, load and compile, hand the plans to :mod:`naftiko.runtime.serve`.
A broken capability file prints ``file:line:col: message`` lines and exits 2, never a
traceback (reference §1, §10).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeVar

from naftiko import __version__
from naftiko.document.loader import load
from naftiko.engine.plan import Options, Plan, compile_plan, unknown_overrides
from naftiko.errors import Diagnostic, LoadError
from naftiko.exposes.control import client as control_client
from naftiko.exposes.http.limits import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEAD_BYTES,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_URL_BYTES,
    InboundLimits,
)

EXIT_LOAD_ERROR = 2
_V = TypeVar("_V")
MAX_WARNINGS_ON_SERVE = 3


def _pairs(values: list[str], flag: str, cast: Callable[[str], _V]) -> dict[str, _V]:
    out: dict[str, _V] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SystemExit(_usage_error(f"{flag} expects NAMESPACE=VALUE, got {item!r}"))
        try:
            out[name] = cast(value)
        except ValueError:
            raise SystemExit(_usage_error(f"{flag} {item!r}: {value!r} is not a valid value")) from None
    return out


def _usage_error(message: str) -> int:
    print(f"naftiko: error: {message}", file=sys.stderr)
    return EXIT_LOAD_ERROR


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(value)
    return port


def _serve_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="capability file(s) to serve")
    parser.add_argument("--base-uri", action="append", default=[], metavar="NS=URL", help="override a consumes baseUri")
    parser.add_argument(
        "--port", action="append", default=[], metavar="NS=PORT", help="override an adapter port (0 = any free port)"
    )
    parser.add_argument("--address", metavar="HOST", help="bind address for every adapter (default 127.0.0.1)")
    parser.add_argument("--env-file", metavar="PATH", help="dotenv file providing bind variables")
    parser.add_argument(
        "--dry-run", action="store_true", help="answer every upstream call with the request that would be sent"
    )
    parser.add_argument("--strict", action="store_true", help="treat every deviation from the schema as an error")
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="upstream request timeout (default 30)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="largest request body accepted, else 413 (default 4 MiB)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM, time in-flight requests get to finish (default 10)",
    )
    limits = parser.add_argument_group(
        "inbound limits (per connection; beyond them a 4xx/503 problem and the connection is closed)"
    )
    limits.add_argument(
        "--max-header-bytes",
        type=int,
        default=DEFAULT_MAX_HEAD_BYTES,
        metavar="N",
        help="largest request line plus headers, else 431 (default 32 KiB)",
    )
    limits.add_argument(
        "--max-headers",
        type=int,
        default=DEFAULT_MAX_HEADERS,
        metavar="N",
        help="most header lines in a request, else 431 (default 100)",
    )
    limits.add_argument(
        "--max-url-bytes",
        type=int,
        default=DEFAULT_MAX_URL_BYTES,
        metavar="N",
        help="longest request URL, else 414 (default 8 KiB)",
    )
    limits.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEAD_TIMEOUT,
        metavar="SECONDS",
        help="time to send the request line and headers, else 408 (default 10)",
    )
    limits.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="SECONDS",
        help="time to send the whole body after the headers, else 408 (default 60)",
    )
    limits.add_argument(
        "--keepalive-timeout",
        type=float,
        default=DEFAULT_KEEPALIVE_TIMEOUT,
        metavar="SECONDS",
        help="idle time before a kept-alive connection is closed (default 5)",
    )
    limits.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections across REST/MCP/skill adapters, else 503 "
        "(default 1000, at most half the open-file limit)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST",
        help="Host header MCP adapters accept besides loopback (repeatable; '*' = any)",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="browser Origin MCP adapters accept (repeatable)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level (default info)"
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="log lines as text (default) or one JSON object each",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="serve a new version when a capability file (or a file it references) changes",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N processes sharing the ports (Linux, SO_REUSEPORT; default 1)",
    )


def _openapi_hint(file: str) -> None:
    """An OpenAPI document given where a capability belongs: say how to import it."""
    from naftiko.openapi.commands import openapi_hint

    hint = openapi_hint(file)
    if hint:
        print(hint, file=sys.stderr)


def _print_diagnostics(diagnostics: list[Diagnostic], limit: int | None = None, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    shown = diagnostics if limit is None else diagnostics[:limit]
    for d in shown:
        print(d, file=stream)
    if limit is not None and len(diagnostics) > limit:
        print(f"… {len(diagnostics) - limit} more warnings (run 'naftiko validate FILE' to see them all)", file=stream)


def serve_options(args: argparse.Namespace) -> Options:
    """The compile options ``naftiko serve`` builds from its flags (shared with the in-process
    test harness, so tests compile exactly what the command would)."""
    options = Options(
        dry_run=args.dry_run,
        strict=args.strict,
        timeout=args.timeout,
        base_uris=_pairs(args.base_uri, "--base-uri", str),
        ports=_pairs(args.port, "--port", _port),
        address=args.address,
        env_file=args.env_file,
        max_body_bytes=args.max_body_bytes,
        allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allowed_origin),
        grace=args.grace,
        inbound=InboundLimits(
            max_head_bytes=args.max_header_bytes,
            max_url_bytes=args.max_url_bytes,
            max_headers=args.max_headers,
            head_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            keepalive_timeout=args.keepalive_timeout,
            max_connections=args.max_connections,
        ),
    )
    options.several_files = len(args.files) > 1
    return options


def compile_files(files: list[str], options: Options, *, strict: bool) -> list[Plan]:
    """Load and compile every file with the same options; raises :class:`LoadError`."""
    return [compile_plan(load(file, strict=strict), options) for file in files]


def serve_parser(prog: str = "naftiko-run") -> argparse.ArgumentParser:
    """The parser of ``naftiko-run`` / ``naftiko serve`` flags."""
    parser = argparse.ArgumentParser(prog=prog, description="Serve Naftiko capability files over REST and MCP.")
    parser.add_argument("--version", action="version", version=f"naftiko {__version__}")
    _serve_parser(parser)
    return parser


def _flag_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the serve flags taken together, checked before any file is read."""
    if args.timeout <= 0:
        return "--timeout must be positive"
    if args.max_body_bytes <= 0 or args.grace < 0:
        return "--max-body-bytes must be positive and --grace not negative"
    numbers = (
        args.max_header_bytes,
        args.max_headers,
        args.max_url_bytes,
        args.header_timeout,
        args.body_timeout,
        args.keepalive_timeout,
        args.max_connections,
    )
    if min(numbers) <= 0:
        return (
            "--max-header-bytes, --max-headers, --max-url-bytes, --header-timeout, --body-timeout, "
            "--keepalive-timeout and --max-connections must be positive"
        )
    if args.workers < 1:
        return "--workers must be at least 1"
    if args.workers > 1 and args.reload:
        return "--reload runs one process: use it without --workers (it is meant for development)"
    return None


def _overrides_problem(plans: list[Plan], options: Options) -> str | None:
    """With several files, ``--base-uri``/``--port`` entries that name no namespace of any of them."""
    if not options.several_files:
        return None
    consumes = {ns for p in plans for ns in p.consumers}
    exposes = {a.namespace for p in plans for a in p.adapters}
    problems = unknown_overrides(options, consumes, exposes)
    return "; ".join(problems) if problems else None


def _serve(args: argparse.Namespace) -> int:
    from naftiko.observability.logs import configure_logging

    configure_logging(args.log_level, args.log_format)
    if args.log_level != "debug":  # the SDK's lifecycle chatter is not news to an operator
        logging.getLogger("mcp").setLevel(logging.WARNING)
    if (problem := _flag_problem(args)) is not None:
        return _usage_error(problem)
    options = serve_options(args)
    try:
        plans = compile_files(args.files, options, strict=args.strict)
    except LoadError as exc:
        _print_diagnostics(exc.diagnostics)
        for file in args.files:
            _openapi_hint(file)
        return EXIT_LOAD_ERROR
    if (problem := _overrides_problem(plans, options)) is not None:
        return _usage_error(problem)
    for plan in plans:
        _print_diagnostics([w for w in plan.warnings], MAX_WARNINGS_ON_SERVE)
        _print_diagnostics(plan.left_out)
    stdio = any(a.kind == "mcp" and a.transport == "stdio" for p in plans for a in p.adapters)
    if stdio and (args.workers > 1 or args.reload):
        flag = "--workers" if args.workers > 1 else "--reload"
        return _usage_error(f"{flag} does not apply to an MCP adapter on transport stdio (one client, one process)")
    out = sys.stderr if stdio else sys.stdout  # stdout belongs to the protocol under stdio
    if args.dry_run:
        print("dry run: upstream calls are described, not sent", file=out, flush=True)
    for plan in plans:
        if plan.left_out:  # tolerant mode: what could not compile is not served (docs/reference.md, "Loading")
            print(
                f"{plan.file}: left out {len(plan.left_out)} unit(s) with errors (above); serving the rest",
                file=out,
                flush=True,
            )
    return _start(args, plans, options, out)


def _start(args: argparse.Namespace, plans: list[Plan], options: Options, out: TextIO) -> int:
    """Serve the compiled plans (one process, several workers, or with hot reload) until stopped."""
    from naftiko.runtime.serve import StartupError, serve  # the server stack is only needed to serve

    def announce(line: str) -> None:
        print(line, file=out, flush=True)

    server_log_level = "warning" if args.log_level != "debug" else "debug"
    try:
        if args.workers > 1:
            from naftiko.runtime.workers import check_supported, serve_workers

            if (reason := check_supported()) is not None:
                return _usage_error(reason)
            return serve_workers(plans, args.workers, announce=announce, log_level=server_log_level, run=_run)
        reloader = None
        if args.reload:
            from naftiko.runtime.reload import Reloader

            reloader = Reloader(args.files, plans, options, strict=args.strict)
        _run(serve(plans, announce=announce, log_level=server_log_level, reloader=reloader))
    except StartupError as exc:
        print(f"naftiko: error: {exc}", file=sys.stderr)
        return EXIT_LOAD_ERROR
    except KeyboardInterrupt:
        pass
    return 0


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(coro)


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for file in args.files:
        try:
            loaded = load(file, strict=args.strict)
            doc = loaded.document
            if doc.capability is None and not doc.consumes and (doc.exposes or doc.aggregates or doc.binds):
                _print_diagnostics(loaded.warnings)  # a standalone section document, read by the files importing it
                sections = [
                    (name, entries)
                    for name, entries in (
                        ("exposes", doc.exposes),
                        ("aggregates", doc.aggregates),
                        ("binds", doc.binds),
                    )
                    if entries
                ]
                found = "; ".join(f"{name} " + ", ".join(e.namespace for e in entries) for name, entries in sections)
                print(f"{file}: valid with {len(loaded.warnings)} warning(s): standalone section document: {found}")
                continue
            options = Options(dry_run=True, strict=args.strict, consumes_only_ok=True)
            plan = compile_plan(loaded, options, observe=False)  # checked, never served: no telemetry
        except LoadError as exc:
            _print_diagnostics(exc.diagnostics)
            errors = sum(1 for d in exc.diagnostics if d.severity == "error")
            print(f"{file}: invalid ({errors} error(s))", file=sys.stderr)
            _openapi_hint(file)
            status = 1
            continue
        _print_diagnostics(plan.warnings)
        counts = ", ".join(f"{a.kind} {a.namespace} ({a.size})" for a in plan.adapters) or (
            "shared consumes file: " + ", ".join(f"{ns} ({len(ops)} operations)" for ns, ops in plan.consumers.items())
        )
        if plan.left_out:  # served in tolerant mode, but not valid
            _print_diagnostics(plan.left_out)
            print(
                f"{file}: invalid ({len(plan.left_out)} error(s)); "
                f"naftiko-run would leave those units out and serve {counts}",
                file=sys.stderr,
            )
            status = 1
            continue
        print(f"{file}: valid with {len(plan.warnings)} warning(s): {counts}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="naftiko", description="Serve Naftiko capability files over REST and MCP.")
    parser.add_argument("--version", action="version", version=f"naftiko {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="serve capability files (same as naftiko-run)")
    _serve_parser(serve_cmd)
    validate_cmd = sub.add_parser("validate", help="check capability files and report warnings")
    validate_cmd.add_argument("files", nargs="+", metavar="FILE")
    validate_cmd.add_argument(
        "--strict", action="store_true", help="every deviation from the bundled schema is an error"
    )
    export_cmd = sub.add_parser("export", help="describe a capability in another format").add_subparsers(
        dest="format", required=True
    )
    export_openapi = export_cmd.add_parser("openapi", help="OpenAPI 3.1 document of a REST adapter")
    export_openapi.add_argument("file", metavar="FILE")
    export_openapi.add_argument(
        "-o", "--output", metavar="OUT", help="write to OUT (.json: JSON, else YAML); default stdout"
    )
    export_openapi.add_argument("--adapter", metavar="NS", help="REST adapter namespace (default: the first)")
    import_cmd = sub.add_parser("import", help="create a capability from another format").add_subparsers(
        dest="format", required=True
    )
    import_openapi = import_cmd.add_parser(
        "openapi", help="Swagger 2.0 / OpenAPI 3.x → capability (consumes, REST, MCP)"
    )
    import_openapi.add_argument("spec", metavar="SPEC")
    import_openapi.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="write the capability to OUT (a directory with --split-by-tag); default stdout",
    )
    import_openapi.add_argument(
        "--namespace",
        metavar="NS",
        help="consumes namespace (default: the kebab-cased title); adapters are NS-rest and NS-mcp",
    )
    import_openapi.add_argument(
        "--env-prefix",
        metavar="PREFIX",
        help="prefix of the credential variables, e.g. METRONOME → METRONOME_TOKEN (default: from the namespace)",
    )
    import_openapi.add_argument(
        "--include-tag", action="append", default=[], metavar="TAG", help="only operations with this tag (repeatable)"
    )
    import_openapi.add_argument(
        "--exclude-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="leave out operations with this tag (repeatable)",
    )
    import_openapi.add_argument(
        "--include-path",
        action="append",
        default=[],
        metavar="GLOB",
        help="only paths matching this pattern, e.g. '/v1/customers*' (repeatable)",
    )
    import_openapi.add_argument(
        "--exclude-path",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out paths matching this pattern (repeatable)",
    )
    import_openapi.add_argument(
        "--port",
        type=int,
        metavar="PORT",
        help="REST adapter port; the MCP adapter takes PORT+1 (default 8080 and 9090)",
    )
    import_openapi.add_argument(
        "--base-uri", metavar="URL", help="baseUri of the API (default: the document's first server)"
    )
    import_openapi.add_argument(
        "--split-by-tag",
        action="store_true",
        help="one capability file per tag (first tag of each operation) in the -o directory",
    )
    import_openapi.add_argument(
        "--output-schemas",
        action="store_true",
        help="tools return the 2xx response's documented fields and declare its schema "
        "(undocumented fields are dropped)",
    )
    schema_cmd = sub.add_parser("schema", help="print the JSON Schema of capability files (for editors)")
    schema_cmd.add_argument(
        "--version", dest="schema_version", metavar="V", help="the schema of version V (default 1.0.0-alpha2)"
    )
    migrate_cmd = sub.add_parser("migrate", help="rewrite a capability file in another version's syntax")
    migrate_cmd.add_argument("file", metavar="FILE")
    migrate_cmd.add_argument(
        "--to", required=True, metavar="VERSION", help="1.0.0-alpha2 or 1.0.0-alpha3 … 1.0.0-beta5"
    )
    migrate_cmd.add_argument("-o", "--output", metavar="OUT", help="write to OUT; default stdout")
    control_client.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command in control_client.COMMANDS:
        return control_client.run(args)
    if args.command == "migrate":
        from naftiko.document.migrate import migrate_command

        return migrate_command(args.file, args.to, args.output)
    if args.command == "schema" and args.schema_version:
        from naftiko.document.migrate import schema_command

        return schema_command(args.schema_version)
    if args.command in ("export", "import", "schema"):
        from naftiko.openapi import commands

        if args.command == "schema":
            return commands.schema_command()
        if args.command == "export":
            return commands.export_command(args.file, args.output, args.adapter)
        from naftiko.openapi.importer import ImportOptions

        options = ImportOptions(
            namespace=args.namespace,
            env_prefix=args.env_prefix,
            include_tags=tuple(args.include_tag),
            exclude_tags=tuple(args.exclude_tag),
            include_paths=tuple(args.include_path),
            exclude_paths=tuple(args.exclude_path),
            port=args.port,
            base_uri=args.base_uri,
            split_by_tag=args.split_by_tag,
            output_schemas=args.output_schemas,
        )
        return commands.import_command(args.spec, args.output, options)
    return _validate(args)


def run_main(argv: list[str] | None = None) -> int:
    return _serve(serve_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
