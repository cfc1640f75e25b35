"""Coalesced: concurrent callers share one computation; a caller that leaves does not cancel it."""

from __future__ import annotations

import asyncio

import pytest

from ai_sysadmin.api.coalesce import Coalesced


def test_concurrent_callers_share_one_round_and_reuse_it_within_ttl() -> None:
    now = [0.0]
    rounds = 0
    release = asyncio.Event()

    async def compute() -> bytes:
        nonlocal rounds
        rounds += 1
        await release.wait()
        return b"doc %d" % rounds

    async def go() -> None:
        c = Coalesced(compute, ttl=2.0, clock=lambda: now[0])
        callers = [asyncio.ensure_future(c.get()) for _ in range(400)]
        await asyncio.sleep(0)
        callers[0].cancel()  # one client hangs up: the others still get the shared round
        release.set()
        results = await asyncio.gather(*callers[1:])
        assert set(results) == {b"doc 1"} and rounds == 1
        now[0] = 1.9
        assert await c.get() == b"doc 1" and rounds == 1
        now[0] = 2.1
        assert await c.get() == b"doc 2" and rounds == 2

    asyncio.run(go())


def test_a_failed_round_is_not_kept() -> None:
    outcomes = [RuntimeError("database down"), b"ok"]

    async def compute() -> bytes:
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    async def go() -> None:
        c = Coalesced(compute, ttl=60.0)
        with pytest.raises(RuntimeError):
            await c.get()
        assert await c.get() == b"ok"

    asyncio.run(go())
