"""The retention job: per table family, drop what is older than `retention.*_days`.

metrics  -> whole daily partitions (or TimescaleDB chunks) dropped; partitions for the
            next days created ahead so the hot path rarely runs DDL
events   -> triggers not attached to an incident, LLM call accounting
batch ids-> `ingest_batches` rows only guard replays of the outage spool: kept one day,
            or longer while this host's spool still holds batches from before then
audit    -> never: the audit log is append-only for every role (migration 6); no setting
            lets a transaction delete from it, so `retention.audit_days` is ignored
per host -> `retention.hosts` (a fleet hub): a host's shorter `metrics_days` deletes that
            host's rows from the partitions still kept (a partition holds every host's
            day, so none can keep longer than the global drop); a host's `events_days`
            replaces the global one for its triggers (llm_calls have no host)

It must never stall ingestion, so every step is its own short transaction:
* `lock_timeout` on each: a DROP that would queue behind (and so in front of) L1's or
  the collector's writes gives up after LOCK_TIMEOUT and is retried on the next run;
* deletes go in batches of `batch_rows` rows, each committed on its own, so no lock
  is held across a bulk delete and the partition lock (taken to create partitions) is
  released before any drop or delete starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import RetentionConfig
from ai_sysadmin.store.migrations import BACKEND_TIMESCALE
from ai_sysadmin.store.partitions import MetricPartitions

log = logging.getLogger(__name__)

BATCH_ID_KEEP = timedelta(days=1)
DAYS_AHEAD = 2
LOCK_TIMEOUT = "2s"
DELETE_BATCH = 5000


@dataclass
class RetentionReport:
    dropped_partitions: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # steps that hit lock_timeout; retried next run


async def run_retention(
    pool: AsyncConnectionPool,
    cfg: RetentionConfig,
    partitions: MetricPartitions,
    now: datetime | None = None,
    *,
    spooled_since: datetime | None = None,
    batch_rows: int = DELETE_BATCH,
    lock_timeout: str = LOCK_TIMEOUT,
) -> RetentionReport:
    """One retention pass.  `spooled_since`: when the oldest batch still in this host's spool was spooled."""
    now = now or datetime.now(UTC)
    report = RetentionReport()
    job = _Job(pool, report, batch_rows, lock_timeout)
    today = now.date()

    async def create_ahead(conn: psycopg.AsyncConnection) -> None:
        created = await partitions.ensure(conn, [today + timedelta(days=d) for d in range(DAYS_AHEAD + 1)])
        job.after_commit = lambda: partitions.mark_known(created)

    await job.step("create partitions", create_ahead)
    if cfg.metrics_days:
        cutoff = today - timedelta(days=cfg.metrics_days)
        cutoff_ts = _midnight(cutoff)
        async with pool.connection() as conn:
            backend = await partitions.backend(conn)
            expired = [] if backend == BACKEND_TIMESCALE else await partitions.expired(conn, cutoff)
        if backend == BACKEND_TIMESCALE:
            await job.step(
                "drop chunks",
                lambda c: c.execute("SELECT drop_chunks('metrics', older_than => %s::timestamptz)", (cutoff_ts,)),
            )
        else:
            for day, name in expired:
                if await job.step(f"drop {name}", lambda c, d=day, n=name: partitions.drop(c, d, n)):
                    report.dropped_partitions.append(name)
            await job.delete("metrics_default", "ts < %s", cutoff_ts)
    await _host_metrics(job, cfg, today)
    await _events(job, cfg, now)
    keep_from = min(now, spooled_since) if spooled_since else now
    await job.delete("ingest_batches", "applied_at < %s", keep_from - BATCH_ID_KEEP)
    if cfg.audit_days:
        # Pruning would need a bypass of the append-only trigger, and any bypass the
        # retention job can use the orchestrator's role can use too (issue 23).
        log.warning("retention.audit_days=%d is ignored: the audit log is append-only for every role", cfg.audit_days)
    if report.dropped_partitions or any(report.deleted.values()) or report.skipped:
        log.info(
            "retention: dropped %s; deleted %s%s",
            report.dropped_partitions or "no partitions",
            report.deleted,
            f"; skipped (locked, retried next run): {report.skipped}" if report.skipped else "",
        )
    return report


