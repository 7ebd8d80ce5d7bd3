"""The ``naftiko export openapi`` and ``naftiko import openapi`` commands.

Kept here so :mod:`naftiko.cli` only parses flags. Problems print one clear line on stderr
and exit 2 (as a broken capability does for ``serve``); warnings go to stderr too, so stdout
carries only the document.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from naftiko.document import JSONObject
from naftiko.openapi.importer import ImportOptions

EXIT_FAILED = 2


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def export_command(file: str, output: str | None, adapter: str | None) -> int:
    from naftiko.document.loader import load
    from naftiko.errors import LoadError
    from naftiko.openapi.export import ExportError, export_openapi, render

    try:
        document = export_openapi(load(file), adapter)
    except LoadError as exc:
        for d in exc.diagnostics:
            print(d, file=sys.stderr)
        hint = openapi_hint(file)
        if hint:
            print(hint, file=sys.stderr)
        print(f"{file}: invalid ({len(exc.diagnostics)} error(s)); nothing exported", file=sys.stderr)
        return EXIT_FAILED
    except ExportError as exc:
        print(f"naftiko: error: {exc}", file=sys.stderr)
        hint = openapi_hint(file)
        if hint:
            print(hint, file=sys.stderr)
        return EXIT_FAILED
    try:
        _write(render(document, output), output)
    except OSError as exc:
        print(f"naftiko: error: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    if output:
        print(f"{output}: OpenAPI {document['openapi']} with {len(document['paths'])} paths", file=sys.stderr)
    return 0


def import_command(spec: str, output: str | None, options: ImportOptions | None = None) -> int:
    from naftiko.openapi.importer import ImportFailed, import_openapi, read_spec, to_yaml

    options = options or ImportOptions()
    if options.split_by_tag and not output:
        print("naftiko: error: --split-by-tag writes one file per tag: give a directory with -o DIR", file=sys.stderr)
        return EXIT_FAILED
    started = time.perf_counter()
    try:
        imported = import_openapi(read_spec(spec), spec, options)
    except ImportFailed as exc:
        print(f"naftiko: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for warning in imported.warnings:
        print(f"{spec}: warning: {warning}", file=sys.stderr)
    written: list[tuple[str, JSONObject]] = []
    try:
        if options.split_by_tag:
            assert output is not None
            folder = Path(output)
            folder.mkdir(parents=True, exist_ok=True)
            for stem, capability in imported.parts.items():
                target = folder / f"{stem}.yaml"
                target.write_text(to_yaml(capability, spec), encoding="utf-8")
                written.append((str(target), capability))
        else:
            _write(to_yaml(imported.capability, spec), output)
            written.append((output or "stdout", imported.capability))
    except OSError as exc:
        print(f"naftiko: error: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    elapsed = time.perf_counter() - started
    for where, capability in written:
        tools = sum(len(e.get("tools", [])) for e in capability["capability"]["exposes"])
        print(f"{where}: capability with {tools} tools imported from {spec}", file=sys.stderr)
    skipped = sum(imported.skipped.values())
    reasons = "".join(f"\n  {n} {why}" for why, n in imported.skipped.most_common())
    print(
        f"{spec}: imported {imported.operations} operations, skipped {skipped}{':' if skipped else ''}{reasons}\n"
        f"{spec}: {len(imported.warnings)} warning(s); {elapsed:.2f} s",
        file=sys.stderr,
    )
    return 0


def openapi_hint(file: str) -> str | None:
    """``FILE: this is an OpenAPI document …`` when a capability command is given one by mistake."""
    from naftiko.openapi.importer import is_openapi

    try:
        with open(file, encoding="utf-8") as handle:
            head = handle.read(64 * 1024)
    except (OSError, UnicodeDecodeError):
        return None
    if not re.search(r'(^|[{,])\s*"?(openapi|swagger)"?\s*:', head, re.MULTILINE):
        return None  # cheap check first: most broken capabilities are not OpenAPI documents
    from naftiko.openapi.importer import ImportFailed, read_spec

    try:
        data = read_spec(file)
    except (ImportFailed, RecursionError):  # a broken document: the loader's own diagnostics say why
        return None
    if not is_openapi(data):
        return None
    return (
        f"{file}: this is an OpenAPI document, not a capability; "
        f"create one with: naftiko import openapi {file} -o capability.yaml"
    )


def schema_command() -> int:
    """The bundled JSON Schema, byte for byte, for editors and other validators."""
    from importlib import resources

    text = resources.files("naftiko.document").joinpath("naftiko-schema.json").read_text("utf-8")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
