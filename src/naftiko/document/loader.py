"""Loading a capability file: YAML with positions → internal model → diagnostics.

A file of any published version (``naftiko: 0.5`` … ``ikanos: 1.0.0-beta5``) is first rewritten
into the internal alpha2-shaped model with its positions kept (:mod:`naftiko.document.versions`), then
checked against the schema of the version it declares. Errors stop the load (a
:class:`~naftiko.errors.LoadError` with one ``file:line:col`` line per problem, preceded by a note
naming the file's version when it is not the internal one); schema deviations are warnings unless
``strict`` (docs/reference.md, "Versions").
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from naftiko.binds.resolve import resolve_location
from naftiko.document import SPEC_VERSION, JSONValue, versions
from naftiko.document import schema as spec_schema
from naftiko.document.model import Document
from naftiko.document.source import Path as DataPath
from naftiko.document.source import Source, read_source
from naftiko.errors import Diagnostic, LoadError

_KIND_FIELDS = {"type"}


@dataclass
class Loaded:
    source: Source  # the internal (alpha2-shaped) document; positions point into the author's file
    document: Document
    warnings: list[Diagnostic] = field(default_factory=list)
    version: str | None = None  # the version the file declares ("1.0.0-beta5", "0.5", …)

    @property
    def file(self) -> str:
        return self.source.file


def _data_path(data: JSONValue, loc: Sequence[str | int]) -> DataPath:
    """Pydantic locations include union tags (``'rest'``, ``'http'``); keep only real keys."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and part == "in_" and "in" in node:
            node, path = node["in"], [*path, "in"]
        elif isinstance(node, dict) and isinstance(part, str) and part.rstrip("_") in node:
            node, path = node[part.rstrip("_")], [*path, part.rstrip("_")]
    return tuple(path)


def _message(err: ErrorDetails, path: DataPath) -> str:
    kind = err["type"]
    where = str(path[-1]) if path else "document"  # Diagnostic.__str__ escapes control characters
    if len(path) > 1 and isinstance(path[-1], int):  # 'outputParameters[0]', not '0'
        where = f"{path[-2]}[{path[-1]}]"
    ctx = err.get("ctx") or {}
    if kind == "union_tag_invalid":
        field = ctx.get("discriminator", "type").strip("'")
        return f"unknown {field} {ctx.get('tag')!r} (expected {ctx.get('expected_tags', '')})"
    if kind == "literal_error" and path and path[-1] in _KIND_FIELDS:
        return f"unknown type {err.get('input')!r} (expected {ctx.get('expected', '')})"
    if kind == "union_tag_not_found":
        return f"missing field '{ctx.get('discriminator', 'type').strip(chr(39))}'"
    if kind == "missing":
        return f"missing required field '{err['loc'][-1]}'"
    if kind == "literal_error":
        return f"'{where}' must be one of {ctx.get('expected')}, got {err.get('input')!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"'{where}' must be an integer, got {err.get('input')!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"'{where}' must be a boolean, got {err.get('input')!r}"
    if kind in ("string_type",):
        return f"'{where}' must be a string, got {type(err.get('input')).__name__}"
    if kind in ("list_type",):
        return f"'{where}' must be a list, got {type(err.get('input')).__name__}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"'{where}' must be a mapping, got {type(err.get('input')).__name__}"
    return f"'{where}': {err['msg']}"


def validate_model(source: Source, strict: bool = False) -> Document:
    if not isinstance(source.data, dict):
        raise LoadError([source.diagnostic((), "a capability file must be a YAML mapping")])
    try:
        return Document.model_validate(source.data)
    except ValidationError as exc:
        diagnostics: list[Diagnostic] = []
        seen: set[tuple[int, int, str]] = set()
        for err in exc.errors(include_url=False):
            path = _data_path(source.data, err["loc"])
            if err["type"] == "union_tag_invalid":  # point at the offending `type:` itself
                path = (*path, (err.get("ctx") or {}).get("discriminator", "type").strip("'"))
            message = _message(err, path)
            if strict:  # every --strict error names its JSON path, like the schema's
                message += " (at $" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) + ")"
            d = source.diagnostic(path, message)
            if (d.line, d.col, d.message) not in seen:
                seen.add((d.line, d.col, d.message))
                diagnostics.append(d)
        diagnostics.sort(key=lambda d: (d.line, d.col))
        raise LoadError(diagnostics) from None


