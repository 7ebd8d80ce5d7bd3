"""Fetching several pages of a paginated list and merging them (docs/reference.md, "Pagination").

A consumed operation says how its upstream paginates (:class:`Paging`: cursor, page number or
``Link`` header, and where the items are); an exposed unit opts in with its caps
(:class:`Caps`). The unit is then a :class:`PagedCallUnit`: without the ``pages`` argument it is
exactly the plain call; with ``pages: N`` or ``pages: "all"`` it follows the pages, up to the
caps on pages, items and time, concatenates the items into the first page's document, shapes
that like a single answer and adds ``pagination: {pages, items, complete, stoppedBy}``.

A loop that does not advance (the same cursor, link or page twice) stops at once with a 502
naming the operation, rather than fetching the same page up to the cap.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import re
from urllib.parse import urljoin, urlsplit

from naftiko.consumes.transport import OutboundRequest, UpstreamResponse
from naftiko.engine.result import JsonAnswer, Result
from naftiko.engine.simple import Call, CallUnit, decode_off_loop, upstream_failure
from naftiko.engine.unit import Binds, Inputs
from naftiko.errors import InvalidInput, UpstreamUnavailable
from naftiko.expressions.names import find_name
from naftiko.expressions.template import Scope

PAGES_ARGUMENT = "pages"
PAGES_PROPERTY = {
    "description": 'Fetch this many pages of the list (or "all"), up to the capability\'s caps, merged into one '
    "result whose 'pagination' field says whether it is complete. Default: one page, as the upstream answers.",
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["all"]}],
}
PAGINATION_OUTPUT = {
    "type": "object",
    "properties": {
        "pages": {"type": "integer"},
        "items": {"type": "integer"},
        "complete": {"type": "boolean"},
        "stoppedBy": {"type": ["string", "null"]},
    },
}
_SIMPLE_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_\-]*)*\.?$")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")


class PaginationError(UpstreamUnavailable):
    """The upstream's pages cannot be followed (no progress, a foreign next link, no item list)."""


def simple_path(text: str) -> tuple[str, ...] | None:
    """``$.a.b`` → ``("a", "b")``; ``$`` → ``()``; anything fancier → None (it cannot be written to)."""
    text = text.strip()
    if not _SIMPLE_PATH.match(text):
        return None
    return tuple(part for part in text[1:].split(".") if part)