async def _host_metrics(job: _Job, cfg: RetentionConfig, today: date) -> None:
    """`retention.hosts.<host>.metrics_days`: that host's rows in the partitions kept (config
    validation holds each at or under the global days, whose drop takes every host's)."""
    host_days = {h: d for h, d in cfg.host_overrides("metrics_days").items() if d}  # 0: forever (global 0)
    if not host_days:
        return
    async with job.pool.connection() as conn:
        leaves = await _leaves(conn, "metrics")  # listed after the drops
    for host, days in host_days.items():
        cutoff_ts = _midnight(today - timedelta(days=days))
        await job.delete("metrics", "host = %s AND ts < %s", host, cutoff_ts, key=f"metrics@{host}", within=leaves)


async def _events(job: _Job, cfg: RetentionConfig, now: datetime) -> None:
    """Triggers not attached to an incident and LLM-call accounting; a host's own
    `events_days` replaces the global one for its triggers (llm_calls have no host)."""
    host_days = cfg.host_overrides("events_days")
    if cfg.events_days:
        cutoff_ts = now - timedelta(days=cfg.events_days)
        if host_days:  # their own setting decides, also when it keeps longer (or forever)
            await job.delete(
                "triggers", "last_seen < %s AND incident_id IS NULL AND host <> ALL(%s)", cutoff_ts, list(host_days)
            )
        else:
            await job.delete("triggers", "last_seen < %s AND incident_id IS NULL", cutoff_ts)
        await job.delete("llm_calls", "at < %s", cutoff_ts)
    for host, days in host_days.items():
        if days:
            cutoff_ts = now - timedelta(days=days)
            await job.delete(
                "triggers",
                "host = %s AND last_seen < %s AND incident_id IS NULL",
                host,
                cutoff_ts,
                key=f"triggers@{host}",
            )


def _midnight(day: date) -> datetime:
    """Metrics age by whole UTC days, as their partitions do."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class _Job:
    def __init__(self, pool: AsyncConnectionPool, report: RetentionReport, batch_rows: int, lock_timeout: str):
        self.pool = pool
        self.report = report
        self.batch_rows = batch_rows
        self.lock_timeout = lock_timeout
        self.after_commit: Callable[[], None] | None = None  # set by a step that must learn of its own commit

    async def step(self, what: str, body) -> bool:  # type: ignore[no-untyped-def]
        """Run `body(conn)` in its own transaction with lock_timeout; False when it hit the timeout."""
        self.after_commit = None
        try:
            async with self.pool.connection() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{self.lock_timeout}'")  # fixed text, not input
                await body(conn)
        except psycopg.errors.LockNotAvailable:
            self.report.skipped.append(what)
            return False
        if self.after_commit is not None:
            self.after_commit()
        return True

    async def delete(
        self,
        table: str,
        where: str,
        *params: object,
        key: str | None = None,
        within: list[sql.Identifier] | None = None,
    ) -> None:
        """DELETE in batches of batch_rows rows, each batch its own short transaction.

        `key`: the name the count is reported under (default: the table).  `within`: delete
        from these tables (a partitioned table's leaves) instead, one after the other: a
        ctid names a row only within one leaf, and per leaf a batch is found through its
        indexes and removed by a TID scan, not by joining against every partition.
        """
        key = key or table
        total = 0
        for target in within if within is not None else [sql.Identifier(table)]:
            n, finished = await self._delete_from(target, where, params, key)
            total += n
            if not finished:  # hit lock_timeout: the rest waits for the next run
                break
        self.report.deleted[key] = total

    async def _delete_from(
        self, table: sql.Identifier, where: str, params: tuple[object, ...], key: str
    ) -> tuple[int, bool]:
        # The condition is fixed text from this module, never input; values are parameters.
        stmt = sql.SQL("DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE {w} LIMIT {n}))").format(
            t=table,
            w=sql.SQL(where),
            n=sql.Literal(int(self.batch_rows)),
        )
        total = 0
        while True:
            n = 0

            async def body(conn: psycopg.AsyncConnection) -> None:
                nonlocal n
                cur = await conn.execute(stmt, params)
                n = cur.rowcount

            if not await self.step(f"delete from {key}", body):
                return total, False
            total += n
            if n < self.batch_rows:
                return total, True


async def _leaves(conn: psycopg.AsyncConnection, parent: str) -> list[sql.Identifier]:
    """The tables holding `parent`'s rows: its daily partitions (and default), or its TimescaleDB chunks."""
    cur = await conn.execute(
        "SELECT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = %s::regclass ORDER BY c.relname",
        (parent,),
    )
    return [sql.Identifier(ns, rel) for ns, rel in await cur.fetchall()]
