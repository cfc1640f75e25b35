"""Native daily range partitions of `metrics` (the path used when TimescaleDB is absent).

One partition per UTC day, `metrics_pYYYYMMDD`, created on demand before rows for a
new day are copied in, plus a few days ahead by the maintenance job.  Dropping a whole
partition is how retention removes old metrics: instant, and no table bloat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from ai_sysadmin.store.migrations import BACKEND_PARTITIONS, metrics_backend

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^metrics_p(\d{8})$")
PARTITION_LOCK = 0x61695F70617274  # advisory lock key ("ai_part"), distinct from the migration lock


def partition_name(day: date) -> str:
    return f"metrics_p{day:%Y%m%d}"


class MetricPartitions:
    """Knows which daily partitions exist (a cache per process) and creates missing ones.

    A day counts as existing only once the transaction that created it has committed
    (`mark_known`, called by the writer after commit): a rolled-back CREATE must not
    leave the cache believing in a partition that is not there.
    """

    def __init__(self) -> None:
        self._known: set[date] = set()
        self._backend: str | None = None

    async def backend(self, conn: psycopg.AsyncConnection) -> str | None:
        if self._backend is None:
            self._backend = await metrics_backend(conn)
        return self._backend

    def mark_known(self, days: Iterable[date]) -> None:
        """The transaction that ran `ensure` for `days` committed: they exist now."""
        self._known.update(days)

    async def ensure(self, conn: psycopg.AsyncConnection, days: Iterable[date]) -> set[date]:
        """Create missing daily partitions in the caller's transaction; returns the days handled.

        The caller passes the result to `mark_known` once its transaction has committed.
        """
        missing = set(days) - self._known
        if not missing or await self.backend(conn) != BACKEND_PARTITIONS:
            return set()
        # Two writers (the collector's batch and the retention job) may create the same
        # day at once; IF NOT EXISTS alone still lets the second fail on the catalog, so
        # creation is serialised until the caller's transaction ends.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
        for day in sorted(missing):
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            stmt = sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF metrics FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(partition_name(day)), sql.Literal(start), sql.Literal(start + timedelta(days=1))
            )
            try:
                async with conn.transaction():  # savepoint: a refusal must not abort the caller's batch
                    await conn.execute(stmt)
            except psycopg.errors.CheckViolation:
                # Rows of that day already sit in metrics_default (written before the
                # partition existed); they stay there until retention empties it.
                log.warning("metrics for %s stay in metrics_default (it already holds rows of that day)", day)
        return missing

    async def existing(self, conn: psycopg.AsyncConnection) -> dict[date, str]:
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'metrics'::regclass"
        )
        out: dict[date, str] = {}
        for (name,) in await cur.fetchall():
            m = _NAME_RE.match(name)
            if m:
                out[datetime.strptime(m.group(1), "%Y%m%d").date()] = name
        return out

    async def expired(self, conn: psycopg.AsyncConnection, cutoff: date) -> list[tuple[date, str]]:
        """Daily partitions wholly before `cutoff`, oldest first."""
        return [(day, name) for day, name in sorted((await self.existing(conn)).items()) if day < cutoff]

    async def drop(self, conn: psycopg.AsyncConnection, day: date, name: str) -> None:
        """Drop one partition in the caller's (short) transaction; forgotten only after it commits."""
        self._known.discard(day)  # a rollback leaves it existing: ensure() then re-checks harmlessly
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