def load(path: str, *, strict: bool = False) -> Loaded:
    source = read_source(path)
    return load_source(source, strict=strict)


def load_source(source: Source, *, strict: bool = False) -> Loaded:
    normalised = versions.normalise(source)
    problems = inline_imports(normalised.source) + _refused(normalised.source) + _empty_sections(normalised.source)
    if problems:
        raise LoadError(_with_banner(normalised, problems))
    try:
        document = validate_model(normalised.source, strict)
    except LoadError as exc:
        raise LoadError(_with_banner(normalised, exc.diagnostics)) from None
    severity = "error" if strict else "warning"
    problems = list(source.duplicates)
    problems.extend(_version_problems(normalised, severity, strict))
    problems.extend(normalised.notes)
    problems.extend(_schema_problems(normalised, severity))
    errors = [d for d in problems if d.severity == "error"]
    if errors:
        raise LoadError(_with_banner(normalised, errors))
    return Loaded(normalised.source, document, problems, normalised.version)


def _with_banner(n: versions.Normalised, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Name the file's version before structural messages, unless it is the internal one."""
    if (n.key == "naftiko" and n.version == SPEC_VERSION) or not isinstance(n.original.data, dict):
        return diagnostics
    return [n.original.diagnostic((n.key,) if n.key else (), n.banner(), "note"), *diagnostics]


def _version_problems(n: versions.Normalised, severity: str, strict: bool) -> list[Diagnostic]:
    at = " (at $." + (n.key or "ikanos") + ")" if strict else ""
    if n.key is None:
        expected = f"expected 'ikanos: {versions.LATEST}' or 'naftiko: {SPEC_VERSION}'"
        return [n.original.diagnostic((), f"missing version key: {expected}{at}", severity)]
    if not n.known:
        known = ", ".join(versions.VERSIONS)
        return [
            n.original.diagnostic(
                (n.key,), f"unknown version {n.version!r} (known: {known}); checked as {n.schema_version}{at}", severity
            )
        ]
    expected_key = "naftiko" if n.version in versions.LIST_ERA else "ikanos"
    if n.key != expected_key:
        return [
            n.original.diagnostic(
                (n.key,), f"version {n.version} is declared with '{expected_key}:', not '{n.key}:'{at}", severity
            )
        ]
    return []


def _schema_problems(n: versions.Normalised, severity: str) -> list[Diagnostic]:
    """Check the file against its own version's schema, in the syntax of that version: a file that
    mixes syntaxes is checked in the form its version key promises (positions kept either way)."""
    version = n.schema_version
    skip = frozenset({(n.key,)}) if n.key else frozenset()
    if n.era == "map":
        checked = n.original if not n.evidence.lists else versions.to_maps(n, version)[0]
        skip = skip | {("ikanos",)}
    else:
        checked = n.original if not n.evidence.maps else n.source
        version = SPEC_VERSION if checked is n.source and version in ("0.4", "0.5") else version
        skip = skip | {("naftiko",)}
    return spec_schema.check(checked, severity, version, skip)


# Imports of whole entries from other files (since 1.0.0-alpha3): ``{from, import, as}`` in
# ``binds``, ``exposes`` and ``aggregates`` (``consumes`` imports are resolved by the plan, where
# they have always been). The imported file is a leaf: a capability or a standalone document holding
# only that section; its entries are read in any version and inlined here, positioned at the import
# entry of this file, so every later diagnostic about them points at the line that imported them.
_IMPORTABLE = ("binds", "exposes", "aggregates")


def _is_import(entry: JSONValue) -> TypeGuard[dict[str, JSONValue]]:
    return isinstance(entry, dict) and "import" in entry and "from" in entry and "baseUri" not in entry


def _section(data: dict[str, JSONValue], section: str) -> list[JSONValue]:
    entries = data.get(section)
    cap = data.get("capability")
    inner = cap.get(section) if isinstance(cap, dict) else None
    return [*(entries if isinstance(entries, list) else []), *(inner if isinstance(inner, list) else [])]


def inline_imports(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    base = Path(source.file).resolve().parent
    problems: list[Diagnostic] = []
    cache: dict[Path, JSONValue] = {}
    places: list[tuple[tuple[str, ...], dict[str, JSONValue]]] = [(("binds",), data)]
    for section in ("exposes", "aggregates"):  # a standalone section document is a leaf
        entries = data.get(section)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if _is_import(entry):
                problems.append(
                    source.diagnostic(
                        (section, i), f"a standalone {section} document cannot import: imported files must be leaves"
                    )
                )
    capability = data.get("capability")
    if isinstance(capability, dict):
        places += [(("capability", section), capability) for section in _IMPORTABLE]
    for path, holder in places:
        entries = holder.get(path[-1])
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not _is_import(entry):
                continue
            found = _import_entry(source, (*path, i), entry, path[-1], base, cache, problems)
            if found is None:
                continue
            entries[i] = found
            for inner in _paths(found, (*path, i)):  # the inlined entry answers at the import line
                source.positions.setdefault(inner, source.locate((*path, i)))
    return problems


def _import_entry(
    source: Source,
    at: DataPath,
    entry: dict[str, JSONValue],
    section: str,
    base: Path,
    cache: dict[Path, JSONValue],
    problems: list[Diagnostic],
) -> dict[str, JSONValue] | None:
    raw = entry["from"]
    if not isinstance(raw, str) or not isinstance(entry["import"], str):
        problems.append(
            source.diagnostic(at, "an import needs 'from' (a file) and 'import' (a namespace), both strings")
        )
        return None
    file = resolve_location(raw, base) if "://" in raw else (base / raw).resolve()
    if file not in cache:
        if not file.is_file():
            problems.append(source.diagnostic((*at, "from"), f"imported file not found: {file}"))
            return None
        try:
            cache[file] = versions.normalise(read_source(str(file))).source.data
        except LoadError as exc:
            problems.extend(exc.diagnostics)
            return None
    leaf = cache[file]
    candidates = _section(leaf, section) if isinstance(leaf, dict) else []
    if any(_is_import(c) for c in candidates):
        problems.append(
            source.diagnostic((*at, "from"), f"{raw} imports entries itself: imported files must be leaves")
        )
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("namespace") == entry["import"]:
            copied = copy.deepcopy(candidate)
            if isinstance(entry.get("as"), str):
                copied["namespace"] = entry["as"]
            return copied
    names = ", ".join(str(c.get("namespace")) for c in candidates if isinstance(c, dict)) or "none"
    problems.append(
        source.diagnostic((*at, "import"), f"{raw} has no {section} namespace '{entry['import']}' (found: {names})")
    )
    return None


def _paths(value: JSONValue, path: DataPath) -> Iterator[DataPath]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _empty_sections(source: Source) -> list[Diagnostic]:
    """A standalone section document (no ``capability``) whose section is empty: importing from it
    fails in the reference engine (ImportResolver), and it has nothing to validate either."""
    data = source.data
    if not isinstance(data, dict) or "capability" in data:
        return []
    return [
        source.diagnostic(
            (section,), f"empty '{section}' section: a standalone {section} document holds at least one entry"
        )
        for section in ("consumes", *_IMPORTABLE)
        if data.get(section) == []
    ]


def _refused(source: Source) -> list[Diagnostic]:
    """Features of the language naftiko does not run, refused by name rather than ignored."""
    out = []
    for where in (("consumes",), ("capability", "consumes")):
        holder = source.data.get(where[0]) if isinstance(source.data, dict) else None
        entries = holder.get("consumes") if where[0] == "capability" and isinstance(holder, dict) else holder
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and "tunnel" in entry:
                out.append(
                    source.diagnostic(
                        (*where, i, "tunnel"),
                        f"consumes '{entry.get('namespace')}': a Ziti 'tunnel' is not supported: "
                        "naftiko has no Ziti client "
                        "(the OpenZiti Python SDK, PyPI 'openziti', is not bundled); reach the API over the network, "
                        "or through a Ziti tunneller running beside naftiko, and remove 'tunnel'",
                    )
                )
    return out
