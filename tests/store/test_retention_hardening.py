"""Retention must never stall ingestion: lock_timeout, small batches, short transactions;
partitions are known only once committed; batch ids are kept only as long as replays need them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.store.partitions import MetricPartitions, partition_name
from ai_sysadmin.store.retention import run_retention
from rig.triggers import make_trigger
from tests.conftest import make_config


async def test_a_locked_partition_is_skipped_not_waited_for(pg_database: dict[str, Any], tmp_path: Path) -> None:
    cfg = make_config(tmp_path, database=pg_database, retention={"metrics_days": 30, "events_days": 60})
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        old = now - timedelta(days=40)
        await store.metrics.write([Sample(old.timestamp(), "mem.percent", 1.0)])
        # A long reader holds the old partition: DROP would queue behind it -- and every writer behind DROP.
        async with await psycopg.AsyncConnection.connect(cfg.database.conninfo()) as reader:
            await reader.execute(f"SELECT count(*) FROM {partition_name(old.date())}")
            started = time.monotonic()
            report = await run_retention(store.pool, cfg.retention, store.partitions, lock_timeout="200ms")
            assert time.monotonic() - started < 10
            assert report.skipped == [f"drop {partition_name(old.date())}"] and not report.dropped_partitions
            # While retention waited (and gave up), L1 kept committing.
            await store.triggers.record_triggers([make_trigger(1)], "c1")
            await reader.rollback()
        report = await run_retention(store.pool, cfg.retention, store.partitions)
        assert report.dropped_partitions == [partition_name(old.date())] and not report.skipped
    finally:
        await store.close()


async def test_deletes_go_in_small_batches_and_batch_ids_are_kept_only_as_needed(
    pg_database: dict[str, Any], tmp_path: Path
) -> None:
    cfg = make_config(tmp_path, database=pg_database, retention={"events_days": 60})
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        old = now - timedelta(days=90)
        await store.triggers.record_triggers([make_trigger(i, at=old) for i in range(35)], "c1")
        async with store.pool.connection() as conn:
            for days in (3, 0.5):
                await conn.execute(
                    "INSERT INTO ingest_batches (batch_id, kind, applied_at) VALUES (%s, 'x', %s)",
                    (uuid.uuid4(), now - timedelta(days=days)),
                )
        # The spool still holds a batch spooled 5 days ago: ids since then must stay (it may replay).
        report = await run_retention(
            store.pool, cfg.retention, store.partitions, batch_rows=10, spooled_since=now - timedelta(days=5)
        )
        assert report.deleted["triggers"] == 35 and report.deleted["ingest_batches"] == 0
        report = await run_retention(store.pool, cfg.retention, store.partitions, batch_rows=10)
        assert report.deleted["ingest_batches"] == 1  # 3 days old: not 180 days, just a day past any replay
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM ingest_batches")
            assert (await cur.fetchone())[0] >= 2  # the recent one and the trigger batch
    finally:
        await store.close()


async def test_a_partition_counts_as_existing_only_after_commit(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        day = (datetime.now(UTC) + timedelta(days=20)).date()
        parts = MetricPartitions()
        async with store.pool.connection() as conn:
            try:
                async with conn.transaction():
                    assert await parts.ensure(conn, [day]) == {day}
                    raise RuntimeError("the batch failed after the partition was created")
            except RuntimeError:
                pass
            assert day not in await parts.existing(conn)  # rolled back ...
            assert await parts.ensure(conn, [day]) == {day}  # ... so it is not believed to exist
            await conn.commit()
        parts.mark_known({day})
        async with store.pool.connection() as conn:
            assert day in await parts.existing(conn) and await parts.ensure(conn, [day]) == set()
        # The writer marks partitions known only after its COPY committed.
        ts = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
        await store.metrics.write([Sample(ts + 86400, "x", 1.0)])
        assert (day + timedelta(days=1)) in store.partitions._known
    finally:
        await store.close()
