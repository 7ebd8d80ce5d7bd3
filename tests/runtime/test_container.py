"""The Dockerfile and .dockerignore, checked without a Docker engine (none runs here).

Parsed instruction by instruction: a slim Python 3.11 base, a non-root numeric user, the
``naftiko-run`` entry point on 0.0.0.0, the adapter ports exposed, a health check on the
control port, nothing secret baked in, and every copied path present in the repository and
not excluded by .dockerignore (a build would otherwise fail, or silently ship less).
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

import pytest

from conftest import ROOT

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return out


def only(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def test_base_is_slim_python_311():
    (base,) = only("FROM")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base


def test_runs_as_a_non_root_numeric_user():
    users = only("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")
    assert user[0].isdigit() and int(user[0]) != 0, users[-1]
    assert len(user) == 1 or (user[1].isdigit() and int(user[1]) != 0)
    # the user is created with that uid before it is used
    runs = " ".join(only("RUN"))
    assert f"--uid {user[0]}" in runs


def test_entry_point_is_naftiko_run_on_all_interfaces():
    (entry,) = only("ENTRYPOINT")
    argv = json.loads(entry)  # exec form: signals reach naftiko, not a shell
    assert argv[0] == "naftiko-run"
    assert argv[argv.index("--address") + 1] == "0.0.0.0"
    (cmd,) = only("CMD")
    default = json.loads(cmd)
    assert default[0].startswith("/app/capabilities/")
    assert (ROOT / "capabilities" / default[0].removeprefix("/app/capabilities/")).is_file()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["naftiko-run"] == "naftiko.cli:run_main"


def test_ports_and_health_check():
    exposed = {int(p) for args in only("EXPOSE") for p in args.split()}
    assert exposed >= {8080, 9090, 9191}
    (check,) = only("HEALTHCHECK")
    assert "CMD" in check
    env = " ".join(only("ENV"))
    assert "NAFTIKO_HEALTH_URL=http://127.0.0.1:9191/health/live" in env
    assert "NAFTIKO_HEALTH_URL" in check


def test_nothing_secret_is_baked_in():
    for keyword in ("ENV", "ARG", "LABEL"):
        for args in only(keyword):
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args):
                assert not SECRET_NAME.search(name), f"{keyword} {name}: secrets come from the environment at run time"
    for args in only("COPY") + only("ADD"):
        assert ".env" not in args and "secret" not in args.lower()


def _ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rules, conservatively: a pattern matches the path or one of its parent
    directories; a leading ``**/`` matches at any depth (fnmatch's ``*`` also crosses ``/``,
    so this finds at least every exclusion Docker would make)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatch(part, tail) for part in parts) or any(fnmatch.fnmatch(p, "*/" + tail) or fnmatch.fnmatch(p, tail) for p in prefixes):
                return True
        elif any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            return True
    return False


def _local_artifact(path) -> bool:
    """Made by a local editable install or run, not part of the sources (and git-ignored)."""
    return any(part == "__pycache__" or part.endswith(".egg-info") for part in path.parts)


def test_every_copied_file_exists_and_is_in_the_build_context():
    patterns = _ignore_patterns()
    copied = []
    for args in only("COPY"):
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not _local_artifact(p)]
            for file in files:
                rel = file.relative_to(ROOT).as_posix()
                assert not _ignored(rel, patterns), f"{rel} is copied but excluded by .dockerignore"
                copied.append(rel)
    assert "src/naftiko/cli.py" in copied and "src/naftiko/document/naftiko-schema.json" in copied
    # what pyproject.toml needs to build the package is copied next to it
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["readme"] in copied and "pyproject.toml" in copied


@pytest.mark.parametrize("path", [".env", "config/prod.env", ".venv/bin/python", ".git/HEAD", "tests/conftest.py", "keys/server.pem", "src/naftiko.egg-info/PKG-INFO"])
def test_dockerignore_keeps_local_state_and_secrets_out(path):
    assert _ignored(path, _ignore_patterns())
