"""PostgreSQL goes away while records flow: they spool, flush in order, and land exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.store.spool import Batch
from rig.postgres import PgCluster
from rig.triggers import make_trigger
from tests.conftest import make_config
from tests.store.helpers import wait_for


@pytest.fixture()
def own_cluster(private_pg_cluster: PgCluster) -> PgCluster:
    private_pg_cluster.create_database("aisys")
    return private_pg_cluster


async def test_records_survive_an_outage_exactly_once(own_cluster: PgCluster, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, database=own_cluster.database_config("aisys"))
    store = await open_store(cfg, pool_timeout=1.0, retry_interval=0.2)
    now = time.time()
    try:
        await store.triggers.record_triggers([make_trigger(1, count=2)], "c1")
        await store.metrics.write([Sample(now, "load.1", 0.0)])
        await store.audit.record("policy", "step", "0")
        assert store.spool.empty()

        own_cluster.stop("immediate")  # a crash, not a polite shutdown
        outcomes = set()
        for i in range(2, 12):
            await store.triggers.record_triggers([make_trigger(1, count=1), make_trigger(i)], f"c{i}")
            outcomes.add(
                await store.metrics.write(
                    [Sample(now + i, "load.1", float(i)), Sample(now + i, "disk.used_percent", float(i), "/")]
                )
            )
            outcomes.add(await store.audit.record("policy", "step", str(i)))
        assert outcomes == {"spooled"}
        assert store.spool.state().records == 30
        assert await store.triggers.load_cursor() == "c11"  # the spool's cursor is the newest

        own_cluster.start()
        await wait_for(store.spool.empty, 60, "spool drained after PostgreSQL restart")
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT id, count FROM triggers ORDER BY id")
            rows = dict(await cur.fetchall())
            cur = await conn.execute("SELECT count(*) FROM ingest_batches")
            batches = (await cur.fetchone())[0]
            cur = await conn.execute("SELECT subject FROM audit_log ORDER BY id")
            audit = [r[0] for r in await cur.fetchall()]
        assert rows[make_trigger(1).id] == 12
        assert all(rows[make_trigger(i).id] == 1 for i in range(2, 12))
        assert len(rows) == 11 and batches == 33
        assert audit == [str(i) for i in [0, *range(2, 12)]]  # in order, once each
        load = await store.metrics.query(
            "load.1", datetime.fromtimestamp(now - 1, UTC), datetime.fromtimestamp(now + 60, UTC)
        )
        assert [p.value for p in load] == [0.0, *[float(i) for i in range(2, 12)]]
        assert (
            len(
                await store.metrics.query(
                    "disk.used_percent",
                    datetime.fromtimestamp(now - 1, UTC),
                    datetime.fromtimestamp(now + 60, UTC),
                    "/",
                )
            )
            == 10
        )
        assert await store.triggers.load_cursor() == "c11"
    finally:
        await store.close()


async def test_a_replayed_batch_is_applied_once(pg_database: dict, tmp_path: Path) -> None:
    """The commit went through but its answer was lost: the spooled copy must not count twice."""
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        t = make_trigger(1, count=4)
        batch = Batch("triggers", {"stream": "journal", "cursor": "c1", "triggers": [t.to_json()]})
        await store.writer.submit(batch)
        store.spool.append(batch)
        await store.writer.flush()  # the background flusher may have been first: same result
        assert store.spool.empty()
        assert (await store.triggers.get(t.id))["count"] == 4
    finally:
        await store.close()


async def test_spool_survives_a_restart_of_the_service(own_cluster: PgCluster, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, database=own_cluster.database_config("aisys"))
    own_cluster.stop("fast")
    store = await open_store(cfg, pool_timeout=1.0, retry_interval=0.2)  # database down at start
    await store.triggers.record_triggers([make_trigger(1, count=3)], "c1")
    await store.close()  # the process ends with the batch only in the spool

    own_cluster.start()
    store = await open_store(cfg, pool_timeout=1.0, retry_interval=0.2)
    try:
        await wait_for(store.spool.empty, 60, "spool from the previous run drained")
        assert (await store.triggers.get(make_trigger(1).id))["count"] == 3
        assert await store.triggers.load_cursor() == "c1"
    finally:
        await store.close()
