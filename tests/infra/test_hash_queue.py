"""The hash queue hands results to the event loop in pairs while sign-ins queue, and at once
otherwise (infra/hasher.py ``HashQueue``; docs/decisions/argon2-hashes-one-per-core.md)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sproutgate.infra.hasher import HashQueue
from support.waiting import wait_until

WAIT = 10.0  # seconds: a result that is never handed over fails the test instead of hanging it


def _blocker(gate: threading.Event, finished: list[int], n: int) -> int:
    """A blocking call that runs until ``gate`` opens, then records that call ``n`` ended."""
    if not gate.wait(WAIT):
        raise TimeoutError
    finished.append(n)
    return n


async def test_with_a_backlog_a_result_waits_for_the_next_one_and_both_arrive_together():
    q = HashQueue(threads=1, hand_over=2)
    gates = [threading.Event() for _ in range(4)]
    finished: list[int] = []
    calls = [asyncio.ensure_future(q.run(_blocker, gates[i], finished, i)) for i in range(4)]
    await asyncio.sleep(0.05)  # all four in line, call 0 running
    gates[0].set()
    # Call 0 ran; calls 1-3 wait in line, so its result is held for call 1's. (Up to WAIT for
    # the thread to get a core: on a loaded machine a fixed second was not always enough.)
    await wait_until(lambda: finished, WAIT, interval=0.01, what="call 0 to run")
    await asyncio.sleep(0.1)
    assert finished == [0]
    assert not calls[0].done()
    gates[1].set()
    assert await asyncio.wait_for(calls[0], WAIT) == 0
    assert calls[1].done() and calls[1].result() == 1
    assert finished == [0, 1]
    for gate in gates[2:]:
        gate.set()
    assert await asyncio.wait_for(asyncio.gather(*calls[2:]), WAIT) == [2, 3]


async def test_without_a_backlog_every_result_is_handed_over_at_once():
    q = HashQueue(threads=1, hand_over=2)
    gate = threading.Event()
    gate.set()
    for n in range(3):
        assert await asyncio.wait_for(q.run(_blocker, gate, [], n), WAIT) == n


async def test_the_last_of_an_odd_backlog_is_not_held():
    q = HashQueue(threads=1, hand_over=2)
    gate = threading.Event()
    calls = [asyncio.ensure_future(q.run(_blocker, gate, [], n)) for n in range(3)]
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*calls), WAIT) == [0, 1, 2]


async def test_a_held_result_is_handed_over_when_the_rest_of_the_line_went_away():
    q = HashQueue(threads=1, hand_over=2)
    gate = threading.Event()
    first = asyncio.ensure_future(q.run(_blocker, gate, [], 0))
    await asyncio.sleep(0.05)
    gone = asyncio.ensure_future(q.run(_blocker, gate, [], 1))
    await asyncio.sleep(0)
    gone.cancel()  # a client that went away while its call waited in line
    gate.set()
    assert await asyncio.wait_for(first, WAIT) == 0


async def test_errors_travel_in_a_pair_like_results():
    q = HashQueue(threads=1, hand_over=2)
    gate = threading.Event()

    def fails(n: int) -> int:
        gate.wait(WAIT)
        raise ValueError(n)

    calls = [asyncio.ensure_future(q.run(fails, n)) for n in range(2)]
    calls.append(asyncio.ensure_future(q.run(_blocker, gate, [], 2)))
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), WAIT)
    assert [type(r) for r in results[:2]] == [ValueError, ValueError]
    assert results[2] == 2


def test_a_hand_over_below_one_is_refused():
    with pytest.raises(ValueError):
        HashQueue(threads=1, hand_over=0)


async def test_close_ends_the_threads_after_the_calls_in_line_and_a_later_call_starts_new_ones():
    """``Services.aclose`` closes the hasher's queue: a process that builds many apps (the test
    suite) kept two idle threads per app before."""
    q = HashQueue(threads=2)
    gate = threading.Event()
    seen: list[threading.Thread] = []

    def held(n: int) -> int:
        seen.append(threading.current_thread())
        if not gate.wait(WAIT):
            raise TimeoutError
        return n

    calls = [asyncio.ensure_future(q.run(held, n)) for n in range(4)]
    await wait_until(lambda: len(seen) == 2, WAIT, interval=0.01, what="both threads to take a call")
    q.close()  # two calls running, two in line ahead of the stop marks
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*calls), WAIT) == [0, 1, 2, 3]
    await wait_until(lambda: not any(t.is_alive() for t in seen), WAIT, what="the threads to end")
    assert await asyncio.wait_for(q.run(lambda: 7), WAIT) == 7
    q.close()
    q.close()  # twice is harmless
