"""YAML parsing that remembers where every value came from.

PyYAML's composer gives nodes with source marks; we build plain Python data from them and
keep a table from each value's path (a tuple of keys and indexes) to its 1-based line and
column, so every later check can say ``file:line:col``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TypeAlias

import yaml

from naftiko.document import JSONValue
from naftiko.errors import Diagnostic, LoadError

_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:  # the C composer is several times faster on big files
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the libyaml build
    _Loader = yaml.SafeLoader

# Where a value sits in a document: the keys and list indexes leading to it from the root.
Path: TypeAlias = tuple[str | int, ...]
_constructor = yaml.constructor.SafeConstructor()


@dataclass
class Source:
    """A parsed YAML document plus the position of every value in it."""

    file: str
    data: JSONValue
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[Diagnostic] = field(default_factory=list)

    def locate(self, path: Path) -> tuple[int, int]:
        """Line and column of ``path`` (its key when it has one), or of its nearest ancestor."""
        path = tuple(path)
        while True:
            if path in self.key_positions:
                return self.key_positions[path]
            if path in self.positions:
                return self.positions[path]
            if not path:
                return (1, 1)
            path = path[:-1]

    def diagnostic(self, path: Path, message: str, severity: str = "error") -> Diagnostic:
        line, col = self.locate(path)
        return Diagnostic(self.file, line, col, message, severity)


def value_at(data: JSONValue, path: Path) -> JSONValue:
    """The value at ``path`` in ``data``, or None when the path leads nowhere."""
    for part in path:
        if isinstance(data, dict) and isinstance(part, str) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and -len(data) <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _mark(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: yaml.Node) -> JSONValue:
    value: JSONValue = _constructor.construct_object(node, deep=True)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()  # dates are labels in capability files, not values
    return value


MAX_ALIAS_EXPANSION = 100_000  # values built again through aliases, beyond the file's own


class _Budget:
    """Counts values built through aliases: an alias is the same node again, so a file of a
    few lines can stand for billions of values (an "alias bomb"). Building stops once the
    repeats pass :data:`MAX_ALIAS_EXPANSION`, long before time or memory runs short."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.repeats = 0
        self.expanding: yaml.Node | None = None  # the outermost anchored node being repeated


def _count(node: yaml.Node, budget: _Budget, src: Source) -> bool:
    """Count one visit; True when ``node`` starts an alias expansion (the caller ends it)."""
    if id(node) not in budget.seen:
        budget.seen.add(id(node))
        return False
    budget.repeats += 1
    if budget.repeats > MAX_ALIAS_EXPANSION:
        anchor = budget.expanding or node
        line, col = _mark(anchor)
        raise LoadError([Diagnostic(
            src.file, line, col,
            f"YAML error: aliases (*name) expand to more than {MAX_ALIAS_EXPANSION} values; "
            "the anchor defined here is repeated too often (an alias bomb?)",
        )])
    if budget.expanding is None:
        budget.expanding = node
        return True
    return False


def _build(node: yaml.Node, path: Path, src: Source, budget: _Budget | None = None) -> JSONValue:
    budget = budget or _Budget()
    outermost = _count(node, budget, src)
    try:
        return _build_node(node, path, src, budget)
    finally:
        if outermost:
            budget.expanding = None


def _build_node(node: yaml.Node, path: Path, src: Source, budget: _Budget) -> JSONValue:
    src.positions[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, JSONValue] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = _build(value_node, path, src, budget)
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for k, v in item.items():
                            result.setdefault(k, v)
                continue
            key = _build(key_node, (*path, "<key>"), src, budget)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                line, col = _mark(key_node)
                raise LoadError([Diagnostic(src.file, line, col, "mapping keys must be scalars")])
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                line, col = _mark(key_node)
                src.duplicates.append(
                    Diagnostic(src.file, line, col, f"duplicate key {key!r}; the last one wins", "warning")
                )
            src.key_positions[(*path, key)] = _mark(key_node)
            result[key] = _build(value_node, (*path, key), src, budget)
        src.positions.pop((*path, "<key>"), None)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), src, budget) for i, item in enumerate(node.value)]
    return _scalar(node)


_TOO_DEEP = "YAML error: nested too deeply, or an anchor (&name) that contains its own alias (*name)"


def parse_yaml(text: str, file: str) -> Source:
    """Parse one YAML document; syntax errors become a :class:`LoadError` with a position."""
    src = Source(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        start = exc.context_mark
        if exc.problem and exc.context and start is not None and (start.line + 1, start.column + 1) != (line, col):
            # The parser gives up where it noticed; the cause (an unclosed quote or bracket) is where this began.
            problem += f" ({exc.context} that starts at line {start.line + 1}, column {start.column + 1})"
        raise LoadError([Diagnostic(file, line, col, f"YAML syntax error: {problem}")]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        at = min(max(exc.position, 0), len(text))
        line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise LoadError([Diagnostic(file, line, col, f"YAML error: the character {char!r} is not allowed")]) from None
    except yaml.YAMLError as exc:
        raise LoadError([Diagnostic(file, 1, 1, f"YAML error: {exc}")]) from None
    except RecursionError:  # the composer recurses per level
        raise LoadError([Diagnostic(file, 1, 1, _TOO_DEEP)]) from None
    if node is None:
        raise LoadError([Diagnostic(file, 1, 1, "the file is empty")])
    try:
        src.data = _build(node, (), src)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise LoadError([Diagnostic(file, line, col, f"YAML error: {exc.problem}")]) from None
    except RecursionError:  # so does _build, forever on an anchor that contains itself
        raise LoadError([Diagnostic(file, 1, 1, _TOO_DEEP)]) from None
    return src


def read_source(path: str) -> Source:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise LoadError([Diagnostic(path, 1, 1, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError([Diagnostic(path, 1, 1, f"cannot read file: {exc}")]) from None
    return parse_yaml(text, path)
