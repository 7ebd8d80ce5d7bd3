"""Every published version of the capability language, read as one internal model.

The language was published as ``naftiko: 0.5``, ``1.0.0-alpha1``, ``1.0.0-alpha2`` and then, renamed
Ikanos, as ``ikanos: 1.0.0-alpha3`` … ``1.0.0-beta5``. All breaking changes landed in alpha3: named
entities became maps keyed by name, ``label`` became ``display``, aggregate ``functions`` became
``flows``, mapping ``targetName`` became ``target`` and the consumes import ``location`` became
``from``. 0.4 and 0.5 declared ``externalRefs`` where later versions declare ``binds``; 0.4 named the
REST adapter ``type: api``; until alpha1 a consumed input ``in: environment`` read the process
environment (read here as a bind of that variable).

The engine works on one model, shaped like 1.0.0-alpha2 (lists of named items). :func:`normalise`
rewrites any version into that shape *and* carries every value's position along, so a diagnostic
about a normalised value still points at the author's line. :func:`to_maps` goes the other way
(the map syntax of alpha3 and later), for ``naftiko migrate``. Both directions are driven by one
table of containers (:data:`_FIELDS`), read container by container: files in the wild mix the two
syntaxes, so the shape of each container decides how it is read, and the version key only decides
which schema the file is checked against and what a disagreement is reported as
(docs/reference.md, "Versions").
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import TypeAlias

from naftiko.document import JSONValue
from naftiko.document.source import Path, Source, value_at
from naftiko.errors import Diagnostic

# A named entity on its way through the rewrite: (its name, its value, its path in the source, whether
# the source held it in a map keyed by name).
_Named: TypeAlias = tuple[JSONValue, JSONValue, Path, bool]

LIST_ERA = ("0.4", "0.5", "1.0.0-alpha1", "1.0.0-alpha2")
MAP_ERA = ("1.0.0-alpha3", "1.0.0-alpha4", "1.0.0-beta1", "1.0.0-beta2", "1.0.0-beta3", "1.0.0-beta4", "1.0.0-beta5")
VERSIONS = LIST_ERA + MAP_ERA
INTERNAL = "1.0.0-alpha2"
LATEST = MAP_ERA[-1]

# kind -> field -> (container, child kind). Containers: "one" (a mapping), "list" (a list of the child
# kind), "named" (named entities: a list of items with `name` until alpha2, a map keyed by name
# since alpha3), "outputs" (output parameters: named ones follow "named", mapped ones stay a list).
_INVOCABLE = {
    "inputParameters": ("named", "plain"),
    "steps": ("named", "plain"),
    "mappings": ("list", "mapping"),
    "outputParameters": ("outputs", "output"),
}
_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "doc": {
        "info": ("one", "info"),
        "binds": ("list", "plain"),
        "consumes": ("list", "consumes"),
        "exposes": ("list", "expose"),
        "aggregates": ("list", "aggregate"),
        "capability": ("one", "capability"),
    },
    "capability": {
        "binds": ("list", "plain"),
        "consumes": ("list", "consumes"),
        "exposes": ("list", "expose"),
        "aggregates": ("list", "aggregate"),
    },
    "info": {},
    "consumes": {"inputParameters": ("named", "plain"), "resources": ("named", "c-resource")},
    "c-resource": {"inputParameters": ("named", "plain"), "operations": ("named", "c-operation")},
    "c-operation": {"inputParameters": ("named", "plain"), "outputParameters": ("outputs", "output")},
    "aggregate": {"functions": ("named", "invocable")},
    "invocable": _INVOCABLE,
    "expose-rest": {"resources": ("named", "r-resource")},
    "r-resource": {"inputParameters": ("named", "plain"), "operations": ("named", "invocable")},
    "expose-mcp": {
        "tools": ("named", "invocable"),
        "resources": ("named", "invocable"),
        "prompts": ("named", "prompt"),
    },
    "prompt": {"arguments": ("named", "argument")},
    "argument": {},
    "expose-skill": {"skills": ("named", "skill")},
    "skill": {"tools": ("named", "plain")},
    "mapping": {},
    "import": {},
}
# kind -> {alpha2 name: alpha3+ name}
_LABELLED = ("info", "c-resource", "c-operation", "aggregate", "invocable", "r-resource", "prompt", "argument")
_RENAMES: dict[str, dict[str, str]] = {kind: {"label": "display"} for kind in _LABELLED}
_RENAMES["aggregate"] = {"label": "display", "functions": "flows"}
_RENAMES["mapping"] = {"targetName": "target"}
_RENAMES["consumes-import"] = {"location": "from"}


@dataclass
class Evidence:
    """Where the file first showed each syntax: (path in the file, what was seen)."""

    lists: tuple[Path, str] | None = None
    maps: tuple[Path, str] | None = None

    def saw(self, era: str, path: Path, what: str) -> None:
        if era == "list" and self.lists is None:
            self.lists = (path, what)
        elif era == "map" and self.maps is None:
            self.maps = (path, what)


@dataclass
class Normalised:
    """A file read into the internal (alpha2-shaped) model, with what was learnt on the way."""

    source: Source  # internal shape; positions point into the author's file
    original: Source  # as written
    key: str | None  # "naftiko" | "ikanos" | None
    version: str | None  # the declared version, as a string
    evidence: Evidence
    notes: list[Diagnostic] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.version in VERSIONS

    @property
    def era(self) -> str:
        """``list`` (0.5 … alpha2) or ``map`` (alpha3 …) as the version key says, else as the shape says."""
        if self.known:
            return "list" if self.version in LIST_ERA else "map"
        if self.key == "ikanos" or (self.evidence.maps and not self.evidence.lists):
            return "map"
        return "list"

    @property
    def schema_version(self) -> str:
        if self.version is not None and self.known:
            return self.version
        return LATEST if self.era == "map" else INTERNAL

    def banner(self) -> str:
        """What a structural message is prefixed with: which version the file declares."""
        if self.key is None:
            return "this file declares no version (expected 'ikanos: 1.0.0-beta5' or 'naftiko: 1.0.0-alpha2')"
        return f"this is an `{self.key}: {self.version}` file"


class _Walk:
    """One rewrite of a document, recording where every new value came from."""

    def __init__(self, src: Source, to_map: bool):
        self.src = src
        self.to_map = to_map
        self.positions: dict[Path, tuple[int, int]] = {}
        self.key_positions: dict[Path, tuple[int, int]] = {}
        self.origin: dict[Path, Path] = {}
        self.evidence = Evidence()
        self.invented: list[tuple[Path, str]] = []  # (path in the source, key invented for it)
        self.data: dict[str, JSONValue] = {}  # the rewritten document

    # ------------------------------------------------------------ positions

    def at(self, old: Path, new: Path) -> None:
        self.origin[new] = old
        if old in self.src.positions:
            self.positions[new] = self.src.positions[old]
        if old in self.src.key_positions:
            self.key_positions[new] = self.src.key_positions[old]

    def plain(self, value: JSONValue, old: Path, new: Path) -> JSONValue:
        self.at(old, new)
        if isinstance(value, dict):
            return {k: self.plain(v, (*old, k), (*new, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.plain(v, (*old, i), (*new, i)) for i, v in enumerate(value)]
        return value

    # ------------------------------------------------------------ kinds

    def node(self, kind: str, value: JSONValue, old: Path, new: Path) -> JSONValue:
        if not isinstance(value, dict) or kind == "plain":
            return self.plain(value, old, new)
        if kind == "expose":
            type_ = value.get("type")
            type_ = _API.get(type_, type_) if isinstance(type_, str) else type_  # a non-string: the schema says
            kind = "import" if _is_import(value) else f"expose-{type_}"
        elif kind == "consumes" and _is_import(value):
            kind = "consumes-import"
        elif kind in ("aggregate",) and _is_import(value):
            kind = "import"
        fields = _FIELDS.get(kind, {})
        renames = _RENAMES.get(kind, {})
        back = {b: a for a, b in renames.items()}
        self.at(old, new)
        out: dict[str, JSONValue] = {}
        for key, child in value.items():
            internal = back[key] if key in back else str(key)
            if key in renames:
                self.evidence.saw("list", (*old, key), f"'{key}'")
            elif key in back:
                self.evidence.saw("map", (*old, key), f"'{key}'")
            written: str = renames.get(internal, internal) if self.to_map else internal
            if written in out:  # both spellings given: the one in the target syntax wins
                continue
            if key == "call" and isinstance(child, dict) and "operation" in child:
                # 0.3/0.4 engines also read `call: {operation, with}`: the call, and `with` beside it
                out["call"] = self.plain(child["operation"], (*old, key, "operation"), (*new, "call"))
                if "with" in child and "with" not in value:
                    out["with"] = self.plain(child["with"], (*old, key, "with"), (*new, "with"))
                continue
            container, child_kind = fields.get(internal, ("one", "plain"))
            out[written] = self.container(container, child_kind, child, (*old, key), (*new, written), key)
        if kind == "expose-rest" and out.get("type") == "api":
            out["type"] = "rest"  # 0.4's name of the REST adapter
        return out

    def container(self, container: str, kind: str, value: JSONValue, old: Path, new: Path, key: str) -> JSONValue:
        if container == "one":
            return self.node(kind, value, old, new)
        if container == "list" or (container == "outputs" and isinstance(value, list) and not _all_named(value)):
            if not isinstance(value, list):
                return self.plain(value, old, new)
            self.at(old, new)
            return [self.named_item(kind, v, (*old, i), (*new, i), False) for i, v in enumerate(value)]
        # named entities (and named output parameters)
        items: list[_Named]
        if isinstance(value, dict):
            if value:
                self.evidence.saw("map", old, f"'{key}' is a map keyed by name")
            items = [(k, v, (*old, k), True) for k, v in value.items()]
        elif isinstance(value, list):
            if value:
                self.evidence.saw("list", old, f"'{key}' is a list")
            items = [(v.get("name") if isinstance(v, dict) else None, v, (*old, i), False) for i, v in enumerate(value)]
        else:
            return self.plain(value, old, new)
        self.at(old, new)
        return self.as_map(kind, items, new) if self.to_map else self.as_list(kind, items, new)

    def as_list(self, kind: str, items: list[_Named], new: Path) -> list[JSONValue]:
        out: list[JSONValue] = []
        for i, (name, value, old, from_map) in enumerate(items):
            item = self.named_item(kind, value, old, (*new, i))
            if from_map and isinstance(item, dict):
                item = {"name": name, **{k: v for k, v in item.items() if k != "name"}}
                key_at = self.src.key_positions.get(old)
                if key_at is not None:
                    self.positions[(*new, i, "name")] = key_at
                    self.key_positions[(*new, i, "name")] = key_at
                    self.key_positions[(*new, i)] = key_at
            out.append(item)
        return out

    def as_map(self, kind: str, items: list[_Named], new: Path) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {}
        for i, (name, value, old, _from_map) in enumerate(items):
            key = name if isinstance(name, (str, int)) and not isinstance(name, bool) else None
            key = str(key) if key is not None else None
            if key is None or key in out:
                key = _invent(kind, value, i, out)
                self.invented.append((old, key))
            item = self.named_item(kind, value, old, (*new, key))
            if isinstance(item, dict):
                item.pop("name", None)
            out[key] = item
        return out

    def named_item(self, kind: str, value: JSONValue, old: Path, new: Path, named: bool = True) -> JSONValue:
        if kind == "output":
            return self.output(value, old, new, named)
        return self.node(kind, value, old, new)

    def output(self, value: JSONValue, old: Path, new: Path, named: bool) -> JSONValue:
        """An output parameter: nested ``properties`` stay a map; ``items`` is one parameter
        (mapped arrays) or named parameters (orchestrated arrays: a list, then a map). Until alpha2
        the properties of a named parameter repeat their key as ``name``; since alpha3 they do not."""
        if not isinstance(value, dict):
            return self.plain(value, old, new)
        self.at(old, new)
        out: dict[str, JSONValue] = {}
        for key, child in value.items():
            if key == "properties" and isinstance(child, dict):
                self.at((*old, key), (*new, key))
                props: dict[str, JSONValue] = {}
                out[key] = props
                for k, v in child.items():
                    prop = self.output(v, (*old, key, k), (*new, key, k), named)
                    if named and isinstance(prop, dict) and "mapping" not in prop:
                        if self.to_map and prop.get("name") == k:
                            del prop["name"]
                        elif not self.to_map and "name" not in prop:
                            prop = {"name": k, **prop}
                            at = self.src.key_positions.get((*old, key, k))
                            if at is not None:
                                self.positions[(*new, key, k, "name")] = self.key_positions[(*new, key, k, "name")] = at
                    props[k] = prop
            elif key == "items" and (
                isinstance(child, list) or (isinstance(child, dict) and not _one_parameter(child))
            ):
                out[key] = self.container("outputs", "output", child, (*old, key), (*new, key), key)
            elif key == "items":
                out[key] = self.output(child, (*old, key), (*new, key), False)
            else:
                out[key] = self.plain(child, (*old, key), (*new, key))
        return out


# 0.4 (and earlier) named the REST adapter `type: api`.
_API: dict[JSONValue, str] = {"api": "rest"}


def _is_import(value: dict[str, JSONValue]) -> bool:
    return "import" in value and ("from" in value or "location" in value) and "baseUri" not in value


def _all_named(items: list[JSONValue]) -> bool:
    return bool(items) and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in items)


def _one_parameter(value: dict[str, JSONValue]) -> bool:
    """An ``items`` mapping is one parameter (mapped arrays) unless every value is a mapping and
    it has no ``type`` of its own: then it holds parameters keyed by name (orchestrated arrays)."""
    return not all(isinstance(v, dict) for v in value.values()) or (
        "type" in value and not isinstance(value["type"], dict)
    )


def _invent(kind: str, value: JSONValue, index: int, taken: dict[str, JSONValue]) -> str:
    """A key for an item with no usable name: its method (REST operations) or its path (REST
    resources) when it has one, else ``item-N``; made unique among its siblings."""
    base, key = "item", f"item-{index + 1}"
    method = value.get("method") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else None
    if isinstance(method, str):
        base = key = method.lower()
    elif isinstance(path, str):
        base = key = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root"
    n = 1
    while key in taken:
        n += 1
        key = f"{base}-{n}"
    return key


def _version_key(data: dict[str, JSONValue]) -> tuple[str | None, JSONValue]:
    for key in ("ikanos", "naftiko"):
        if key in data:
            return key, data[key]
    return None, None


def _external_refs(walk: _Walk, refs: JSONValue, old: Path, new: Path) -> JSONValue:
    """0.5 ``externalRefs`` → ``binds``: ``name`` → ``namespace``, ``uri`` → ``location``."""
    if not isinstance(refs, list):
        return walk.plain(refs, old, new)
    walk.at(old, new)
    out = []
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            out.append(walk.plain(ref, (*old, i), (*new, i)))
            continue
        walk.at((*old, i), (*new, i))
        bind: dict[str, JSONValue] = {}
        for key, value in ref.items():
            target = {"name": "namespace", "uri": "location"}.get(str(key), str(key))
            if key in ("type", "resolution"):
                continue
            bind[target] = walk.plain(value, (*old, i, key), (*new, i, target))
        out.append(bind)
    return out


def _rewrite(src: Source, to_map: bool, version_key: str, version: str) -> _Walk:
    walk = _Walk(src, to_map)
    data = src.data
    assert isinstance(data, dict)
    key, _ = _version_key(data)
    walk.at((), ())
    out: dict[str, JSONValue] = {version_key: version}
    if key is not None:
        walk.at((key,), (version_key,))
    for name, value in data.items():
        if name in ("ikanos", "naftiko"):
            continue
        if name == "externalRefs":
            target = "binds" if "binds" not in data else name
            out[target] = _external_refs(walk, value, (name,), (target,))
            continue
        container, kind = _FIELDS["doc"].get(name, ("one", "plain"))
        out[name] = walk.container(container, kind, value, (name,), (name,), name)
    walk.data = out
    return walk


def normalise(src: Source) -> Normalised:
    """Read a file of any version into the internal model, positions kept."""
    if not isinstance(src.data, dict):
        return Normalised(src, src, None, None, Evidence())
    key, declared = _version_key(src.data)
    version = None if declared is None else str(declared)
    walk = _rewrite(src, to_map=False, version_key="naftiko", version=version or "")
    if key is None:
        walk.data.pop("naftiko")
    _environment_binds(walk)
    internal = Source(src.file, walk.data, walk.positions, walk.key_positions, list(src.duplicates))
    result = Normalised(internal, src, key, version, walk.evidence)
    result.notes.extend(_disagreement(result))
    return result


def _environment_binds(walk: _Walk) -> None:
    """Until 1.0.0-alpha1 a consumed input ``{name: X, in: environment}`` made ``{{X}}`` the process
    environment variable X (the reference engine's ``System.getenv``). Later versions say that with
    ``binds``, so such inputs become one bind without ``location`` (the environment, then
    ``--env-file``), named ``environment`` (or ``environment-2`` … when taken) and positioned at the
    inputs, which the engine otherwise skips."""
    data = walk.data
    found: dict[str, tuple[int, int] | None] = {}

    def scan(holder: JSONValue, path: Path) -> None:
        params = holder.get("inputParameters") if isinstance(holder, dict) else None
        for i, p in enumerate(params if isinstance(params, list) else []):
            name = p.get("name") if isinstance(p, dict) else None
            if isinstance(p, dict) and p.get("in") == "environment" and isinstance(name, str):
                found.setdefault(name, walk.positions.get((*path, "inputParameters", i)))

    cap = data.get("capability")
    places: list[tuple[JSONValue, Path]] = [(data.get("consumes"), ("consumes",))]
    if isinstance(cap, dict):
        places.append((cap.get("consumes"), ("capability", "consumes")))
    for entries, where in places:
        for ci, entry in enumerate(entries if isinstance(entries, list) else []):
            scan(entry, (*where, ci))
            resources = entry.get("resources") if isinstance(entry, dict) else None
            for ri, res in enumerate(resources if isinstance(resources, list) else []):
                scan(res, (*where, ci, "resources", ri))
                operations = res.get("operations") if isinstance(res, dict) else None
                for oi, op in enumerate(operations if isinstance(operations, list) else []):
                    scan(op, (*where, ci, "resources", ri, "operations", oi))
    if not found:
        return
    binds = data.get("binds")
    if not isinstance(binds, list):
        if binds is not None:
            return  # malformed: reported by the model
        binds = data["binds"] = []
    taken = {b.get("namespace") for b in binds if isinstance(b, dict)}
    namespace, n = "environment", 1
    while namespace in taken:
        n += 1
        namespace = f"environment-{n}"
    at = ("binds", len(binds))
    binds.append({"namespace": namespace, "keys": {name: name for name in found}})
    first = next((pos for pos in found.values() if pos is not None), None)
    for path, pos in [(at, first), ((*at, "namespace"), first), ((*at, "keys"), first)] + [
        ((*at, "keys", name), pos) for name, pos in found.items()
    ]:
        if pos is not None:
            walk.positions[path] = walk.key_positions[path] = pos


def _disagreement(n: Normalised) -> list[Diagnostic]:
    """One warning when the version key and the syntax disagree (files in the wild mix them)."""
    if n.key is None or not n.known:
        return []
    if n.era == "map" and n.evidence.lists:
        path, what = n.evidence.lists
        return [
            n.original.diagnostic(
                path,
                f"{n.banner()} but {what}: that is the syntax of 1.0.0-alpha2 and earlier; read as written "
                f"(run 'naftiko migrate --to {n.version} FILE' to rewrite it)",
                "warning",
            )
        ]
    if n.era == "list" and n.evidence.maps:
        path, what = n.evidence.maps
        return [
            n.original.diagnostic(
                path,
                f"{n.banner()} but {what}: that is the syntax of 1.0.0-alpha3 and later; read as written "
                f"(declare 'ikanos: {LATEST}', or run 'naftiko migrate --to {INTERNAL} FILE')",
                "warning",
            )
        ]
    return []


@dataclass
class Migrated:
    data: dict[str, JSONValue]
    source: Source  # the written shape, positions pointing into the author's file
    invented: list[Diagnostic]
    dropped: list[Diagnostic]


def to_maps(n: Normalised, version: str = LATEST) -> tuple[Source, list[Diagnostic]]:
    """The internal model in the map syntax of ``version`` (alpha3 or later), with positions and
    a note per invented key."""
    walk = _rewrite(n.source, to_map=True, version_key="ikanos", version=version)
    out = Source(n.source.file, walk.data, walk.positions, walk.key_positions)
    notes = [
        n.source.diagnostic(path, f"invented the key '{key}' for an item that has no usable 'name'", "warning")
        for path, key in walk.invented
    ]
    return out, notes


def migrate(n: Normalised, target: str) -> Migrated:
    """The document in the syntax of ``target``: alpha2 (list syntax) or alpha3 … beta5 (maps).

    Keys invented for unnamed items and fields the target version does not know (dropped) are
    reported with the author's positions."""
    from naftiko.document import schema as spec_schema

    invented: list[Diagnostic] = []
    if target == INTERNAL:
        assert isinstance(n.source.data, dict)
        data: dict[str, JSONValue] = {"naftiko": target, **copy.deepcopy(n.source.data)}
        data["naftiko"] = target
        written = Source(n.source.file, data, n.source.positions, n.source.key_positions)
    elif target in MAP_ERA:
        written, invented = to_maps(n, target)
    else:
        raise ValueError(f"cannot write version {target!r}: migrate writes {INTERNAL} or {', '.join(MAP_ERA)}")
    dropped: list[Diagnostic] = []
    for _ in range(8):  # dropping a key can reveal keys an unevaluatedProperties hid
        unknown = spec_schema.unknown_keys(written.data, target)
        if not unknown:
            break
        for path in unknown:
            parent = value_at(written.data, path[:-1])
            if isinstance(parent, dict) and path[-1] in parent:
                dropped.append(written.diagnostic(path, f"dropped '{path[-1]}': {target} has no such field", "warning"))
                del parent[path[-1]]
    assert isinstance(written.data, dict)
    return Migrated(written.data, written, invented, dropped)
