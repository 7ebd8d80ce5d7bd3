"""``forward`` on a REST resource: a narrow pass-through proxy to a consumes namespace (reference §8).

Compiled once at load into a :class:`ForwardPlan`; per request :meth:`ForwardPlan.build` only
checks the captured path, filters headers against precomputed sets and joins strings. The
proxy is deliberately conservative: the caller chooses the path below the target ``baseUri``
and nothing else — not the host, not a parent directory, not headers the capability did not
list in ``trustedHeaders``, and never the upstream credentials, which come from the consumes
``authentication``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote, unquote_plus

from naftiko.consumes.auth import OutboundAuth
from naftiko.consumes.transport import OutboundRequest, Transport, UpstreamResponse
from naftiko.document.model import ConsumesHttp, ForwardConfig
from naftiko.errors import InvalidInput
from naftiko.expressions.template import Template

# RFC 9110 §7.6.1 connection-specific headers, plus Proxy-* (matched by prefix) and the ones
# that describe this hop's framing or target rather than the message.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"})
NEVER_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
# Characters left as they are in a forwarded path: unreserved, sub-delims, ':', '@', '/' and
# '%' (so existing escapes are kept, never encoded twice). Anything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_DOT_SEGMENT = re.compile(r"(?:^|[/\\])\.\.?(?:[/\\]|$)")


def never_forwarded(name: str) -> bool:
    lowered = name.lower()
    return lowered in NEVER_FORWARDED or lowered.startswith("proxy-")


@dataclass(slots=True)
class ForwardPlan:
    namespace: str  # the target consumes namespace
    base_url: str  # normalised, no trailing '/'
    transport: Transport
    auth: OutboundAuth | None
    trusted: dict[str, str]  # lower-case name → spelling used upstream
    fixed_headers: list[tuple[str, str]]  # consumes-level header parameters with a value
    fixed_query: str  # consumes-level query parameters with a value, encoded
    timeout: float

    def url(self, tail: str, query: str) -> str:
        """``tail`` is the captured path exactly as received (still percent-encoded)."""
        url = self.base_url
        if tail:
            for segment in tail.split("/"):
                if _DOT_SEGMENT.search(unquote(segment)):
                    raise InvalidInput("the forwarded path must not contain '.' or '..' segments", field="path")
            # Re-quote only what is not allowed in a path (a raw '#', a space, non-ASCII bytes);
            # '%' is safe, so escapes the caller sent reach the upstream unchanged.
            url += "/" + quote(tail.lstrip("/").encode("latin-1"), safe=_PATH_SAFE)
        pairs = [p for p in (self.strip_auth_param(query), self.fixed_query) if p]
        if self.auth is not None and self.auth.query is not None:
            key, value = self.auth.query
            pairs.append(f"{quote(key, safe='')}={quote(value, safe='')}")
        return url + "?" + "&".join(pairs) if pairs else url

    def strip_auth_param(self, query: str) -> str:
        """The caller may not add a second API key next to the one the capability sends."""
        if not query or self.auth is None or self.auth.query is None:
            return query
        key = self.auth.query[0]
        return "&".join(p for p in query.split("&") if unquote_plus(p.split("=", 1)[0]) != key)

    def headers(self, raw: list[tuple[bytes, bytes]], has_body: bool) -> list[tuple[str, str]]:
        """Trusted inbound headers, then the capability's own (which replace same-named ones)."""
        own = {name.lower() for name, _ in self.fixed_headers}
        if self.auth is not None and self.auth.header is not None:
            own.add(self.auth.header[0].lower())
        dropped: set[str] = set()
        for name, value in raw:
            if name.lower() == b"connection":  # headers the caller marked as connection-specific
                dropped.update(t.strip().lower() for t in value.decode("latin-1").split(","))
        out: list[tuple[str, str]] = []
        for name, value in raw:
            lowered = name.decode("latin-1").lower()
            if lowered in dropped or lowered in own or never_forwarded(lowered):
                continue
            spelled = self.trusted.get(lowered)
            if spelled is None and has_body and lowered in ("content-type", "content-encoding"):
                spelled = lowered.title()  # describes the body, which passes unchanged
            if spelled is not None:
                out.append((spelled, value.decode("latin-1")))
        out.extend(self.fixed_headers)
        if self.auth is not None and self.auth.header is not None:
            out.append(self.auth.header)
        return out

    def build(
        self, method: str, tail: str, query: str, raw_headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> OutboundRequest:
        url = self.url(tail, query)
        return OutboundRequest(method, url, self.headers(raw_headers, body is not None), body, self.timeout)

    async def send(self, request: OutboundRequest) -> UpstreamResponse:
        return await self.transport.send(request)


def safe_response_headers(response: UpstreamResponse) -> dict[str, str]:
    return response.relayed_headers()


def compile_forward(
    config: ForwardConfig,
    entry: ConsumesHttp,
    base_url: str,
    transport: Transport,
    auth: OutboundAuth | None,
    binds: dict[str, dict[str, str]],
    timeout: float,
    warn: Callable[[int, str], None],
) -> ForwardPlan:
    """``config`` is the resource's ``ForwardConfig``, ``entry`` the target consumes model.

    ``warn(index, message)`` reports a trusted header that will never be forwarded anyway.
    """
    trusted: dict[str, str] = {}
    for i, name in enumerate(config.trustedHeaders):
        if never_forwarded(name):
            warn(i, f"trusted header '{name}' is connection-specific and is never forwarded")
            continue
        trusted[name.lower()] = name
    fixed_headers: list[tuple[str, str]] = []
    fixed_query: list[str] = []
    for p in entry.inputParameters:
        if p.value is None or p.in_ not in ("header", "query"):
            continue
        value = Template(str(p.value)).bind(binds).render_constant()
        if not value:
            continue
        if p.in_ == "header":
            fixed_headers.append((p.name, value))
        else:
            fixed_query.append(f"{quote(p.name, safe='')}={quote(value, safe='')}")
    return ForwardPlan(
        namespace=entry.namespace,
        base_url=base_url,
        transport=transport,
        auth=auth,
        trusted=trusted,
        fixed_headers=fixed_headers,
        fixed_query="&".join(fixed_query),
        timeout=timeout,
    )