def get_path(document: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def set_path(document: object, path: tuple[str, ...], value: object) -> object:
    """``document`` with ``value`` at ``path`` (``()`` replaces the whole document)."""
    if not path:
        return value
    node = document
    for key in path[:-1]:
        if not isinstance(node, dict):
            return document
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value
    return document


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 ``Link`` header."""
    if not header:
        return None
    for target, params in _LINK.findall(header):
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return str(target).strip()
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Paging:
    """How one consumed operation paginates."""

    style: str  # cursor | page | link
    items: tuple[str, ...]  # where each page's item list is
    next: tuple[str, ...] = ()  # cursor: where the next cursor is in a page
    param: str = ""  # cursor/page: the request parameter carrying it
    in_body: bool = False  # the parameter is a field of the JSON body argument ``body_param``
    body_param: str = ""
    start: int = 1  # page: the first page's number


@dataclasses.dataclass(frozen=True, slots=True)
class Caps:
    """What an exposed unit allows one request to fetch."""

    max_pages: int = 10
    max_items: int = 1000
    timeout: float = 30.0


def requested_pages(value: object, caps: Caps) -> int:
    if value == "all":
        return caps.max_pages
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(
            f"'{PAGES_ARGUMENT}' must be a positive integer or \"all\", got {value!r}", field=PAGES_ARGUMENT
        )
    return min(value, caps.max_pages)


@dataclasses.dataclass(slots=True)
class PagedCallUnit:
    """A simple-mode unit whose consumed operation paginates; ``pages`` opts a request in."""

    inner: CallUnit
    paging: Paging
    caps: Caps

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def aliases(self) -> frozenset[str]:
        return self.inner.aliases

    @property
    def binds(self) -> Binds:
        return self.inner.binds

    @property
    def calls(self) -> list[Call]:
        return self.inner.calls

    @property
    def passthrough(self) -> bool:
        return self.inner.passthrough

    async def invoke(self, inputs: Inputs) -> Result:
        key = find_name(inputs, PAGES_ARGUMENT)
        if key is None:
            return await self.inner.invoke(inputs)
        inputs = dict(inputs)
        wanted = requested_pages(inputs.pop(key), self.caps)
        return await self._collect(inputs, wanted)

    async def _collect(self, inputs: Inputs, wanted: int) -> Result:
        call, paging, caps = self.inner.call, self.paging, self.caps
        target = call.target
        scope = Scope(inputs, aliases=self.inner.aliases, binds=self.inner.binds)
        args = call.arguments(inputs, scope)
        page_number = paging.start
        if paging.style == "page":
            args = self._with_param(args, page_number)
        request = target.request.build(args, scope)
        deadline = asyncio.get_running_loop().time() + caps.timeout
        first: object = None
        items: list[object] = []
        pages, stopped, complete = 0, None, False
        seen: set[str] = set()
        previous: object = None
        while True:
            response = await self._send(request, deadline, first_page=not pages)
            if response is None:
                stopped = "timeout"
                break
            if response.status >= 400:
                return upstream_failure(response)  # reported faithfully, whatever came before
            document = await decode_off_loop(response, target) if response.body.strip() else None
            if pages and document == previous:
                raise PaginationError(
                    f"pagination of {target.request.target} did not advance: page {pages + 1} repeats page {pages}"
                )
            previous = document
            page_items = self._page_items(document)
            pages += 1
            if first is None:
                first = copy.deepcopy(document) if document is not None else {}
            room = caps.max_items - len(items)
            items.extend(page_items[:room])
            following = self._next(document, response.headers.get("link"), request, page_number, bool(page_items))
            if following is None:
                complete = len(page_items) <= room
                stopped = None if complete else "maxItems"
                break
            stopped = self._stop(len(page_items), room, pages, wanted)
            if stopped is not None:
                break
            token, value = following
            if token in seen:
                raise PaginationError(
                    f"pagination of {target.request.target} did not advance: "
                    f"the upstream sent the same next {paging.style} twice"
                )
            seen.add(token)
            if paging.style == "link":
                request = dataclasses.replace(request, url=token)  # a link is its own identity
            else:
                page_number += 1
                args = self._with_param(args, value if paging.style == "cursor" else page_number)
                request = target.request.build(args, scope)
        return self._answer(first, previous, items, pages, stopped, complete)

    async def _send(self, request: OutboundRequest, deadline: float, *, first_page: bool) -> UpstreamResponse | None:
        """One page within what is left of the pagination timeout; None when time ran out after the first."""
        target = self.inner.call.target
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(deadline - loop.time(), 0.001)):
                return await target.transport.send(request)
        except TimeoutError:
            if first_page:
                raise UpstreamUnavailable(
                    f"{target.request.target}: no page within {self.caps.timeout:g}s (pagination timeout)"
                ) from None
            return None

    def _page_items(self, document: object) -> list[object]:
        """The page's item list (none: an empty page); anything else there is an error."""
        page_items = get_path(document, self.paging.items)
        if page_items is None:
            return []
        if not isinstance(page_items, list):
            raise PaginationError(
                f"pagination of {self.inner.call.target.request.target}: "
                f"the items at ${''.join('.' + p for p in self.paging.items)} are not a list"
            )
        return page_items

    def _stop(self, page_size: int, room: int, pages: int, wanted: int) -> str | None:
        """Why collecting stops although there is a next page, or None to go on."""
        if page_size >= room:
            return "maxItems"
        if pages >= wanted:
            return "maxPages" if wanted == self.caps.max_pages else "pages"
        return None

    def _answer(
        self, first: object, previous: object, items: list[object], pages: int, stopped: str | None, complete: bool
    ) -> JsonAnswer:
        """The first page with every collected item in place, shaped, plus the ``pagination`` summary."""
        paging = self.paging
        merged = set_path(first, paging.items, items)
        if paging.style == "cursor" and paging.next:  # where to resume, unless items were cut mid-page
            resume = None if complete or stopped == "maxItems" else get_path(previous, paging.next)
            merged = set_path(merged, paging.next, resume)
        value = self.inner.shape(merged)
        summary = {"pages": pages, "items": len(items), "complete": complete, "stoppedBy": stopped}
        if isinstance(value, dict):
            return JsonAnswer(200, {**value, "pagination": summary})
        return JsonAnswer(200, {"items": value, "pagination": summary})

    def _with_param(self, args: dict[str, object], value: object) -> dict[str, object]:
        paging = self.paging
        if paging.in_body:
            body = args.get(paging.body_param)
            return {**args, paging.body_param: {**(body if isinstance(body, dict) else {}), paging.param: value}}
        return {**args, paging.param: value}

    def _next(
        self, document: object, link: str | None, request: OutboundRequest, page: int, had_items: bool
    ) -> tuple[str, object] | None:
        """``(identity, value)`` of the next page, or None when this page is the last."""
        paging = self.paging
        if paging.style == "cursor":
            cursor = get_path(document, paging.next)
            if cursor is None or cursor == "" or cursor is False:
                return None
            return str(cursor), cursor
        if paging.style == "page":
            return (str(page + 1), page + 1) if had_items else None
        target = next_link(link)
        if not target:
            return None
        url = urljoin(request.url, target)
        here, there = urlsplit(request.url), urlsplit(url)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            raise PaginationError(
                f"pagination of {self.inner.call.target.request.target}: "
                f"the next link leaves {here.scheme}://{here.hostname}; "
                "not followed (the request carries the capability's credentials)"
            )
        return url, url
