"""Retrying an upstream call: idempotent methods, transient failures, bounded waits.

Only GET, HEAD, PUT, DELETE and OPTIONS are retried — sending them twice cannot do harm — and
only when the failure says "try again": the connection could not be made or broke, or the
upstream answered 429, 502, 503 or 504. Waits grow exponentially with jitter (so a crowd of
callers does not retry in lockstep), a ``Retry-After`` from the upstream is honoured when it
fits within ``maxDelay``, and no wait may cross the call's deadline: ``timeouts.total`` bounds
the whole call, retries included (docs/resilience.md).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

from naftiko.errors import EngineError

if TYPE_CHECKING:
    from naftiko.document.model import ResilienceRetries

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class Answer(Protocol):
    """What a retry decision reads of an upstream response: its status and (lower-case) headers."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


AnswerT = TypeVar("AnswerT", bound=Answer)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max: int  # retries after the first attempt
    backoff: float  # seconds before the first retry; doubles each time
    max_delay: float  # no single wait is longer; a longer Retry-After gives up
    statuses: frozenset[int]
    connect: bool  # retry connection failures

    @classmethod
    def from_model(cls, retries: ResilienceRetries) -> RetryPolicy:
        return cls(
            max=retries.max,
            backoff=retries.backoff,
            max_delay=retries.maxDelay,
            statuses=frozenset(x for x in retries.when if isinstance(x, int)),
            connect="connect" in retries.when,
        )

    def backoff_delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Equal jitter: half the exponential step, plus a random share of the other half."""
        step = min(self.max_delay, self.backoff * 2.0**retry)
        return step / 2 + rand() * step / 2


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def with_retries(
    attempt: Callable[[float], Awaitable[AnswerT]],
    policy: RetryPolicy,
    deadline: float,
    connection_errors: tuple[type[EngineError], ...],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AnswerT:
    """Run ``attempt(deadline)`` until it gives a final answer.

    A response whose status is not retryable, the last allowed attempt, or a wait that would
    cross ``deadline`` ends the loop: the last response is returned as it came (its status and
    body stay faithful) or the last connection error is raised, noting the attempts made.
    """
    retry = 0
    while True:
        error: EngineError | None = None
        response: AnswerT | None = None
        try:
            response = await attempt(deadline)
        except connection_errors as exc:
            if not policy.connect:
                raise
            error = exc
        if response is not None and response.status not in policy.statuses:
            return response
        wait: float | None = None
        if retry < policy.max:
            wait = policy.backoff_delay(retry)
            if response is not None:
                asked = retry_after_seconds(response.headers.get("retry-after"))
                if asked is not None:
                    wait = asked if asked <= policy.max_delay else None  # the upstream wants longer: give up
        if wait is None or clock() + wait >= deadline:
            if error is not None:
                if retry:
                    error.detail = f"{error.detail} (after {retry + 1} attempts)"
                    error.args = (error.detail,)
                raise error
            assert response is not None  # no connection error: the attempt answered
            return response
        await sleep(wait)
        retry += 1
