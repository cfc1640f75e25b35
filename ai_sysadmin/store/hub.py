"""A fleet member's writes to the hub's PostgreSQL: its metrics and unit states, as its own role.

The member's role (store/fleet.py) may INSERT only rows of its own host, and PostgreSQL
refuses COPY under row-level security: so one multi-row INSERT per reading, every row
naming the member's host.  The hub is another machine: when it cannot be reached the
member keeps nothing (its journal, which journal-upload resends from its cursor, is the
record); samples are dropped with one warning per outage, the next connection is tried
after a backoff that doubles up to `MAX_BACKOFF`, and the first write that works again
says how much was dropped.  Memory does not grow with the outage: nothing is queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import psycopg

from ai_sysadmin.store.metrics import Sample

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0  # seconds between tries at most, however long the hub is away


async def insert_metrics(conn: psycopg.AsyncConnection, host: str, samples: Sequence[Sample]) -> None:
    """One INSERT of `samples` as rows of `host` (COPY is refused under row-level security)."""
    if not samples:
        return
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(samples))  # placeholders only
    args: list[object] = []
    for s in samples:
        args += [datetime.fromtimestamp(s.ts, UTC), s.name, s.subject, s.value, host]
    await conn.execute(f"INSERT INTO metrics (ts, name, subject, value, host) VALUES {values}", args)


class HubMetrics:
    """The member's metric sink on the hub: writes while the hub answers, drops while it does not."""

    def __init__(
        self,
        host: str,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection]],
        *,
        first_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.host = host
        self._connect = connect
        self._first_backoff = first_backoff
        self._clock = clock
        self._conn: psycopg.AsyncConnection | None = None
        self._backoff = 0.0
        self._next_try = 0.0
        self.dropped = 0  # batches dropped in the current outage (0 when the hub answers)
        self.outages = 0  # outages seen (one warning each)

    async def write(self, samples: Sequence[Sample]) -> str:
        """'stored' or 'dropped' (hub unreachable); never raises for an outage."""
        if self._conn is None and self._clock() < self._next_try:
            self.dropped += 1  # waiting out the backoff: not even a connection attempt
            return "dropped"
        try:
            if self._conn is None:
                self._conn = await self._connect()
            await insert_metrics(self._conn, self.host, samples)
        except psycopg.OperationalError as exc:
            await self._lost(exc)
            return "dropped"
        if self.dropped or self._backoff:
            log.warning(
                "hub database reachable again: metrics of host %s written again (%d readings dropped meanwhile)",
                self.host,
                self.dropped,
            )
        self.dropped = 0
        self._backoff = 0.0
        return "stored"

    async def _lost(self, exc: Exception) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if not self._backoff:
            self.outages += 1
            log.warning(
                "hub database unreachable (%s): dropping host %s's metrics until it is back (the journal "
                "upload keeps its own cursor); retrying with backoff up to %.0fs",
                (str(exc).strip().splitlines() or [type(exc).__name__])[-1],
                self.host,
                MAX_BACKOFF,
            )
        self.dropped += 1
        self._backoff = min(MAX_BACKOFF, self._backoff * 2 if self._backoff else self._first_backoff)
        self._next_try = self._clock() + self._backoff

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
