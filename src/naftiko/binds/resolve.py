"""Resolving ``binds``: the variables a capability takes from outside (reference §2).

A bind's provider is a ``file:///`` JSON/YAML object when it has a ``location``, else the
process environment, then any ``--env-file``. A variable that no provider has fails start-up
with a message that says how to provide it — except under ``--dry-run``, where it becomes a
visible placeholder so the capability can be explored without credentials.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from naftiko.document.model import Binding
from naftiko.document.source import Source
from naftiko.errors import Diagnostic, LoadError

Binds = dict[str, dict[str, str]]  # bind namespace → VAR → value


def resolve_location(location: str, base_dir: Path) -> Path:
    """``file:///abs/x.json`` or ``file:///./x.json`` (relative to the capability file first)."""
    parts = urlsplit(location)
    raw = unquote(parts.netloc + parts.path) if parts.netloc else unquote(parts.path)
    if raw.startswith("/./") or raw.startswith("/../"):
        rel = raw[1:]
        candidate = (base_dir / rel).resolve()
        return candidate if candidate.exists() else (Path.cwd() / rel).resolve()
    return Path(raw)


def _read_provider(location: str, base_dir: Path) -> dict[str, object]:
    path = resolve_location(location, base_dir)
    text = path.read_text("utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("the file does not hold a JSON/YAML object")
    return data


def _reason(exc: Exception) -> str:
    """Why a bind file cannot be read, without quoting it: a YAML error's text shows the
    offending line, which is a secret."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.YAMLError) and mark is not None:
        return f"{getattr(exc, 'problem', None) or 'invalid YAML'} at line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(exc, yaml.YAMLError):
        return "invalid YAML"
    return str(exc)


def read_env_file(path: str) -> dict[str, str]:
    from dotenv import dotenv_values

    if not os.path.exists(path):
        raise LoadError([Diagnostic(path, 1, 1, "env file not found")])
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def resolve_binds(
    bindings: Sequence[tuple[Binding, tuple[str | int, ...]]],
    source: Source,
    *,
    environ: dict[str, str] | None = None,
    env_file: dict[str, str] | None = None,
    dry_run: bool = False,
) -> Binds:
    """``bindings`` pairs each bind with its path in the document (for error positions)."""
    environ = dict(os.environ) if environ is None else environ
    env_file = env_file or {}
    base_dir = Path(source.file).resolve().parent
    result: Binds = {}
    errors: list[Diagnostic] = []
    for bind, path in bindings:
        provider: dict[str, object]
        where: str
        if bind.location:
            if not bind.location.startswith("file://"):
                why = f"bind '{bind.namespace}': only file:/// locations are supported, got {bind.location!r}"
                errors.append(source.diagnostic((*path, "location"), why))
                continue
            try:
                provider = _read_provider(bind.location, base_dir)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                if dry_run:
                    provider = {}
                else:
                    why = f"bind '{bind.namespace}': cannot read {bind.location}: {_reason(exc)}"
                    errors.append(source.diagnostic((*path, "location"), why))
                    continue
            where = bind.location
        else:
            provider = {**env_file, **environ}
            where = "the environment"
        values = result.setdefault(bind.namespace, {})
        for var, key in bind.keys.items():
            value = provider.get(key)
            if value is None:
                if dry_run:
                    values[var] = f"<{var}>"
                    continue
                how = (
                    f"add '{key}' to {bind.location}"
                    if bind.location
                    else f"export {key}=... or pass --env-file FILE (or use --dry-run)"
                )
                errors.append(
                    source.diagnostic(
                        (*path, "keys", var),
                        f"bind '{bind.namespace}': variable {var} is not set ({key} not found in {where}); {how}",
                    )
                )
                continue
            values[var] = value if isinstance(value, str) else json.dumps(value)
    if errors:
        raise LoadError(errors)
    return result
