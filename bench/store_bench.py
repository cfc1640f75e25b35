"""Store figures on a throwaway PostgreSQL cluster: metric insert rate (COPY), last-hour
query latency, and spool flush rate.  Prints figures; asserts nothing about speed.

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python -m bench.store_bench [--rows 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from rig.postgres import PgCluster
from rig.triggers import make_trigger

SERIES = 50  # a host's worth of series (cpu, mem, disks, nics, top processes)


def samples(n: int, start: float, step: float) -> list[Sample]:
    return [Sample(start + (i // SERIES) * step, f"bench.m{i % SERIES}", float(i), "") for i in range(n)]


async def main(rows: int, batch: int) -> None:
    cluster = PgCluster.create()
    cluster.start()
    cluster.create_database("bench")
    state = Path(tempfile.mkdtemp(prefix="store-bench-"))
    cfg = parse_config({"state_dir": str(state), "database": cluster.database_config("bench")}, env={})
    try:
        store = await open_store(cfg, pool_timeout=1.0, retry_interval=0.2)
        now = time.time()
        data = samples(rows, now - 3600, 3600 / (rows / SERIES))
        t = time.perf_counter()
        for i in range(0, rows, batch):
            await store.metrics.write(data[i : i + batch])
        dt = time.perf_counter() - t
        print(f"metric insert (COPY, {batch} rows/batch): {rows} rows in {dt:.2f}s = {rows / dt:,.0f} rows/s")

        lat = []
        for i in range(20):
            t = time.perf_counter()
            pts = await store.metrics.last_hour(f"bench.m{i % SERIES}")
            lat.append(time.perf_counter() - t)
        print(
            f"last-hour query of one series ({len(pts)} points): median {statistics.median(lat) * 1000:.1f} ms, "
            f"max {max(lat) * 1000:.1f} ms over {len(lat)} queries"
        )

        cluster.stop("immediate")
        n_batches = 0
        for i in range(0, 400):
            await store.triggers.record_triggers([make_trigger(i % 40, count=1)], f"c{i}")
            await store.metrics.write(samples(batch, now + i, 1.0))
            n_batches += 2
        st = store.spool.state()
        print(f"spooled during outage: {st.records} batches, {st.bytes / 1e6:.1f} MB")
        cluster.start()
        t = time.perf_counter()
        while not store.spool.empty():
            await asyncio.sleep(0.01)
        dt = time.perf_counter() - t
        print(
            f"spool flush: {n_batches} batches ({400 * batch} metric rows + 400 trigger batches) in {dt:.2f}s "
            f"= {n_batches / dt:,.0f} batches/s, {400 * batch / dt:,.0f} metric rows/s"
        )
        await store.close()
    finally:
        cluster.destroy()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=500)
    a = ap.parse_args()
    asyncio.run(main(a.rows, a.batch))
