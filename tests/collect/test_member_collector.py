"""A fleet member's collector on the hub's real PostgreSQL, as the member's own login role.

B's readings land on the hub as B's rows (written by B's role through the hub's function
`ai_sysadmin_member_metrics`, which takes the host from the login role); a sink that
claims to be A, connected as B, is refused before it writes anything. With the hub's
cluster stopped the member drops its readings with one warning for the outage, keeps
nothing, and writes again once the cluster is back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ai_sysadmin.collect.collector import MetricsCollector
from ai_sysadmin.compose.member import hub_connector, hub_metrics
from ai_sysadmin.config import Config
from ai_sysadmin.store import fleet
from ai_sysadmin.store.hub import HubMetrics, HubRoleMismatch
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.store.migrations import migrate
from rig.postgres import PgCluster
from tests.conftest import make_config

HUB = "hub-1"


def _member_config(tmp_path: Path, cluster: PgCluster, db: str, host: str, local: dict[str, Any] | None) -> Config:
    role = fleet.member_role_name(host)
    return make_config(
        tmp_path,
        **({"database": local} if local else {}),
        fleet={
            "role": "member",
            "host": host,
            "hub_url": "https://hub.test:19532",
            "hub_dsn": f"host={cluster.sockdir} port={cluster.port} user={role} dbname={db}",
        },
    )


async def _hub(cluster: PgCluster) -> tuple[str, dict[str, str]]:
    """A migrated hub database with member roles for A and B (the roles are cluster-wide: unique names)."""
    db = f"hub_{uuid.uuid4().hex[:10]}"
    cluster.create_database(db)
    s = uuid.uuid4().hex[:6]
    hosts = {"a": f"web-a-{s}", "b": f"web-b-{s}"}
    async with await psycopg.AsyncConnection.connect(cluster.conninfo(db), autocommit=True) as conn:
        await migrate(conn, host=HUB)
        for h in hosts.values():
            await fleet.create_member_role(conn, h)
    return db, hosts


async def _drop(cluster: PgCluster, db: str, hosts: dict[str, str]) -> None:
    if not cluster.running():
        return
    async with await psycopg.AsyncConnection.connect(cluster.conninfo(db), autocommit=True) as conn:
        for h in hosts.values():
            await fleet.drop_member_role(conn, h)
    cluster.drop_database(db)


async def _hub_rows(cluster: PgCluster, db: str) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(cluster.conninfo(db), autocommit=True) as conn:
        cur = await conn.execute("SELECT DISTINCT host, name FROM metrics ORDER BY host, name")
        return [(h, n) for h, n in await cur.fetchall()]


@pytest.fixture()
async def hub(pg_cluster: PgCluster) -> AsyncIterator[tuple[str, dict[str, str]]]:
    db, hosts = await _hub(pg_cluster)
    try:
        yield db, hosts
    finally:
        await _drop(pg_cluster, db, hosts)


async def test_member_collector_writes_its_own_rows_as_its_role(
    pg_cluster: PgCluster, hub: tuple[str, dict[str, str]], pg_database: dict[str, Any], tmp_path: Path
) -> None:
    db, hosts = hub
    b = hosts["b"]
    cfg = _member_config(tmp_path, pg_cluster, db, b, pg_database)
    sink = hub_metrics(cfg)
    assert sink is not None and sink.host == b
    store = await open_store(cfg)
    try:
        # The collector as the orchestrator builds it on a member: local store, and the hub.
        collector = MetricsCollector(cfg, store.metrics, store.triggers, mirrors=(sink,))
        reading = await collector.collect_once()
        await collector.collect_once()
        assert len(await store.metrics.last_hour("mem.percent")) == 2  # the local store, as before
    finally:
        await sink.aclose()
        await store.close()
    rows = await _hub_rows(pg_cluster, db)
    assert {h for h, _ in rows} == {b}
    assert {s.name for s in reading.samples} <= {n for _, n in rows} and ("mem.percent" in {n for _, n in rows})
    async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(db), autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM metrics WHERE host = %s AND name = 'mem.percent'", (b,))
        assert await cur.fetchone() == (2,)

    # A sink of A over B's connection: refused before anything is written (no silent drop,
    # and no reading of A's filed under B's name), at each try.
    connect_as_b = hub_connector(cfg, "test")
    assert connect_as_b is not None
    forged = HubMetrics(hosts["a"], connect_as_b)
    try:
        for _ in range(2):
            with pytest.raises(HubRoleMismatch, match=f"logged in as '{fleet.member_role_name(b)}'"):
                await forged.write([Sample(1.7e9, "cpu.percent", 5.0)])
        assert forged.outages == 0 and forged.dropped == 0
    finally:
        await forged.aclose()
    async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(db), autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM metrics WHERE ts = to_timestamp(1.7e9)")
        assert await cur.fetchone() == (0,)


async def test_hub_down_drops_with_one_warning_and_resumes(
    private_pg_cluster: PgCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = private_pg_cluster
    db, hosts = await _hub(cluster)
    b = hosts["b"]
    cfg = _member_config(tmp_path, cluster, db, b, None)
    connect = hub_connector(cfg, "test")
    assert connect is not None
    now = [0.0]
    sink = HubMetrics(b, connect, first_backoff=5.0, clock=lambda: now[0])

    def reading(t: float) -> list[Sample]:
        return [Sample(1.7e9 + t, "mem.percent", t), Sample(1.7e9 + t, "unit.failed", 1.0, "x.service")]

    caplog.set_level(logging.WARNING, logger="ai_sysadmin.store.hub")
    try:
        assert await sink.write(reading(1)) == "stored"
        cluster.stop()
        # The open connection breaks: dropped, one warning.  Within the backoff: dropped without
        # trying.  After it: one more try, still down, dropped -- and no second warning.
        assert await sink.write(reading(2)) == "dropped"
        assert await sink.write(reading(3)) == "dropped"
        for step in (6.0, 11.0, 21.0):  # 5 s, then 10 s, ... between tries
            now[0] += step
            assert await sink.write(reading(3 + step)) == "dropped"
        unreachable = [r for r in caplog.records if "hub database unreachable" in r.getMessage()]
        assert len(unreachable) == 1 and b in unreachable[0].getMessage()
        assert sink.outages == 1 and sink.dropped == 5
        cluster.start()
        assert await sink.write(reading(100)) == "dropped"  # still inside the last backoff (40 s)
        now[0] += 41.0
        assert await sink.write(reading(200)) == "stored"
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert sink.dropped == 0
        async with await psycopg.AsyncConnection.connect(cluster.conninfo(db), autocommit=True) as conn:
            cur = await conn.execute("SELECT host, value FROM metrics WHERE name = 'mem.percent' ORDER BY value")
            # Nothing of the outage was kept and sent later: the readings before and after it only.
            assert await cur.fetchall() == [(b, 1.0), (b, 200.0)]
        # A second outage is a second warning.
        cluster.stop()
        assert await sink.write(reading(300)) == "dropped"
        unreachable = [r for r in caplog.records if "hub database unreachable" in r.getMessage()]
        assert len(unreachable) == 2 and sink.outages == 2
        cluster.start()
    finally:
        await sink.aclose()
        await _drop(cluster, db, hosts)
