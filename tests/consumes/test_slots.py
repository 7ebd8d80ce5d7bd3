"""The slots that bound an upstream's calls in flight (consumes/transport.Slots): a free slot is
taken at once, a released one goes to the longest waiter, and a wait that times out or is
cancelled leaves nothing behind (no slot lost, none handed to a caller that left)."""

from __future__ import annotations

import asyncio

import pytest

from naftiko.consumes.transport import Slots


async def test_free_slots_are_taken_at_once_and_given_back():
    slots = Slots(2)
    assert slots.take() and slots.take()
    assert not slots.take()  # both in use
    slots.release()
    assert slots.take()
    slots.release()
    slots.release()
    assert slots.free == 2 and not slots.waiters


async def test_a_released_slot_goes_to_the_longest_waiter_first():
    slots = Slots(1)
    assert slots.take()
    order: list[str] = []

    async def wait(name: str) -> None:
        await slots.wait()
        order.append(name)

    first = asyncio.create_task(wait("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0)
    assert not slots.take()  # someone is waiting: a newcomer does not jump the queue
    slots.release()
    await first
    assert order == ["first"] and slots.free == 0  # the slot changed hands
    slots.release()
    await second
    assert order == ["first", "second"]
    slots.release()
    assert slots.free == 1 and not slots.waiters


async def test_a_wait_that_times_out_leaves_no_waiter_and_loses_no_slot():
    slots = Slots(1)
    assert slots.take()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await slots.wait()
    assert not slots.waiters
    slots.release()
    assert slots.free == 1 and slots.take()


async def test_a_slot_handed_to_a_waiter_that_is_cancelled_passes_on():
    slots = Slots(1)
    assert slots.take()
    leaving = asyncio.create_task(slots.wait())
    staying = asyncio.create_task(slots.wait())
    await asyncio.sleep(0)
    slots.release()  # handed to `leaving`…
    leaving.cancel()  # …which is cancelled before it runs: the slot goes to `staying`
    with pytest.raises(asyncio.CancelledError):
        await leaving
    await asyncio.wait_for(staying, 1)
    slots.release()
    assert slots.free == 1 and not slots.waiters
