"""One computation shared by every concurrent caller, its result reused for a short while.

`/api/v1/status` asks the database a dozen questions and every model server three; four
hundred callers at once must cost one such round, not four hundred (each holding its
own sockets, sessions and result: that is how RSS grew by 600 MB).  Callers that arrive
while a round runs wait for it; callers within `ttl` seconds after it get its result.

    status = Coalesced(compute_status_bytes, ttl=2.0)
    body = await status.get()

A caller that goes away (its handler cancelled) does not cancel the shared round: the
others still want it.  A failed round is not kept: the next caller starts a new one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ai_sysadmin.tasks import stop_tasks

T = TypeVar("T")


class Coalesced(Generic[T]):
    def __init__(self, compute: Callable[[], Awaitable[T]], ttl: float, clock: Callable[[], float] = time.monotonic):
        self._compute = compute
        self._ttl = ttl
        self._clock = clock
        self._value: tuple[float, T] | None = None  # (computed at, value)
        self._round: asyncio.Task[T] | None = None

    async def get(self) -> T:
        if self._value is not None and self._clock() - self._value[0] < self._ttl:
            return self._value[1]
        if self._round is None:
            self._round = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._round)

    async def _run(self) -> T:
        try:
            value = await self._compute()
            self._value = (self._clock(), value)
            return value
        finally:
            self._round = None

    async def aclose(self) -> None:
        """Cancel a round in progress (server shutdown)."""
        task, self._round = self._round, None
        await stop_tasks(task)
