"""OpenAPI parameter serialisation styles for consumed parameters (a naftiko extension).

A consumed parameter may say how its value is written, with the words OpenAPI uses
(``style`` and ``explode``; docs/reference.md, "Serialisation styles"). Without a ``style``
the request builder keeps its own rules; with one, this module does the encoding:

- query: ``form`` (lists ``k=a&k=b`` when exploded, ``k=a,b`` otherwise; objects ``x=1&y=2`` /
  ``k=x,1,y,2``), ``spaceDelimited``, ``pipeDelimited``, ``deepObject`` (``k[x]=1``, nested
  ``k[x][y]=1``, lists ``k[0]=a`` — the bracket notation Stripe and Rails-style APIs read);
- path: ``simple`` (``a,b``), ``label`` (``.a.b``), ``matrix`` (``;k=a;k=b``);
- header: ``simple``; cookie: ``form``.

The same bracket notation serves nested fields of ``application/x-www-form-urlencoded`` bodies
whose ``encoding`` says ``style: deepObject``. Functions return *unencoded* pairs for query
strings and forms (the caller percent-encodes each name and value once) and the finished,
percent-encoded text for path segments.
"""

from __future__ import annotations

from urllib.parse import quote

from naftiko.errors import InvalidInput
from naftiko.expressions.template import MISSING, to_text

QUERY_STYLES = ("form", "spaceDelimited", "pipeDelimited", "deepObject")
PATH_STYLES = ("simple", "label", "matrix")
STYLES = frozenset(QUERY_STYLES + PATH_STYLES)
MAX_DEPTH = 16  # nested bracket notation deeper than this is refused, as an object that deep is not a form


def default_explode(style: str | None) -> bool:
    """OpenAPI: ``form`` explodes by default, every other style does not."""
    return style in (None, "form")


def _scalar(value: object) -> str:
    return to_text(value)


def _items(value: object) -> list[tuple[str, object]] | None:
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items() if v is not None]
    return None


def query_pairs(name: str, value: object, style: str, explode: bool | None) -> list[tuple[str, str]]:
    """``name=value`` pairs (unencoded) for a query parameter or a form field."""
    if value is None or value is MISSING:
        return []
    explode = default_explode(style) if explode is None else explode
    if style == "deepObject":
        return bracket_pairs(name, value)
    if isinstance(value, list):
        values = [_scalar(v) for v in value if v is not None]
        if style == "form" and explode:
            return [(name, v) for v in values]
        sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(style, ",")
        return [(name, sep.join(values))]
    fields = _items(value)
    if fields is not None:
        if style == "form" and explode:
            return [(k, _scalar(v)) for k, v in fields]
        sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(style, ",")
        return [(name, sep.join(part for k, v in fields for part in (k, _scalar(v))))]
    return [(name, _scalar(value))]


def bracket_pairs(name: str, value: object, depth: int = 0) -> list[tuple[str, str]]:
    """``address[line1]=…``, ``items[0][price]=…``: nested objects and lists in bracket notation."""
    if value is None or value is MISSING:
        return []
    if depth > MAX_DEPTH:
        raise InvalidInput(f"'{name}' is nested more than {MAX_DEPTH} levels deep", field=name.split("[", 1)[0])
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out.extend(bracket_pairs(f"{name}[{k}]", v, depth + 1))
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            out.extend(bracket_pairs(f"{name}[{i}]", v, depth + 1))
        return out
    return [(name, _scalar(value))]


def path_segment(name: str, value: object, style: str, explode: bool | None) -> str:
    """The percent-encoded text a path placeholder becomes (``simple``, ``label``, ``matrix``)."""
    explode = default_explode(style) if explode is None else explode
    key = _enc(name)
    if isinstance(value, list):
        parts = [_enc(_scalar(v)) for v in value if v is not None]
        if style == "matrix":
            return "".join(f";{key}={p}" for p in parts) if explode else f";{key}=" + ",".join(parts)
        return _label_or_simple(style, parts, explode)
    fields = _items(value)
    if fields is not None:
        sep = "=" if explode else ","
        pairs = [f"{_enc(k)}{sep}{_enc(_scalar(v))}" for k, v in fields]
        if style == "matrix":
            return "".join(f";{p}" for p in pairs) if explode else f";{key}=" + ",".join(pairs)
        return _label_or_simple(style, pairs, explode)
    text = _enc(_scalar(value))
    if style == "matrix":
        return f";{key}={text}"
    return "." + text if style == "label" else text


def _enc(text: str) -> str:
    return quote(text, safe="")


def _label_or_simple(style: str, parts: list[str], explode: bool) -> str:
    """``label``: a leading ``.``, items joined by ``.`` when exploded, else ``,``; ``simple``: ``,``."""
    if style == "label":
        return "." + ("." if explode else ",").join(parts)
    return ",".join(parts)


def header_value(value: object, explode: bool | None) -> str:
    """``simple`` style: lists ``a,b``; objects ``x,1,y,2`` (``x=1,y=2`` when exploded)."""
    if isinstance(value, list):
        return ",".join(_scalar(v) for v in value if v is not None)
    fields = _items(value)
    if fields is not None:
        if explode:
            return ",".join(f"{k}={_scalar(v)}" for k, v in fields)
        return ",".join(part for k, v in fields for part in (k, _scalar(v)))
    return _scalar(value)


def cookie_value(value: object) -> str:
    """``form`` style, not exploded (the only cookie form a single cookie can carry): ``a,b``."""
    if isinstance(value, list):
        return ",".join(_scalar(v) for v in value if v is not None)
    fields = _items(value)
    if fields is not None:
        return ",".join(part for k, v in fields for part in (k, _scalar(v)))
    return _scalar(value)
