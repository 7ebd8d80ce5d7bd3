"""JSONPath expressions, compiled once at load.

Capability files write ``$`` or ``$.`` for the whole document, sometimes wrap a path in
mustache braces (``{{$.x}}``), and use ``length()``; all of these mean what their authors
intend (reference §4). A path that matches nothing evaluates to ``None``.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from jsonpath_ng import JSONPath as _Compiled
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import ExtendedJsonPathParser

_LENGTH = re.compile(r"\.length\(\)\s*$")
# Expressions that can select several nodes give a list even when one node matches.
_MULTI = re.compile(r"\[\*\]|\.\*|\.\.|\[\?|\?\(|\[[^\]]*[:,][^\]]*\]")


class JsonPathError(ValueError):
    pass


# jsonpath_ng's parse() builds a new yacc parser per call (about two thirds of its cost); one
# parser, behind a lock (ply's parser keeps state while it runs and reload compiles in a thread),
# and one parse per distinct expression: files repeat the same few paths many times.
_PARSER = ExtendedJsonPathParser()
_PARSER_LOCK = threading.Lock()


@lru_cache(maxsize=4096)
def _parse(expr: str) -> _Compiled:
    with _PARSER_LOCK:
        return _PARSER.parse(expr)


# A dot-notation key holding spaces (`$.properties.Participation Status.select`): the reference
# engine (Converter.fixJsonPathWithSpaces) reads it as `['Participation Status']` when the path
# does not parse as written; so does naftiko.
_SPACED_KEY = re.compile(r"\.([^.\[\]'\s][^.\[\]']*\s[^.\[\]']*?)(?=[.\[]|$)")


def _spaced_keys(expr: str) -> str:
    return _SPACED_KEY.sub(lambda m: f"['{m.group(1).strip()}']", expr)


def is_jsonpath(text: object) -> bool:
    if not isinstance(text, str):
        return False
    t = text.strip()
    if t.startswith("{{") and t.endswith("}}"):
        t = t[2:-2].strip()
    return t.startswith("$")


class JsonPath:
    __slots__ = ("_compiled", "_length", "_multi", "_whole", "source")

    def __init__(self, source: str):
        self.source = source
        expr = source.strip()
        if expr.startswith("{{") and expr.endswith("}}"):
            expr = expr[2:-2].strip()
        if not expr.startswith("$"):
            raise JsonPathError(f"JSONPath must start with '$': {source!r}")
        self._length = bool(_LENGTH.search(expr))
        if self._length:
            expr = _LENGTH.sub("", expr)
        if expr.endswith("."):
            expr = expr[:-1]
        self._whole = expr == "$"
        self._multi = bool(_MULTI.search(expr))
        self._compiled = None
        if not self._whole:
            try:
                self._compiled = _parse(expr)
            except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
                spaced = _spaced_keys(expr)  # REF: the reference retries with bracketed keys too
                try:
                    self._compiled = _parse(spaced) if spaced != expr else None
                except (JsonPathLexerError, JsonPathParserError, Exception):
                    pass
                if self._compiled is None:
                    raise JsonPathError(f"invalid JSONPath {source!r}: {exc}") from None

    @property
    def is_whole_document(self) -> bool:
        return self._whole and not self._length

    def find(self, document: object) -> object:
        if self._compiled is None:  # the whole document: nothing was parsed
            value = document
        else:
            try:
                matches = [m.value for m in self._compiled.find(document)]
            except Exception:  # a filter comparing incomparable values, say
                matches = []
            if self._multi:
                value = matches
            else:
                value = matches[0] if matches else None
        if self._length:
            return len(value) if isinstance(value, (list, dict, str)) else 0
        return value

    def __repr__(self) -> str:
        return f"JsonPath({self.source!r})"
