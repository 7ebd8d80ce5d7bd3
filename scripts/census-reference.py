"""Validate every capability file of a git repository at the given refs, in process.

Usage: python scripts/census-reference.py GIT_DIR REF [REF...] [--out DIR]

Used to measure how many published capability and fixture files of the reference engine's
repositories (naftiko/ikanos, naftiko/framework) naftiko accepts at each version tag; the figures
are in docs/reference.md ("Versions"). A file is counted when its root declares `naftiko:` or
`ikanos:`. For each rejected file the first error line is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

from naftiko.cli import main

_VERSION_KEY = re.compile(r"^(naftiko|ikanos):", re.MULTILINE)


def census(git_dir: str, ref: str, out: Path) -> tuple[int, list[tuple[Path, str]]]:
    dest = out / ref
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", git_dir, "archive", ref], capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(dest, filter="data")
    files = sorted(
        f for f in dest.rglob("*")
        if f.suffix in (".yml", ".yaml") and ".github" not in f.parts and _VERSION_KEY.search(f.read_text(errors="replace"))
    )
    rejected: list[tuple[Path, str]] = []
    for file in files:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", str(file)])
        if code != 0:
            first = next((line for line in err.getvalue().splitlines() if ": note:" not in line and "warning:" not in line), "")
            rejected.append((file.relative_to(dest), first.replace(str(dest) + "/", "")))
    return len(files), rejected


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("git_dir")
    parser.add_argument("refs", nargs="+")
    parser.add_argument("--out", type=Path, default=None, help="where to extract the trees (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for ref in args.refs:
            total, rejected = census(args.git_dir, ref, out)
            print(f"{ref}: {total} files, valid {total - len(rejected)}, invalid {len(rejected)}", flush=True)
            for file, line in rejected:
                print(f"   {file}: {line[:200]}", flush=True)


if __name__ == "__main__":
    run()
