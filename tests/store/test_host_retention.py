"""`retention.hosts` on a fleet hub (docs/fleet.md#retention-per-host): a host's own days
for its metric rows and triggers, the other hosts' rows of the same age kept, and a
per-host metrics_days the daily partition drop cannot honour refused at load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import ConfigError, parse_config
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.retention import run_retention
from tests.conftest import make_config
from tests.incidents.test_fleet import trig

HUB = {"role": "hub", "host": "hub"}


async def test_a_hosts_shorter_retention_deletes_only_its_rows(pg_database: dict[str, Any], tmp_path: Path) -> None:
    retention = {
        "metrics_days": 30,
        "events_days": 60,
        # lab-1 is noisy: 3 days of metrics, 5 of triggers; web-2 keeps its triggers longer than the rest.
        "hosts": {"lab-1": {"metrics_days": 3, "events_days": 5}, "web-2": {"events_days": 400}},
    }
    cfg = make_config(tmp_path, database=pg_database, fleet=HUB, retention=retention)
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        ten, one, forty = now - timedelta(days=10), now - timedelta(days=1), now - timedelta(days=40)
        async with store.pool.connection() as conn:
            async with conn.transaction():
                days = await store.partitions.ensure(conn, [ten.date(), one.date(), forty.date()])
            store.partitions.mark_known(days)
            # One partition per day holds both hosts' rows.  The order makes row ids (ctid)
            # repeat across partitions: lab-1's old row and web-1's recent row are each
            # their partition's first, so a delete by ctid alone would take web-1's too.
            rows = [
                (ten, "lab-1", 1.0),
                (ten, "web-1", 2.0),
                (one, "web-1", 3.0),
                (one, "lab-1", 4.0),
                (forty, "web-1", 5.0),  # past the global 30 days: its partition is dropped
                *[(ten - timedelta(minutes=m), "lab-1", 10.0 + m) for m in range(1, 5)],
            ]
            for ts, host, value in rows:
                await conn.execute(
                    "INSERT INTO metrics (ts, name, subject, value, host) VALUES (%s, 'cpu.percent', '', %s, %s)",
                    (ts, value, host),
                )
            await conn.commit()
        await store.triggers.record_triggers(
            [
                trig("lab-1", ten),  # past lab-1's 5 days: deleted
                trig("web-1", ten),  # same age, global 60 days: kept
                trig("lab-1", one),
                trig("web-1", now - timedelta(days=90)),  # past the global 60: deleted
                trig("web-2", now - timedelta(days=90)),  # web-2's own 400 days: kept
            ],
            "c1",
        )

        report = await run_retention(store.pool, cfg.retention, store.partitions, batch_rows=2)

        assert report.dropped_partitions == [f"metrics_p{forty:%Y%m%d}"] and not report.skipped
        assert report.deleted["metrics@lab-1"] == 5  # in batches of 2: 2 + 2 + 1
        assert report.deleted["triggers@lab-1"] == 1 and report.deleted["triggers"] == 1
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT host, value FROM metrics ORDER BY value")
            assert await cur.fetchall() == [("web-1", 2.0), ("web-1", 3.0), ("lab-1", 4.0)]
            cur = await conn.execute("SELECT host, round(extract(epoch FROM now() - last_seen) / 86400) FROM triggers")
            assert sorted((h, int(d)) for h, d in await cur.fetchall()) == [
                ("lab-1", 1),
                ("web-1", 10),
                ("web-2", 90),
            ]
    finally:
        await store.close()


async def test_without_hosts_the_global_days_apply_to_every_host(pg_database: dict[str, Any], tmp_path: Path) -> None:
    cfg = make_config(tmp_path, database=pg_database, fleet=HUB, retention={"metrics_days": 30, "events_days": 60})
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        old = now - timedelta(days=90)
        await store.triggers.record_triggers([trig("lab-1", old), trig("web-1", old), trig("web-1", now)], "c1")
        report = await store.run_retention()
        assert report.deleted["triggers"] == 2
        assert not [k for k in report.deleted if "@" in k]  # no per-host steps without retention.hosts
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT host FROM triggers")
            assert await cur.fetchall() == [("web-1",)]
    finally:
        await store.close()


@pytest.mark.parametrize("days", [31, 0])
def test_a_hosts_metrics_days_beyond_the_global_is_a_config_error(days: int) -> None:
    data = {"retention": {"metrics_days": 30, "hosts": {"web-1": {"metrics_days": 3}, "lab-1": {"metrics_days": days}}}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert [i.path for i in info.value.issues] == ["retention.hosts.lab-1.metrics_days"]
    assert "longer than retention.metrics_days (30)" in info.value.issues[0].reason


def test_per_host_days_are_free_while_metrics_are_kept_forever() -> None:
    data = {"retention": {"metrics_days": 0, "hosts": {"lab-1": {"metrics_days": 90}, "web-1": {"events_days": 0}}}}
    r = parse_config(data, env={}).retention
    assert r.host_overrides("metrics_days") == {"lab-1": 90} and r.host_overrides("events_days") == {"web-1": 0}
    with pytest.raises(ConfigError) as info:
        parse_config({"retention": {"hosts": {"web 1": {"events_days": 3}}}}, env={})
    assert info.value.issues[0].path.startswith("retention.hosts.web 1")
