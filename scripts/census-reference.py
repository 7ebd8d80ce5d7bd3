"""Validate every capability file of a git repository at the given refs, in process, and classify the rejected ones.

Usage: python scripts/census-reference.py GIT_DIR REF [REF...] [--out DIR] [--verbose]

Measures how many published capability and fixture files of the reference engine's repositories
(naftiko/ikanos, naftiko/framework) naftiko accepts at each version tag; the figures are in
docs/reference.md ("Versions", "Census"). A file is counted when it parses as a YAML mapping whose
root declares `naftiko:` or `ikanos:` and holds a capability section (`capability`, `consumes`,
`exposes`, `aggregates`, `binds`); other YAML is not counted. Each file is checked with
`naftiko validate`; a rejected file is put in one class:

  (a) broken  a deliberately broken fixture: the reference's own tests expect it to fail (the test is
              named); it must be reported with file:line:col, and the report says whether the defect
              the test looks for is among naftiko's errors.
  (b) wrong   a valid file naftiko rejects: a naftiko bug (every rejection no rule below explains).
  (c) refused a feature naftiko refuses by name (a Ziti tunnel, javascript scripts, ...).

A file listed under (a) that naftiko accepts is printed too ("ACCEPTED although broken").
Exit status 1 when a (b) file or an accepted (a) file was found, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from naftiko.cli import main

_SECTIONS = ("capability", "consumes", "exposes", "aggregates", "binds")
_POSITION = re.compile(r":(\d+):(\d+): (?!note:|warning:)")

_ENGINE = "modules/ikanos-engine/src/test/java/io/ikanos/engine/"
_SPEC = "modules/ikanos-spec/src/test/java/io/ikanos/spec/"
_RULESET = _SPEC + "IkanosPolychroRulesetTest.java"


@dataclass(frozen=True)
class Broken:
    """A deliberately broken fixture: path suffix, the reference test that expects it to fail, and
    a fragment of the naftiko error that names the same defect."""

    suffix: str
    test: str
    defect: str


# (a): every fixture the reference's tests expect to fail. Test paths are those at ikanos HEAD
# (before alpha3 and in naftiko/framework: src/test/java/io/naftiko/...; same test names).
BROKEN = (
    Broken(
        "aggregates/aggregate-invalid-ref.yaml",
        _ENGINE + "exposes/mcp/AggregateIntegrationTest.java unknownRefShouldFailFast",
        "no aggregate function of that name",
    ),
    Broken(
        "capabilities/capability-spurious-name.yml",
        _SPEC
        + "SchemaUnevaluatedPropertiesTest.java validateShouldRejectMappedOutputParameterWithSpuriousNameProperty",
        "'name'",
    ),
    Broken(
        "imports/invalid/empty-section.consumes.yml",
        _ENGINE + "imports/ImportResolverParameterizedTest.java emptySourceSectionShouldThrow (the test writes it)",
        "empty",
    ),
    Broken(
        "imports/aggregate-duplicate-function-name.yaml",
        _RULESET + " aggregateFunctionUniqueRuleShouldFireWhenTwoFunctionsShareAName",
        "duplicate aggregate function",
    ),
    Broken(
        "imports/aggregates-namespace-missing.yaml",
        _RULESET + " aggregatesNamespaceRequiredRuleShouldFireForStandaloneAggregateMissingNamespace",
        "'namespace'",
    ),
    Broken(
        "imports/capability-aggregates-namespace-missing.yaml",
        _RULESET + " aggregatesNamespaceRequiredRuleShouldFireForCapabilityAggregateMissingNamespace",
        "'namespace'",
    ),
    Broken(
        "imports/capability-exposes-namespace-missing.yaml",
        _RULESET + " exposesNamespaceRequiredRuleShouldFireForCapabilityExposeMissingNamespace",
        "'namespace'",
    ),
    Broken(
        "imports/exposes-namespace-missing.yaml",
        _RULESET + " exposesNamespaceRequiredRuleShouldFireForStandaloneExposeMissingNamespace",
        "'namespace'",
    ),
    Broken(
        "imports/import-duplicate-alias.yaml",
        _RULESET + " importUniqueAliasRuleShouldFireWhenTwoImportsShareEffectiveNamespace",
        "duplicate",
    ),
    Broken(
        "imports/import-from-self.yaml",
        _RULESET + " importFromNotSelfRuleShouldFireWhenImportFromIsBareDot",
        "imported consumes file not found",
    ),
    Broken(
        "imports/import-missing-fields.yaml",
        _RULESET + " importFromRequiredRuleShouldFire… / importImportRequiredRuleShouldFire…",
        "missing required field",
    ),
    Broken(
        "imports/standalone-with-imports.yaml",
        _RULESET + " standaloneNoImportsRuleShouldFireWhenStandaloneFileContainsImport",
        "cannot import",
    ),
    Broken(
        "rules/spectral-tunnel-identity-unbound.yaml",
        _RULESET + " tunnelIdentityMustBindRuleShouldFireWhenNamespaceIsUndeclared",
        "identity",
    ),
)

# (c): refused on purpose, recognised by naftiko's own message.
REFUSED = (
    ("a Ziti 'tunnel' is not supported", "tunnel: naftiko has no Ziti client"),
    ("unsupported script language", "a javascript script step: naftiko runs python scripts"),
    (
        "needs outputSchema",
        "protobuf without outputSchema: can never be decoded; the reference loads it and fails each call",
    ),
)


# (b) already understood but not fixed here: a fragment of naftiko's error → why (none today).
KNOWN_WRONG: tuple[tuple[str, str], ...] = ()


@dataclass
class Census:
    ref: str
    files: int = 0
    other_yaml: int = 0
    accepted: int = 0
    broken: list[tuple[str, str, str, bool]] = field(default_factory=list)  # file, first error, test, defect named
    wrong: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # file, first error, reason
    accepted_broken: list[tuple[str, str]] = field(default_factory=list)


def _capability(path: Path) -> bool | None:
    """True for a capability file, False for other YAML declaring a version, None for the rest."""
    text = path.read_text(errors="replace")
    if not re.search(r"^(naftiko|ikanos):", text, re.MULTILINE):
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return True  # a capability file that does not parse: naftiko must say so
    if not isinstance(data, dict) or not ({"naftiko", "ikanos"} & set(data)):
        return None
    return bool(set(_SECTIONS) & set(data))


def census(git_dir: str, ref: str, out: Path) -> Census:
    dest = out / ref
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", git_dir, "archive", ref], capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(dest, filter="data")
    result = Census(ref)
    files = []
    for f in sorted(dest.rglob("*")):
        if f.suffix in (".yml", ".yaml") and f.is_file():
            kind = _capability(f)
            if kind:
                files.append(f)
            elif kind is False:
                result.other_yaml += 1
    result.files = len(files)
    for file in files:
        rel = str(file.relative_to(dest))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", str(file)])
        lines = [line.replace(str(dest) + "/", "") for line in err.getvalue().splitlines()]
        errors = [line for line in lines if _POSITION.search(line)]
        first = errors[0] if errors else (lines[0] if lines else "")
        broken = next((b for b in BROKEN if rel.endswith(b.suffix)), None)
        if code == 0:
            result.accepted += 1
            if broken is not None:
                result.accepted_broken.append((rel, broken.test))
            continue
        if broken is not None and errors:
            named = any(broken.defect in _POSITION.split(line)[-1] for line in errors)
            result.broken.append((rel, first, broken.test, named))
            continue
        reason = next((why for text, why in REFUSED if any(text in line for line in lines)), None)
        if reason is not None:
            result.refused.append((rel, first, reason))
        else:
            result.wrong.append((rel, first))
    return result


def report(c: Census, verbose: bool) -> None:
    print(
        f"{c.ref}: {c.files} capability files, accepted {c.accepted}, (a) broken {len(c.broken)}, "
        f"(b) wrongly rejected {len(c.wrong)}, (c) refused {len(c.refused)}"
        + (f"; {c.other_yaml} other YAML not counted" if c.other_yaml else ""),
        flush=True,
    )
    for _rel, first, test, named in c.broken:
        print(f"   (a) {first[:160]}")
        if verbose or not named:
            print(f"       expected by {test}; {'the defect is named' if named else 'the defect is NOT named'}")
    for _rel, first in c.wrong:
        why = next((why for text, why in KNOWN_WRONG if text in first), "")
        print(f"   (b) {first[:200]}" + (f"\n       known: {why}" if why else ""))
    for rel, first, reason in c.refused:
        print(f"   (c) {rel}: {reason}" + (f"\n       {first[:160]}" if verbose else ""))
    for rel, test in c.accepted_broken:
        print(f"   !! ACCEPTED although broken: {rel} (expected to fail by {test})")


def table(results: list[tuple[str, Census]]) -> None:
    print("\n| repository @ ref | files | accepted | (a) broken, reported | (b) wrongly rejected | (c) refused |")
    print("|---|---|---|---|---|---|")
    for repo, c in results:
        print(f"| {repo} @ {c.ref} | {c.files} | {c.accepted} | {len(c.broken)} | {len(c.wrong)} | {len(c.refused)} |")


def run() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("git_dir")
    parser.add_argument("refs", nargs="+")
    parser.add_argument("--out", type=Path, default=None, help="where to extract the trees (default: a temp directory)")
    parser.add_argument("--verbose", action="store_true", help="name the reference test of every (a) file")
    args = parser.parse_args()
    repo = Path(args.git_dir).resolve()
    name = repo.parent.name.replace("+", "/") if repo.name == "repo" else repo.name
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for ref in args.refs:
            c = census(args.git_dir, ref, out)
            report(c, args.verbose)
            results.append((name, c))
    table(results)
    return 1 if any(c.wrong or c.accepted_broken for _, c in results) else 0


if __name__ == "__main__":
    raise SystemExit(run())
