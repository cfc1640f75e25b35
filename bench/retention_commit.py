"""Retention running while L1 commits at full rate: per-commit latency with and without it.

A throwaway PostgreSQL cluster; old data to expire (daily metric partitions, triggers
and batch ids older than the retention bounds); then L1-shaped commits (20 triggers +
the journal cursor per batch, one after another as fast as they go) for a fixed time:

  1. alone (baseline),
  2. with the retention job running in a loop next to them (ai_sysadmin.store.retention:
     lock_timeout, 5000-row batches, one short transaction per step),
  3. with the former one-transaction retention for comparison (partition lock, drops and
     bulk deletes all in one transaction).

Prints p50/p99/max commit latency per phase; asserts nothing about speed.

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python -m bench.retention_commit [--old-triggers 200000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.store.retention import run_retention
from rig.postgres import PgCluster
from rig.triggers import make_trigger


async def fill_old(store, n_triggers: int, metric_days: int, rows_per_day: int) -> None:  # type: ignore[no-untyped-def]
    """Data past the retention bounds, inserted with SQL (fast), as a long-running host would have."""
    now = datetime.now(UTC)
    async with store.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO triggers (id, severity, category, source, unit, template, template_id, count, first_seen,"
            " last_seen) SELECT 'old' || g, 'low', 'other', 'rule:x', 'u.service', 't', 't', 1, %s, %s"
            " FROM generate_series(1, %s) g",
            (now - timedelta(days=400), now - timedelta(days=400), n_triggers),
        )
        await conn.execute(
            "INSERT INTO ingest_batches (batch_id, kind, applied_at) SELECT gen_random_uuid(), 'x', %s"
            " FROM generate_series(1, %s)",
            (now - timedelta(days=30), n_triggers),
        )
    for d in range(metric_days):
        day = now - timedelta(days=40 + d)
        base = day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        await store.metrics.write(
            [Sample(base + i * 86400 / rows_per_day, "bench.old", float(i)) for i in range(rows_per_day)]
        )


async def old_style_retention(store, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """The one-transaction retention this replaced (for comparison only)."""
    async with store.pool.connection() as conn, conn.transaction():
        await store.partitions.ensure(conn, [now.date() + timedelta(days=d) for d in range(3)])
        for day, name in await store.partitions.expired(conn, now.date() - timedelta(days=30)):
            await store.partitions.drop(conn, day, name)
        await conn.execute(
            "DELETE FROM triggers WHERE last_seen < %s AND incident_id IS NULL", (now - timedelta(days=180),)
        )
        await conn.execute("DELETE FROM ingest_batches WHERE applied_at < %s", (now - timedelta(days=14),))


async def commits(store, seconds: float, tag: str) -> list[float]:  # type: ignore[no-untyped-def]
    lat = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        batch = [make_trigger(j, count=1, at=datetime.now(UTC)) for j in range(i % 7, i % 7 + 20)]
        t = time.perf_counter()
        await store.triggers.record_triggers(batch, f"{tag}-{i}")
        lat.append(time.perf_counter() - t)
        i += 1
    return lat


def report(name: str, lat: list[float], extra: str = "") -> None:
    q = statistics.quantiles(lat, n=100)
    print(
        f"{name:<34} {len(lat):>6} commits  p50 {q[49] * 1000:6.1f} ms  p99 {q[98] * 1000:7.1f} ms  "
        f"max {max(lat) * 1000:7.1f} ms{extra}"
    )


async def phase(store, seconds: float, tag: str, job) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    runs = 0
    stop = asyncio.Event()

    async def loop() -> None:
        nonlocal runs
        while not stop.is_set():
            await job()
            runs += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(loop()) if job else None
    lat = await commits(store, seconds, tag)
    stop.set()
    if task:
        await task
    return lat, runs


async def main(old_triggers: int, seconds: float) -> None:
    cluster = PgCluster.create()
    cluster.start()
    cluster.create_database("bench")
    state = Path(tempfile.mkdtemp(prefix="retention-bench-"))
    cfg = parse_config({"state_dir": str(state), "database": cluster.database_config("bench")}, env={})
    try:
        store = await open_store(cfg, pool_timeout=5.0)
        print(f"PostgreSQL throwaway cluster; L1-shaped commits of 20 triggers + cursor for {seconds:g}s per phase")
        lat, _ = await phase(store, seconds, "base", None)
        report("baseline (no retention)", lat)

        await fill_old(store, old_triggers, 4, 20_000)
        lat, runs = await phase(
            store, seconds, "new", lambda: run_retention(store.pool, cfg.retention, store.partitions)
        )
        report(
            "with retention (batched, new)",
            lat,
            f"   ({runs} retention passes; first one expired "
            f"{old_triggers} triggers, {old_triggers} batch ids, 4 partitions)",
        )

        await fill_old(store, old_triggers, 4, 20_000)
        lat, runs = await phase(store, seconds, "old", lambda: old_style_retention(store, datetime.now(UTC)))
        report("with one-transaction retention (old)", lat, f"   ({runs} passes)")
        await store.close()
    finally:
        cluster.destroy()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-triggers", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    asyncio.run(main(a.old_triggers, a.seconds))
