"""The ``naftiko export openapi`` and ``naftiko import openapi`` commands.

Kept here so :mod:`naftiko.cli` only parses flags. Problems print one clear line on stderr
and exit 2 (as a broken capability does for ``serve``); warnings go to stderr too, so stdout
carries only the document.
"""

from __future__ import annotations

import sys
from pathlib import Path

EXIT_FAILED = 2


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def export_command(file: str, output: str | None, adapter: str | None) -> int:
    from ..errors import LoadError
    from ..loader import load
    from .export import ExportError, export_openapi, render

    try:
        document = export_openapi(load(file), adapter)
    except LoadError as exc:
        for d in exc.diagnostics:
            print(d, file=sys.stderr)
        print(f"{file}: invalid ({len(exc.diagnostics)} error(s)); nothing exported", file=sys.stderr)
        return EXIT_FAILED
    except ExportError as exc:
        print(f"naftiko: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        _write(render(document, output), output)
    except OSError as exc:
        print(f"naftiko: error: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    if output:
        print(f"{output}: OpenAPI {document['openapi']} with {len(document['paths'])} paths", file=sys.stderr)
    return 0


def import_command(spec: str, output: str | None) -> int:
    from .importer import ImportFailed, import_openapi, read_spec, to_yaml

    try:
        imported = import_openapi(read_spec(spec), spec)
    except ImportFailed as exc:
        print(f"naftiko: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for warning in imported.warnings:
        print(f"{spec}: warning: {warning}", file=sys.stderr)
    try:
        _write(to_yaml(imported, spec), output)
    except OSError as exc:
        print(f"naftiko: error: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    where = output or "stdout"
    print(f"{where}: capability with {imported.operations} operations imported from {spec}", file=sys.stderr)
    return 0


def schema_command() -> int:
    """The bundled JSON Schema, byte for byte, for editors and other validators."""
    from importlib import resources

    text = resources.files("naftiko.spec").joinpath("naftiko-schema.json").read_text("utf-8")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
