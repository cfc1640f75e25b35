"""The retention job: per table family, drop what is older than `retention.*_days`.

metrics  -> whole daily partitions (or TimescaleDB chunks) dropped; partitions for the
            next days created ahead so the hot path rarely runs DDL
events   -> triggers not attached to an incident, LLM call accounting, old batch ids
audit    -> only when retention.audit_days > 0 (append-only otherwise)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import RetentionConfig
from ai_sysadmin.store.migrations import BACKEND_TIMESCALE
from ai_sysadmin.store.partitions import MetricPartitions

log = logging.getLogger(__name__)

# Batch ids only guard spool replays; a spool older than this would be a very long outage.
BATCH_ID_DAYS = 14
DAYS_AHEAD = 2


@dataclass
class RetentionReport:
    dropped_partitions: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)


async def run_retention(pool: AsyncConnectionPool, cfg: RetentionConfig, partitions: MetricPartitions,
                        now: datetime | None = None) -> RetentionReport:
    now = now or datetime.now(timezone.utc)
    report = RetentionReport()
    async with pool.connection() as conn:
        async with conn.transaction():
            backend = await partitions.backend(conn)
            today = now.date()
            await partitions.ensure(conn, [today + timedelta(days=d) for d in range(DAYS_AHEAD + 1)])
            if cfg.metrics_days:
                cutoff = today - timedelta(days=cfg.metrics_days)
                if backend == BACKEND_TIMESCALE:
                    await conn.execute("SELECT drop_chunks('metrics', older_than => %s::timestamptz)",
                                       (datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=timezone.utc),))
                else:
                    report.dropped_partitions = await partitions.drop_before(conn, cutoff)
            if cfg.events_days:
                cutoff_ts = now - timedelta(days=cfg.events_days)
                report.deleted["triggers"] = await _delete(
                    conn, "DELETE FROM triggers WHERE last_seen < %s AND incident_id IS NULL", cutoff_ts)
                report.deleted["llm_calls"] = await _delete(conn, "DELETE FROM llm_calls WHERE at < %s", cutoff_ts)
            report.deleted["ingest_batches"] = await _delete(
                conn, "DELETE FROM ingest_batches WHERE applied_at < %s",
                now - timedelta(days=max(BATCH_ID_DAYS, cfg.events_days)))
            if cfg.audit_days:
                # The append-only trigger lets this transaction (only) delete old rows.
                await conn.execute("SET LOCAL ai_sysadmin.retention = 'on'")
                report.deleted["audit_log"] = await _delete(
                    conn, "DELETE FROM audit_log WHERE at < %s", now - timedelta(days=cfg.audit_days))
    if report.dropped_partitions or any(report.deleted.values()):
        log.info("retention: dropped %s; deleted %s", report.dropped_partitions or "no partitions", report.deleted)
    return report


async def _delete(conn, stmt: str, cutoff: datetime) -> int:
    cur = await conn.execute(stmt, (cutoff,))
    return cur.rowcount
