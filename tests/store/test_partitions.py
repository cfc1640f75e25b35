"""Daily metric partitions created by two writers at once (collector batch + retention job)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import psycopg

from ai_sysadmin.store.migrations import migrate
from ai_sysadmin.store.partitions import MetricPartitions, partition_name
from tests.store.helpers import wait_for


async def _blocked_backends(conninfo: str) -> bool:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as probe:
        cur = await probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return (await cur.fetchone())[0] > 0


async def test_two_writers_creating_the_same_day_both_succeed(pg_cluster, pg_database: dict[str, Any]) -> None:
    conninfo = pg_cluster.conninfo(pg_database["name"])
    day = date(2031, 3, 4)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as setup:
        await migrate(setup)
    a = await psycopg.AsyncConnection.connect(conninfo)
    b = await psycopg.AsyncConnection.connect(conninfo)
    try:
        # A creates the partition and keeps its transaction open; B asks for the same day.
        await MetricPartitions().ensure(a, [day])
        second = asyncio.create_task(MetricPartitions().ensure(b, [day]))
        await wait_for(lambda: _blocked_backends(conninfo), 30, "B waiting behind A at the server")
        assert not second.done()
        await a.commit()
        await asyncio.wait_for(second, 30)  # before the fix: DuplicateTable after A commits
        await b.commit()
        cur = await b.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (partition_name(day),))
        assert (await cur.fetchone())[0] == 1
    finally:
        await a.close()
        await b.close()
