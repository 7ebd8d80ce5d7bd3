"""``naftiko migrate --to VERSION FILE`` and ``naftiko schema --version V``.

Migration reads the file like the loader does (any published version, into the internal model)
and writes it in the target version's syntax. What could not be carried over exactly is said on
stderr with the author's positions: keys invented for items without a name, fields the target
version does not have. PyYAML does not read comments, so they are not carried over; the command
says so when the file has any (docs/reference.md, "Versions").
"""

from __future__ import annotations

import re
import sys

import yaml

from naftiko.document import JSONValue, versions
from naftiko.document import schema as spec_schema
from naftiko.document.source import read_source
from naftiko.errors import LoadError

EXIT_LOAD_ERROR = 2
_COMMENT = re.compile(r"(^|\s)#", re.MULTILINE)


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so templates and bodies stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and all(c.isprintable() or c == "\n" for c in value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: dict[str, JSONValue]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)


def migrate_command(file: str, target: str, output: str | None) -> int:
    if target not in versions.VERSIONS or target in ("0.4", "0.5", "1.0.0-alpha1"):
        known = ", ".join([versions.INTERNAL, *versions.MAP_ERA])
        print(f"naftiko: error: cannot write version {target!r}; migrate writes {known}", file=sys.stderr)
        return EXIT_LOAD_ERROR
    try:
        source = read_source(file)
    except LoadError as exc:
        for d in exc.diagnostics:
            print(d, file=sys.stderr)
        return EXIT_LOAD_ERROR
    if not isinstance(source.data, dict):
        print(source.diagnostic((), "a capability file must be a YAML mapping"), file=sys.stderr)
        return EXIT_LOAD_ERROR
    normalised = versions.normalise(source)
    result = versions.migrate(normalised, target)
    for d in [*result.invented, *result.dropped]:
        print(d, file=sys.stderr)
    text = dump(result.data)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    with open(file, encoding="utf-8") as fh:
        if _COMMENT.search(fh.read()):
            print(f"{file}: note: comments are not carried over (the YAML reader does not keep them)", file=sys.stderr)
    was = f"{normalised.key}: {normalised.version}" if normalised.key else "no version"
    print(
        f"{file}: {was} → {'naftiko' if target in versions.LIST_ERA else 'ikanos'}: {target}"
        f" ({len(result.invented)} invented key(s), {len(result.dropped)} dropped field(s))",
        file=sys.stderr,
    )
    return 0


def schema_command(version: str) -> int:
    try:
        text = spec_schema.schema_text(version)
    except KeyError:
        print(f"naftiko: error: unknown version {version!r} (known: {', '.join(versions.VERSIONS)})", file=sys.stderr)
        return EXIT_LOAD_ERROR
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
