"""Decoding upstream bodies into documents that output parameters can address.

``outputRawFormat`` says what the upstream speaks (json by default). Every format is decoded
into plain JSON-like data so JSONPath mappings work the same on all of them. The shapes follow
the reference engine where it has one, so mappings written for it keep working:

- ``json``: the parsed body, whatever content type the upstream declared.
- ``xml``: the root element's content (its name is dropped). Attributes and child elements
  become keys by local name (namespaces dropped); repeated names become lists; an element
  holding only text is that string (``""`` when empty); the text of an element that also has
  attributes or children sits under the key ``""`` (``$.price['']``). Entity declarations
  (XML bombs) and external references are refused.
- ``yaml``: the (safe-loaded) document; several documents give a list. Dates become ISO
  strings, other keys strings.
- ``csv`` / ``tsv`` / ``psv``: a list of row objects keyed by the header row (delimiters
  ``,``, tab, ``|``). All values are strings (output ``type`` coerces them); a short row is
  padded with ``""``, cells past the header are dropped, blank lines skipped. A blank header
  cell is keyed ``columnN`` (N counts from 1), a repeated one ``name_2``, ``name_3``…; the
  same rules key HTML and Markdown table rows.
- ``html``: ``{"tables": [[row, ...], ...]}``, each table a list of row objects keyed by its
  header cells (the ``thead`` row, else the first row). ``outputSchema`` is a CSS selector:
  selected tables, or the tables inside selected elements; with a selector the result also
  has ``"elements": [{"tag", "text", "attributes"}, ...]`` for every selected element.
- ``markdown`` (GitHub-flavoured): ``{"frontMatter": {...}, "tables": [[row, ...], ...],
  "sections": [{"heading", "level", "content"}, ...]}``. ``frontMatter`` is the leading
  ``---`` YAML block (``{}`` without one); ``tables`` are all tables, keyed like HTML ones;
  ``sections`` has one entry per top-level heading, its plain text, level 1-6 and, as
  ``content``, the markdown source up to the next heading of any level (text before the first
  heading belongs to no section). ``outputSchema`` keeps only sections whose heading text
  starts with it.
- ``avro`` (fastavro): an Object Container File (``Obj\\x01``, schema inside) is the list of its
  records; any other body is one datum read with the ``.avsc`` schema file named by
  ``outputSchema`` (resolved at load, as the reference engine does). Bytes become base64 text,
  dates and times ISO strings, decimals numbers, UUIDs strings.
- ``protobuf``: one message read with the ``.proto`` file named by ``outputSchema`` (its first
  message, or ``file.proto#Message``), see :mod:`naftiko.consumes.protobuf`; proto3 JSON
  mapping (64-bit integers as strings, enums by name, bytes as base64).

- ``binary`` (beta5): never decoded. The bytes are relayed as they came (REST) or base64-encoded
  (MCP), labelled by :func:`binary_media_type`'s precedence and bounded by ``maxBinarySize``
  (:func:`parse_binary_size`); output parameters cannot address them (a load-time warning).

EXT: when the upstream's content type says JSON and the body parses as JSON, that wins over
the declared format (dry runs and upstreams that honour ``Accept`` answer JSON). Bodies over
:data:`MAX_DECODE_BYTES` are refused for every format but JSON, which is parsed natively.
Anything undecodable is an :class:`UpstreamUnavailable` (502) naming the format.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import decimal
import functools
import io
import re
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast
from xml.etree.ElementTree import Element

import yaml

from naftiko.consumes.transport import UpstreamResponse
from naftiko.errors import UpstreamUnavailable
from naftiko.jsonio import JSONDecodeError, dumps, json_too_deep, loads

if TYPE_CHECKING:
    from fastavro.types import Schema
    from selectolax.lexbor import LexborHTMLParser, LexborNode

MAX_DECODE_BYTES = 10 * 1024 * 1024
MAX_UPSTREAM_JSON_DEPTH = 128  # deeper upstream JSON is a 502: templates, JSONPath and encoders recurse per level
MAX_NODES = 1_000_000  # YAML aliases can make a small body huge ("billion laughs")

FORMATS = ("json", "xml", "avro", "protobuf", "csv", "tsv", "psv", "yaml", "html", "markdown", "binary")
BINARY = "binary"
OCTET_STREAM = "application/octet-stream"
DEFAULT_MAX_BINARY_BYTES = 10 * 1024 * 1024  # the reference engine's default maxBinarySize
MAX_BINARY_SIZE = 1024**3  # binary bodies are held in memory: no cap above 1 GiB
_BINARY_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_BINARY_SIZE = re.compile(r"^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB)?$")
_UNSUPPORTED: frozenset[str] = frozenset()
_LABELS = {"json": "JSON", "xml": "XML", "yaml": "YAML", "csv": "CSV", "tsv": "TSV", "psv": "PSV",
           "html": "HTML", "markdown": "Markdown", "avro": "Avro", "protobuf": "Protocol Buffers"}
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([A-Za-z0-9._:-]+)", re.I)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)


class _Undecodable(Exception):
    """A short reason the body cannot be decoded, reported as a 502."""


class _TooLarge(_Undecodable):
    """The decoded document would exceed :data:`MAX_NODES` values."""


def check_format(raw_format: str | None, output_schema: str | None = None) -> str | None:
    """A load-time error message for a format (and ``outputSchema``) naftiko cannot decode, else None."""
    fmt = (raw_format or "json").lower()
    if fmt in _UNSUPPORTED:
        return f"outputRawFormat '{raw_format}' is not supported"
    if fmt == BINARY:
        return None
    if fmt not in _DECODERS:
        return f"unknown outputRawFormat '{raw_format}' (expected one of: {', '.join(FORMATS)})"
    if fmt == "avro" and output_schema:
        try:
            avro_schema(output_schema)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return f"outputSchema '{output_schema}': cannot read the Avro schema file ({reason})"
        except Exception as exc:  # fastavro's SchemaParseException, JSON errors
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            return f"outputSchema '{output_schema}' is not a valid Avro schema: {reason}"
    if fmt == "protobuf":
        if not output_schema:
            return "outputRawFormat 'protobuf' needs outputSchema, the .proto file describing the answer"
        from naftiko.consumes.protobuf import ProtoSchemaError, message_class

        try:
            message_class(output_schema)
        except OSError as exc:
            return f"outputSchema '{output_schema}': cannot read the .proto file ({exc.strerror or type(exc).__name__})"
        except ProtoSchemaError as exc:
            return f"outputSchema '{output_schema}' is not a usable .proto file: {exc}"
    if fmt == "html" and output_schema:
        try:
            _check_selector(output_schema)
        except Exception as exc:  # selectolax.lexbor.SelectolaxError, mostly
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"outputSchema '{output_schema}' is not a valid CSS selector: {reason}"
    return None


def decode(response: UpstreamResponse, raw_format: str = "json", output_schema: str | None = None) -> object:
    """The upstream body as data. Raises :class:`UpstreamUnavailable` (502) when it cannot be read."""
    fmt = (raw_format or "json").lower()
    if fmt == "json":
        try:
            return _json(response)
        except (JSONDecodeError, _Undecodable):
            raise UpstreamUnavailable(
                f"upstream answered {response.content_type or 'a body'} that is not JSON; cannot apply outputParameters"
            ) from None
    if response.is_json:  # EXT: the upstream says JSON; believe it when the body agrees
        try:
            return _json(response)
        except (JSONDecodeError, _Undecodable):
            pass
    decoder = _DECODERS.get(fmt)
    if fmt == BINARY:  # the engine never gets here (binary bodies are relayed), but say why if it does
        raise UpstreamUnavailable("a binary body (outputRawFormat 'binary') cannot be read by outputParameters")
    if decoder is None:
        raise UpstreamUnavailable(f"outputRawFormat '{raw_format}' is not supported")
    label = _LABELS[fmt]
    if len(response.body) > MAX_DECODE_BYTES:
        raise UpstreamUnavailable(
            f"upstream {label} body too large to decode ({len(response.body)} bytes, limit {MAX_DECODE_BYTES})"
        )
    try:
        return decoder(response, output_schema)
    except UpstreamUnavailable:
        raise
    except RecursionError:
        reason = "nested too deeply"
    except _TooLarge as exc:
        raise UpstreamUnavailable(f"upstream {label} body too large to decode ({exc})") from None
    except _Undecodable as exc:
        reason = str(exc)
    except Exception as exc:  # every parser has its own error types; none may escape as a traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    raise UpstreamUnavailable(f"upstream body is not valid {label} ({reason}); cannot apply outputParameters")


def parse_binary_size(value: str | int) -> int:
    """``maxBinarySize`` in bytes: a number with an optional IEC unit (``B``, ``KiB``, ``MiB``, ``GiB``;
    none means bytes, as in the reference engine; the beta5 schema asks for the unit). Fractions round
    down (``1.5KiB`` → 1536). :class:`ValueError` with the reason, for a positioned load error."""
    text = str(value).strip()
    m = _BINARY_SIZE.match(text)
    if isinstance(value, bool) or m is None:
        raise ValueError(
            f"maxBinarySize {value!r} is not a size: expected a number with an optional unit B, KiB, MiB or GiB"
            " (e.g. '512KiB', '10MiB')"
        )
    size = int(float(m.group(1)) * _BINARY_UNITS[m.group(2) or "B"])
    if size < 1:
        raise ValueError(f"maxBinarySize {value!r} must be at least 1 byte")
    if size > MAX_BINARY_SIZE:
        raise ValueError(f"maxBinarySize {value!r} is above 1GiB: binary bodies are held in memory")
    return size


# RFC 6838 type/subtype with optional parameters: the pattern the beta5 schema gives media types
_TOKEN = r"[a-zA-Z0-9!#$&^_.+-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"[^\"\x00-\x1f\x7f]*\"))*")


def check_media_type(value: object, field: str) -> str | None:
    """A load-time error for a declared media type that cannot be a ``Content-Type``, else None."""
    if isinstance(value, str) and _MEDIA_TYPE.fullmatch(value.strip(" \t")):
        return None
    return f"{field} {value!r} is not a media type (type/subtype, e.g. image/png or application/pdf)"


def format_size(size: int) -> str:
    """``10485760`` → ``10MiB``, ``1536`` → ``1536B``: the largest unit that divides it exactly."""
    for unit in ("GiB", "MiB", "KiB"):
        if size % _BINARY_UNITS[unit] == 0:
            return f"{size // _BINARY_UNITS[unit]}{unit}"
    return f"{size}B"


def binary_media_type(declared: str | None, contract: str | None, upstream: str | None) -> str:
    """The media type a binary answer is served with: the declared ``outputMediaType`` (flow, then
    consumed operation), else the REST contract's ``binary: true`` media type, else the upstream's
    ``Content-Type`` as sent, else ``application/octet-stream`` (the reference engine's order)."""
    for candidate in (declared, contract, upstream):
        if candidate and candidate.strip():
            return candidate.strip()
    return OCTET_STREAM


# ------------------------------------------------------------------ text and JSON


def _charset(response: UpstreamResponse) -> str | None:
    m = _CHARSET.search(response.content_type)
    return m.group(1).lower() if m else None


def _text(response: UpstreamResponse, errors: str = "strict") -> str:
    declared = _charset(response) or "utf-8"
    charset = "utf-8-sig" if declared in ("utf-8", "utf8") else declared  # utf-8-sig drops a byte-order mark
    try:
        return response.body.decode(charset, errors)
    except LookupError:  # an unknown charset name: assume UTF-8
        return _text_utf8(response, errors)
    except UnicodeDecodeError:
        raise _Undecodable(f"not {declared} text") from None


def _text_utf8(response: UpstreamResponse, errors: str) -> str:
    try:
        return response.body.decode("utf-8-sig", errors)
    except UnicodeDecodeError:
        raise _Undecodable("not utf-8 text") from None


def _json(response: UpstreamResponse) -> object:
    if json_too_deep(response.body, MAX_UPSTREAM_JSON_DEPTH):  # every later step recurses per level
        raise UpstreamUnavailable(
            f"upstream answered JSON nested deeper than {MAX_UPSTREAM_JSON_DEPTH} levels; cannot apply outputParameters"
        )
    try:
        return loads(response.body)  # the hot path: UTF-8 JSON (big integers kept exact)
    except JSONDecodeError:
        charset = _charset(response)
        if charset in (None, "utf-8", "utf8") and not response.body.startswith(b"\xef\xbb\xbf"):
            raise
    return loads(_text(response))  # a byte-order mark or another declared charset


def _jsonable(value: object, budget: list[int]) -> object:
    """YAML data as JSON data: string keys, ISO dates, base64 bytes; bounded in size."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge(f"more than {MAX_NODES} values")
    if isinstance(value, dict):
        return {_key(k): _jsonable(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, budget) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)  # JSON encoders refuse integers this large
    return value


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return dumps(key).decode()
    if isinstance(key, (_dt.date, _dt.datetime)):
        return key.isoformat()
    return str(key)


# ------------------------------------------------------------------ formats


def _xml(response: UpstreamResponse, _schema: str | None) -> object:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(response.body)  # refuses entity declarations and external references
    except DefusedXmlException:
        raise _Undecodable("entity declarations and external references are refused") from None
    return _element(root)


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1] if name.startswith("{") else name.split(":")[-1]


def _element(el: Element) -> object:
    if not el.attrib and not len(el):  # a leaf: the common case, kept fast
        return (el.text or "").strip()
    node: dict[str, object] = {}
    for name, value in el.attrib.items():
        _put(node, _local(name), value)
    for child in el:
        if isinstance(child.tag, str):  # comments and processing instructions have callables as tags
            _put(node, _local(child.tag), _element(child))
    text = " ".join(t.strip() for t in _own_text(el) if t.strip())
    if not node:
        return text
    if text:
        _put(node, "", text)
    return node


def _own_text(el: Element) -> Iterator[str]:
    if el.text:
        yield el.text
    for child in el:
        if child.tail:
            yield child.tail


def _put(node: dict[str, object], key: str, value: object) -> None:
    if key not in node:
        node[key] = value
    else:
        seen = node[key]
        if isinstance(seen, list):
            seen.append(value)
        else:
            node[key] = [seen, value]


def _yaml(response: UpstreamResponse, _schema: str | None) -> object:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = list(yaml.load_all(_text(response), Loader=loader))
    data = None if not docs else docs[0] if len(docs) == 1 else docs
    return _jsonable(data, [MAX_NODES])


def _delimited(delimiter: str) -> Callable[[UpstreamResponse, str | None], object]:
    def decode_delimited(response: UpstreamResponse, _schema: str | None) -> object:
        reader = csv.reader(io.StringIO(_text(response), newline=""), delimiter=delimiter, strict=True)
        rows = [row for row in reader if any(cell.strip() for cell in row)]
        if not rows:
            return []
        return _rows_to_objects(rows[0], rows[1:])

    return decode_delimited


def _header(cells: list[str]) -> list[str]:
    """Row keys: a blank header cell is ``columnN``, a repeated one ``name_2``, ``name_3``…"""
    keys: list[str] = []
    for i, cell in enumerate(cells):
        key = base = cell.strip() or f"column{i + 1}"
        n = 1
        while key in keys:
            n += 1
            key = f"{base}_{n}"
        keys.append(key)
    return keys


def _rows_to_objects(header: list[str], rows: list[list[str]]) -> list[dict[str, str]]:
    keys = _header(header)
    return [{key: row[i] if i < len(row) else "" for i, key in enumerate(keys)} for row in rows]


# ------------------------------------------------------------------ html


def _html_parser(text: str) -> LexborHTMLParser:
    from selectolax.lexbor import (
        LexborHTMLParser,  # lexbor: a fast HTML5 parser with CSS selectors
    )

    return LexborHTMLParser(text)


def _check_selector(css: str) -> None:
    _html_parser("<p></p>").css(css)  # raises on a malformed selector


def _html(response: UpstreamResponse, selector: str | None) -> object:
    tree = _html_parser(_text(response, errors="replace"))
    if not selector:
        return {"tables": [_html_table(t) for t in tree.css("table")]}
    selected = tree.css(selector)
    tables, seen = [], set()
    for el in selected:
        for table in [el] if el.tag == "table" else el.css("table"):
            if table.mem_id not in seen:
                seen.add(table.mem_id)
                tables.append(_html_table(table))
    elements = [{"tag": el.tag, "text": _cell_text(el), "attributes": _attributes(el)} for el in selected]
    return {"tables": tables, "elements": elements}


def _attributes(el: LexborNode) -> dict[str, str]:
    return {k: "" if v is None else v for k, v in el.attributes.items()}


def _cell_text(el: LexborNode) -> str:
    return " ".join(el.text(deep=True, separator=" ").split())


def _span(cell: LexborNode) -> int:
    try:
        return max(1, min(int(cell.attributes.get("colspan") or 1), 1000))
    except ValueError:
        return 1


def _html_table(table: LexborNode) -> list[dict[str, str]]:
    """Rows of this table (not of tables nested in it) as objects keyed by the header row."""
    rows = []
    for section in table.iter():  # the HTML5 parser puts every row in a thead, tbody or tfoot
        if section.tag not in ("thead", "tbody", "tfoot"):
            continue
        for tr in section.iter():
            if tr.tag != "tr":
                continue
            texts = []
            for cell in tr.iter():
                if cell.tag in ("td", "th"):  # a colspan repeats the cell so later columns stay aligned
                    texts.extend([_cell_text(cell)] * _span(cell))
            if texts:
                rows.append((section.tag == "thead", texts))
    if not rows:
        return []
    header_at = next((i for i, (in_head, _) in enumerate(rows) if in_head), 0)
    header = rows[header_at][1]
    body = [texts for i, (in_head, texts) in enumerate(rows) if i != header_at and not in_head]
    return _rows_to_objects(header, body)


# ------------------------------------------------------------------ markdown

_SOURCEPOS = re.compile(r"^(\d+):\d+-(\d+):\d+$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _after_heading(lines: list[str], first: int) -> int:
    """The line after a heading starting at ``first`` (cmark-gfm misreports setext heading ends)."""
    if lines[first].lstrip(" ").startswith("#"):
        return first + 1
    for i in range(first + 1, len(lines)):
        if _SETEXT_UNDERLINE.match(lines[i]):
            return i + 1
    return first + 1


def _markdown(response: UpstreamResponse, heading_prefix: str | None) -> object:
    """GitHub-flavoured markdown via cmark-gfm (C), rendered to HTML with source positions and read
    back with the HTML parser: tables share the HTML table rules, sections keep their source."""
    import cmarkgfm
    from cmarkgfm.cmark import Options

    text = _text(response, errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    front: object = {}
    m = _FRONT_MATTER.match(text)
    if m:
        try:
            parsed = yaml.load(m.group(1), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            parsed = False  # not front matter after all: keep the text as markdown
        if parsed is None or isinstance(parsed, dict):
            front = _jsonable(parsed or {}, [MAX_NODES])
            text = text[m.end():]

    html = cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_SOURCEPOS)
    tree = _html_parser(html)
    lines = text.split("\n")
    headings = []  # (text, level, first content line, first line of the heading), 0-based
    for node in tree.body.iter() if tree.body is not None else ():
        if node.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            pos = _SOURCEPOS.match(node.attributes.get("data-sourcepos") or "")
            if pos and int(pos.group(1)) <= len(lines):
                first = int(pos.group(1)) - 1
                headings.append((_cell_text(node), int(node.tag[1]), _after_heading(lines, first), first))
    sections = []
    for n, (heading, level, start, _) in enumerate(headings):
        if heading_prefix and not heading.startswith(heading_prefix):
            continue
        end = headings[n + 1][3] if n + 1 < len(headings) else len(lines)
        sections.append({"heading": heading, "level": level, "content": "\n".join(lines[start:end]).strip()})
    return {"frontMatter": front, "tables": [_html_table(t) for t in tree.css("table")], "sections": sections}


@functools.lru_cache(maxsize=64)
def avro_schema(path: str) -> Schema:
    """The parsed ``.avsc`` at ``path`` (an absolute path, resolved at load), parsed once."""
    import fastavro

    with open(path, "rb") as handle:
        return fastavro.parse_schema(cast("Schema", loads(handle.read())))  # fastavro validates it


def _plain(value: object) -> object:
    """Avro values as JSON-like data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _avro(response: UpstreamResponse, schema_path: str | None) -> object:
    import fastavro

    stream = io.BytesIO(response.body)
    if response.body.startswith(b"Obj\x01"):  # an Object Container File carries its schema
        return _plain(list(fastavro.reader(stream)))
    if not schema_path:
        raise _Undecodable("a single Avro datum needs outputSchema, the .avsc schema file")
    value = fastavro.schemaless_reader(stream, avro_schema(schema_path), None)
    if stream.tell() != len(response.body):
        raise _Undecodable(f"{len(response.body) - stream.tell()} bytes left after the datum")
    return _plain(value)


def _protobuf(response: UpstreamResponse, schema: str | None) -> object:
    from naftiko.consumes.protobuf import decode as decode_protobuf

    if not schema:
        raise _Undecodable("no outputSchema")
    return decode_protobuf(response.body, schema)


_DECODERS: dict[str, Callable[[UpstreamResponse, str | None], object]] = {
    "json": lambda response, _schema: _json(response),
    "xml": _xml,
    "yaml": _yaml,
    "csv": _delimited(","),
    "tsv": _delimited("\t"),
    "psv": _delimited("|"),
    "html": _html,
    "markdown": _markdown,
    "avro": _avro,
    "protobuf": _protobuf,
}
