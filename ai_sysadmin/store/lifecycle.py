"""The store as the orchestrator uses it: one pool, one spool, one writer, typed front ends.

    store = await open_store(cfg)          # migrates (advisory lock), starts the flusher
    await store.triggers.record_triggers(triggers, cursor)
    ...
    await store.close()

Everything is built from the Config; nothing lives at module level, so tests build
as many independent stores as they need.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import Config, RetentionConfig
from ai_sysadmin.store.audit import AuditLog
from ai_sysadmin.store.batches import careful_appliers, default_appliers
from ai_sysadmin.store.db import is_unreachable, make_pool
from ai_sysadmin.store.incidents import IncidentStore
from ai_sysadmin.store.llm_calls import LLMCallRecorder
from ai_sysadmin.store.metrics import MetricStore
from ai_sysadmin.store.migrations import migrate
from ai_sysadmin.store.partitions import MetricPartitions
from ai_sysadmin.store.quarantine import Quarantine
from ai_sysadmin.store.quarantine import directory as quarantine_dir
from ai_sysadmin.store.retention import RetentionReport, run_retention
from ai_sysadmin.store.spool import Spool, SpoolMetrics
from ai_sysadmin.store.triggers import PgTriggerStore
from ai_sysadmin.store.writer import StoreWriter

log = logging.getLogger(__name__)


@dataclass
class Store:
    pool: AsyncConnectionPool
    spool: Spool
    writer: StoreWriter
    triggers: PgTriggerStore
    metrics: MetricStore
    audit: AuditLog
    llm_calls: LLMCallRecorder  # pass as LLMClient(on_call=store.llm_calls)
    incidents: IncidentStore
    partitions: MetricPartitions
    retention_cfg: RetentionConfig
    registry: CollectorRegistry
    quarantine: Quarantine  # records PostgreSQL refused (doctor and status show them)

    async def run_retention(self) -> RetentionReport:
        oldest = self.spool.oldest_spooled_at()
        since = datetime.fromtimestamp(oldest, UTC) if oldest is not None else None
        return await run_retention(self.pool, self.retention_cfg, self.partitions, spooled_since=since)

    async def close(self) -> None:
        await self.llm_calls.aclose()
        await self.writer.aclose()
        await self.pool.close()


def build_store(
    cfg: Config,
    *,
    pool: AsyncConnectionPool | None = None,
    registry: CollectorRegistry | None = None,
    pool_timeout: float = 5.0,
    retry_interval: float = 2.0,
) -> Store:
    """Construct without touching the database (see open_store)."""
    registry = registry if registry is not None else CollectorRegistry()
    pool = pool if pool is not None else make_pool(cfg.database, timeout=pool_timeout)
    spool = Spool(cfg.spool.directory(cfg.state_dir), cfg.spool.max_bytes, cfg.spool.warn_ratio, SpoolMetrics(registry))
    partitions = MetricPartitions()
    quarantine = Quarantine(quarantine_dir(cfg.state_dir), registry=registry)
    writer = StoreWriter(
        pool,
        spool,
        default_appliers(partitions),
        quarantine=quarantine,
        careful=careful_appliers(),
        retry_interval=retry_interval,
        # rows from before the fleet's host column belong to this host (fleet.host)
        prepare=functools.partial(migrate, host=cfg.fleet.host_id()),
    )
    return Store(
        pool=pool,
        spool=spool,
        writer=writer,
        triggers=PgTriggerStore(writer),
        metrics=MetricStore(writer),
        audit=AuditLog(writer),
        llm_calls=LLMCallRecorder(writer),
        incidents=IncidentStore(pool),
        partitions=partitions,
        retention_cfg=cfg.retention,
        registry=registry,
        quarantine=quarantine,
    )


async def open_store(cfg: Config, **kw: Any) -> Store:
    """Open the pool, migrate (advisory lock), start the flusher.

    A database that is down at start is not fatal: records spool, and the writer
    migrates before its first write once PostgreSQL answers.
    """
    store = build_store(cfg, **kw)
    await store.pool.open(wait=False)
    try:
        await store.writer.ensure_prepared()
    except Exception as exc:
        if not is_unreachable(exc):
            await store.pool.close()
            raise
        log.warning("PostgreSQL unreachable at start (%s); spooling, migrating when it returns", exc)
    store.writer.start()
    store.llm_calls.start()
    return store
