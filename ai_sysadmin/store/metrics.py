"""Metric time series: typed samples in, COPY batches through the writer, range queries out.

Both storage paths (TimescaleDB hypertable, native partitions) answer the same SQL:
the planner prunes to the partitions/chunks of the asked range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ai_sysadmin.store.spool import Batch
from ai_sysadmin.store.writer import StoreWriter


@dataclass(frozen=True)
class Sample:
    ts: float  # epoch seconds (UTC)
    name: str  # e.g. "cpu.percent", "disk.used_percent"
    value: float
    subject: str = ""  # what it is about: a mount point, an interface, a unit ("" for the host)


@dataclass(frozen=True)
class Point:
    ts: datetime
    subject: str
    value: float


class MetricStore:
    def __init__(self, writer: StoreWriter):
        self._writer = writer

    async def write(self, samples: Sequence[Sample]) -> str:
        """One batch (one COPY); 'stored', 'spooled', or 'dropped' from a full spool."""
        for s in samples:
            if not s.name:
                raise ValueError(f"metric sample at {s.ts} has an empty name")
        rows = [[s.ts, s.name, s.subject, s.value] for s in samples]
        return await self._writer.submit(Batch("metrics", {"rows": rows}))

    async def query(
        self, name: str, since: datetime, until: datetime | None = None, subject: str | None = None
    ) -> list[Point]:
        until = until or datetime.now(UTC)
        q = "SELECT ts, subject, value FROM metrics WHERE name = %s AND ts >= %s AND ts < %s"
        params: list[object] = [name, since, until]
        if subject is not None:
            q += " AND subject = %s"
            params.append(subject)
        async with self._writer.pool.connection() as conn:
            cur = await conn.execute(q + " ORDER BY ts", params)
            return [Point(*row) for row in await cur.fetchall()]

    async def last_hour(self, name: str, subject: str | None = None) -> list[Point]:
        now = datetime.now(UTC)
        return await self.query(name, now - timedelta(hours=1), now + timedelta(seconds=1), subject)

    async def summary(self, since: datetime) -> list[tuple[str, str, float, float, float]]:
        """(name, subject, min, avg, max) per series since `since` -- what L2 puts in context."""
        async with self._writer.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name, subject, min(value), avg(value), max(value) FROM metrics WHERE ts >= %s "
                "GROUP BY name, subject ORDER BY name, subject",
                (since,),
            )
            return [tuple(r) for r in await cur.fetchall()]


# A row's host: the one asked for, else the store's local host (migration 9: rows that name
# no host are the host that migrated the database).
HOST_IS = "host = coalesce(%s, (SELECT value FROM store_settings WHERE key = 'local_host'))"


async def failed_units(conn: Any, max_age: float, host: str | None = None) -> frozenset[str] | None:
    """The units the collector of `host` (None: the local host) last saw failed, at its newest
    `units.failed` sample no older than `max_age` seconds; None when there is none (unit state unknown)."""
    newest = await failed_units_at(conn, max_age, host)
    return None if newest is None else newest[1]


async def failed_units_at(conn: Any, max_age: float, host: str | None = None) -> tuple[datetime, frozenset[str]] | None:
    """(when, failed units) of `host`'s newest unit reading no older than `max_age` seconds."""
    cur = await conn.execute(
        f"SELECT ts FROM metrics WHERE name = 'units.failed' AND {HOST_IS} AND ts > now() - "
        "make_interval(secs => %s) ORDER BY ts DESC LIMIT 1",
        (host, max_age),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    cur = await conn.execute(
        f"SELECT subject FROM metrics WHERE name = 'unit.failed' AND {HOST_IS} AND ts = %s", (host, row[0])
    )
    return row[0], frozenset(r[0] for r in await cur.fetchall())


async def first_and_last(
    conn: Any, names: Sequence[str], host: str | None = None
) -> list[tuple[str, str, float, float]]:
    """(name, subject, last value, first value) of each series of `names` of `host` (None: the local
    host) in the last 30 minutes (60 at most)."""
    cur = await conn.execute(
        "SELECT name, subject, (array_agg(value ORDER BY ts DESC))[1], (array_agg(value ORDER BY ts))[1] "
        f"FROM metrics WHERE ts > now() - interval '30 minutes' AND name = ANY(%s) AND {HOST_IS} "
        "GROUP BY name, subject ORDER BY name, subject LIMIT 60",
        (list(names), host),
    )
    return [(n, s, last, first) for n, s, last, first in await cur.fetchall()]
