"""The L1 seam on a real PostgreSQL cluster: migrations, upsert by id, cursor in the same transaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ai_sysadmin.store.db import schema_version
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.migrations import MIGRATIONS, latest_version, metrics_backend, migrate
from rig.triggers import make_trigger
from tests.conftest import make_config


async def test_migrate_from_empty_then_rerun_is_a_no_op(pg_database: dict[str, Any], tmp_path: Path) -> None:
    cfg = make_config(tmp_path, database=pg_database)
    async with await psycopg.AsyncConnection.connect(cfg.database.conninfo(), autocommit=True) as conn:
        assert await schema_version(conn) == 0
        # Every migration, in order (their numbers need not be contiguous while slices merge).
        assert await migrate(conn) == [m.version for m in MIGRATIONS]
        assert await schema_version(conn) == latest_version()
        assert await migrate(conn) == []
        assert await metrics_backend(conn) == "partitions"  # TimescaleDB is not installed here
        cur = await conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        tables = (await cur.fetchone())[0]
        assert await migrate(conn) == []
        cur = await conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert (await cur.fetchone())[0] == tables


MIGRATE_SCRIPT = """
import asyncio, sys, psycopg
from ai_sysadmin.store.migrations import migrate
async def main():
    async with await psycopg.AsyncConnection.connect(sys.argv[1], autocommit=True) as conn:
        print(len(await migrate(conn)))
asyncio.run(main())
"""


def test_two_processes_migrating_at_once(pg_database: dict[str, Any], tmp_path: Path) -> None:
    cfg = make_config(tmp_path, database=pg_database)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_SCRIPT, cfg.database.conninfo()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    # Exactly one of them applied everything; the other waited on the lock and found nothing to do.
    assert sorted(int(o[0].strip()) for o in outs) == [0, len(MIGRATIONS)]


async def test_record_triggers_upserts_by_id_and_stores_the_cursor(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        assert await store.triggers.load_cursor() is None
        a, b = make_trigger(1, count=3), make_trigger(2, count=1, severity="low")
        await store.triggers.record_triggers([a, b], "s=cursor-1")
        assert await store.triggers.load_cursor() == "s=cursor-1"
        again = make_trigger(1, count=2, severity="critical", sample=["worker 7 exited with status 1"])
        again.last_seen = a.last_seen.replace(hour=13)
        await store.triggers.record_triggers([again], "s=cursor-2")
        await store.triggers.record_triggers([make_trigger(2, count=1, severity="info")], "s=cursor-3", stream="other")
        assert await store.triggers.load_cursor() == "s=cursor-2"
        assert await store.triggers.load_cursor("other") == "s=cursor-3"
        row = await store.triggers.get(a.id)
        assert row["count"] == 5
        assert row["severity"] == "critical"
        assert row["last_seen"] == again.last_seen
        assert row["first_seen"] == a.first_seen
        assert row["sample"] == ["worker 1 exited with status 1", "worker 7 exited with status 1"]
        low = await store.triggers.get(b.id)
        assert low["severity"] == "low" and low["count"] == 2  # severity never drops
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM triggers")
            assert (await cur.fetchone())[0] == 2
    finally:
        await store.close()


async def test_a_refused_batch_raises_and_keeps_what_was_stored(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        await store.triggers.record_triggers([make_trigger(1)], "c1")
        naive = make_trigger(2)
        naive.first_seen = naive.first_seen.replace(tzinfo=None)
        with pytest.raises(ValueError, match="first_seen must be timezone-aware"):
            await store.triggers.record_triggers([naive], "c2")
        assert await store.triggers.load_cursor() == "c1"
        assert (await store.triggers.get(make_trigger(1).id))["count"] == 1
    finally:
        await store.close()


async def test_timescaledb_path_when_the_extension_exists(pg_database: dict[str, Any], tmp_path: Path) -> None:
    from ai_sysadmin.store.migrations import timescale_available

    cfg = make_config(tmp_path, database=pg_database)
    async with await psycopg.AsyncConnection.connect(cfg.database.conninfo(), autocommit=True) as conn:
        if not await timescale_available(conn):
            pytest.skip(
                "TimescaleDB extension is not installed on this PostgreSQL (not packaged here); "
                "the native-partition path is tested instead"
            )
        await migrate(conn)
        assert await metrics_backend(conn) == "timescaledb"
        cur = await conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'metrics'"
        )
        assert (await cur.fetchone())[0] == 1
