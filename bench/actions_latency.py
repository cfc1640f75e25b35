"""What a proposal costs, and how fast the executor picks up an approved action (NOTIFY vs poll).

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python -m bench.actions_latency [--n 200]

Against a throwaway PostgreSQL cluster: p50/p99 of ActionService.propose for valid
(recorded, auto-approved) and invalid (refused, recorded) proposals; then with an
Executor running in the same process (poll interval 30 s, so only NOTIFY can be fast),
the time from the proposal's commit until the executor has moved the action out of
`approved` (a `notify` action: `logger` runs, its outcome does not matter here).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid

from ai_sysadmin.actions.executor import Executor
from ai_sysadmin.actions.proposals import ActionService
from ai_sysadmin.actions.types import Proposal
from ai_sysadmin.config import parse_config
from ai_sysadmin.store.db import make_pool
from ai_sysadmin.store.migrations import migrate
from rig.postgres import PgCluster


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


async def main(n: int) -> None:
    cluster = PgCluster.create()
    cluster.start()
    try:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        cluster.create_database(name)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = parse_config(
                {
                    "state_dir": tmp,
                    "autonomy_level": "auto-safe",
                    "database": cluster.database_config(name),
                    "actions": {
                        "rate_limit_per_target": 10**9,
                        "rate_limit_per_action": 10**9,
                        "cooldown_seconds": 0,
                        "poll_interval": 30,
                    },
                },
                env={},
            )
            pool = make_pool(cfg.database)
            await pool.open(wait=True)
            await migrate(pool)
            svc = ActionService(cfg, pool)
            valid, invalid = [], []
            for i in range(n):
                t = time.perf_counter()
                out = await svc.propose(Proposal("restart_unit", {"unit": f"u{i}.service"}, "bench", "review"))
                valid.append(time.perf_counter() - t)
                assert out.decision == "execute"
                t = time.perf_counter()
                await svc.propose(Proposal("restart_unit", {"unit": f"u{i}; reboot"}, "bench", "meta"))
                invalid.append(time.perf_counter() - t)
            async with pool.connection() as c:  # leave only the pickup measurements pending
                await c.execute("UPDATE actions SET status = 'rejected' WHERE status = 'approved'")
            print(f"propose valid   (n={n}): p50 {pct(valid, 0.5):.2f} ms  p99 {pct(valid, 0.99):.2f} ms")
            print(f"propose refused (n={n}): p50 {pct(invalid, 0.5):.2f} ms  p99 {pct(invalid, 0.99):.2f} ms")

            ex = Executor(cfg, out=lambda line: None)
            stop = asyncio.Event()
            task = asyncio.create_task(ex.run(stop))
            await asyncio.sleep(1.0)  # let it connect and LISTEN before the first measurement
            pickups = []
            for i in range(min(n, 50)):
                t = time.perf_counter()
                out = await svc.propose(Proposal("notify", {"message": f"bench {i}"}, "bench", "review"))
                while True:
                    async with pool.connection() as c:
                        cur = await c.execute("SELECT status FROM actions WHERE id = %s", (out.action_id,))
                        if (await cur.fetchone())[0] != "approved":
                            break
                    await asyncio.sleep(0.002)
                pickups.append(time.perf_counter() - t)
            stop.set()
            await task
            print(
                f"approved -> picked up by the executor via NOTIFY (n={len(pickups)}): p50 {pct(pickups, 0.5):.1f} ms"
                f"  p99 {pct(pickups, 0.99):.1f} ms  (fallback poll: 30000 ms)"
            )
            print(f"mean propose {statistics.mean(valid) * 1000:.2f} ms")
            await pool.close()
    finally:
        cluster.destroy()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    asyncio.run(main(ap.parse_args().n))
