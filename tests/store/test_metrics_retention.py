"""Metrics through COPY into daily partitions, range queries, and the retention job."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from tests.conftest import make_config


async def test_metrics_land_in_daily_partitions_and_query_by_range(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        now = time.time()
        samples = [Sample(now - i * 60, "cpu.percent", float(i)) for i in range(90)]
        samples += [
            Sample(now - 30, "disk.used_percent", 42.5, "/"),
            Sample(now - 30, "disk.used_percent", 7.0, "/boot"),
        ]
        assert await store.metrics.write(samples) == "stored"
        hour = await store.metrics.last_hour("cpu.percent")
        assert [p.value for p in hour] == [float(i) for i in range(59, -1, -1)]  # oldest first, 60 minutes
        assert [p.value for p in await store.metrics.last_hour("disk.used_percent", "/boot")] == [7.0]
        async with store.pool.connection() as conn:
            parts = await store.partitions.existing(conn)
            cur = await conn.execute("SELECT count(*) FROM ONLY metrics_default")
            assert (await cur.fetchone())[0] == 0  # everything went to a daily partition
        days = {datetime.fromtimestamp(s.ts, UTC).date() for s in samples}
        assert days <= set(parts)
        with pytest.raises(ValueError, match="empty name"):
            await store.metrics.write([Sample(now, "", 1.0)])
    finally:
        await store.close()


async def test_retention_drops_old_partitions_and_rows(pg_database: dict[str, Any], tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, database=pg_database, retention={"metrics_days": 30, "events_days": 60, "audit_days": 90}
    )
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        old, recent = now - timedelta(days=40), now - timedelta(days=2)
        await store.metrics.write(
            [Sample(old.timestamp(), "mem.percent", 1.0), Sample(recent.timestamp(), "mem.percent", 2.0)]
        )
        await store.audit.record("operator", "approve", "action 1", at=now - timedelta(days=100))
        await store.audit.record("operator", "approve", "action 2", at=now - timedelta(days=1))
        await store.llm_calls.drain()
        report = await store.run_retention()
        assert report.dropped_partitions == [f"metrics_p{old:%Y%m%d}"]
        assert "audit_log" not in report.deleted  # append-only for every role: audit_days is ignored
        points = await store.metrics.query("mem.percent", now - timedelta(days=365))
        assert [p.value for p in points] == [2.0]
        async with store.pool.connection() as conn:
            parts = await store.partitions.existing(conn)
            cur = await conn.execute("SELECT subject FROM audit_log ORDER BY id")
            assert [r[0] for r in await cur.fetchall()] == ["action 1", "action 2"]
        assert (now + timedelta(days=2)).date() in parts  # created ahead
        assert old.date() not in parts and recent.date() in parts
    finally:
        await store.close()


async def test_audit_log_is_append_only(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        assert await store.audit.record("policy", "queued", "restart nginx.service", {"risk": "low"}) == "stored"
        async with store.pool.connection() as conn:
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                await conn.execute("UPDATE audit_log SET actor = 'someone else'")
            await conn.rollback()
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                await conn.execute("DELETE FROM audit_log")
            await conn.rollback()
            # the retention job's old bypass is gone, and TRUNCATE (no row trigger sees it) is refused
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                await conn.execute("SET LOCAL ai_sysadmin.retention = 'on'")
                await conn.execute("DELETE FROM audit_log")
            await conn.rollback()
            with pytest.raises(psycopg.errors.RaiseException, match=r"append-only \(TRUNCATE refused\)"):
                await conn.execute("TRUNCATE audit_log")
            await conn.rollback()
            cur = await conn.execute("SELECT actor, event, detail FROM audit_log")
            assert await cur.fetchall() == [("policy", "queued", {"risk": "low"})]
    finally:
        await store.close()
