"""The gate in front of the upstream: both bounds hold at every instant, and a client
that leaves never takes or leaks a slot."""

from __future__ import annotations

import asyncio

import pytest

from relay_serve._limits import Gate, Overloaded


async def test_a_released_slot_goes_to_the_first_waiter_not_to_a_newcomer() -> None:
    seen: list[tuple[int, int]] = []
    gate = Gate(1, 1, on_change=lambda running, waiting: seen.append((running, waiting)))
    await gate.acquire()
    waiter = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    assert (gate.in_flight, gate.waiting) == (1, 1)
    gate.release()
    # The waiter has not run yet, but the slot is already its own: a newcomer queues
    # behind it instead of taking it, and the one after that is refused.
    newcomer = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    assert (gate.in_flight, gate.waiting) == (1, 1)
    with pytest.raises(Overloaded):
        await gate.acquire()
    await waiter
    assert not newcomer.done()
    gate.release()
    await newcomer
    gate.release()
    assert (gate.in_flight, gate.waiting) == (0, 0)
    assert all(running <= 1 and waiting <= 1 for running, waiting in seen)


async def test_a_waiter_that_leaves_takes_no_slot() -> None:
    gate = Gate(1, 2)
    await gate.acquire()
    leaving = asyncio.ensure_future(gate.acquire())
    staying = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.gather(leaving, return_exceptions=True)
    assert (gate.in_flight, gate.waiting) == (1, 1)
    gate.release()
    await staying
    assert (gate.in_flight, gate.waiting) == (1, 0)


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_passes_on() -> None:
    gate = Gate(1, 2)
    await gate.acquire()
    first = asyncio.ensure_future(gate.acquire())
    second = asyncio.ensure_future(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # the slot is now first's...
    first.cancel()  # ...which is cancelled before it could run
    await asyncio.gather(first, return_exceptions=True)
    await second
    assert (gate.in_flight, gate.waiting) == (1, 0)
    gate.release()
    assert (gate.in_flight, gate.waiting) == (0, 0)


async def test_many_clients_never_exceed_either_bound() -> None:
    seen: list[tuple[int, int]] = []
    gate = Gate(4, 6, on_change=lambda running, waiting: seen.append((running, waiting)))
    refused = 0

    async def client() -> None:
        nonlocal refused
        try:
            async with gate.slot():
                await asyncio.sleep(0.001)
        except Overloaded:
            refused += 1

    await asyncio.gather(*(client() for _ in range(200)))
    assert refused > 0
    assert max(running for running, _ in seen) == 4
    assert max(waiting for _, waiting in seen) == 6
    assert (gate.in_flight, gate.waiting) == (0, 0)
