"""Metric time series: typed samples in, COPY batches through the writer, range queries out.

Both storage paths (TimescaleDB hypertable, native partitions) answer the same SQL:
the planner prunes to the partitions/chunks of the asked range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence

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

    async def query(self, name: str, since: datetime, until: datetime | None = None,
                    subject: str | None = None) -> list[Point]:
        until = until or datetime.now(timezone.utc)
        q = "SELECT ts, subject, value FROM metrics WHERE name = %s AND ts >= %s AND ts < %s"
        params: list[object] = [name, since, until]
        if subject is not None:
            q += " AND subject = %s"
            params.append(subject)
        async with self._writer.pool.connection() as conn:
            cur = await conn.execute(q + " ORDER BY ts", params)
            return [Point(*row) for row in await cur.fetchall()]

    async def last_hour(self, name: str, subject: str | None = None) -> list[Point]:
        now = datetime.now(timezone.utc)
        return await self.query(name, now - timedelta(hours=1), now + timedelta(seconds=1), subject)

    async def summary(self, since: datetime) -> list[tuple[str, str, float, float, float]]:
        """(name, subject, min, avg, max) per series since `since` -- what L2 puts in context."""
        async with self._writer.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name, subject, min(value), avg(value), max(value) FROM metrics WHERE ts >= %s "
                "GROUP BY name, subject ORDER BY name, subject", (since,))
            return [tuple(r) for r in await cur.fetchall()]  # type: ignore[misc]
