"""Trigger latency in follow mode: entry written to a followed journal -> trigger recorded.

A writer appends one failing-unit entry at a time to a real journal file (systemd-
journal-remote); L1 follows the file (TriggerFollower, deterministic path) and records
into a sink that notes when each trigger arrives.  The write time is taken *after*
systemd-journal-remote returned, so the figure is L1's own latency: polling the file,
parsing, matching, and the checkpoint interval.

    python -m bench.l1_latency [--entries 200] [--commit-interval 0.5] [--poll 0.25] [--pg]

--pg records into the real PostgreSQL store (a throwaway cluster, as in the tests):
the time is taken when record_triggers returned, i.e. the trigger is committed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.follower import TriggerFollower
from ai_sysadmin.trigger.reader import JournalSource
from rig.journal import JournalWriter


class TimingSink:
    def __init__(self, inner=None) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.seen: dict[str, float] = {}
        self.cursor: str | None = None

    async def record_triggers(
        self,
        triggers,
        cursor,
        stream="journal",
        *,  # type: ignore[no-untyped-def]
        checkpoint=None,
    ) -> None:
        if self.inner is not None:
            await self.inner.record_triggers(triggers, cursor, stream, checkpoint=checkpoint)
        now = time.monotonic()
        for t in triggers:
            self.seen.setdefault(t.unit, now)
        self.cursor = cursor

    async def load_cursor(self, stream="journal"):  # type: ignore[no-untyped-def]
        return self.cursor

    async def load_position(self, stream="journal"):  # type: ignore[no-untyped-def]
        return self.cursor, None  # a fresh run: no checkpoint state to resume


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp())
    jfile = tmp / "follow.journal"
    writer = JournalWriter()
    writer.write(jfile, [{"MESSAGE": "boot", "PRIORITY": 6}])
    cluster = store = None
    data: dict = {"state_dir": str(tmp / "state")}
    if args.pg:
        from rig.postgres import PgCluster

        cluster = PgCluster.create()
        cluster.start()
        cluster.create_database("l1bench")
        data["database"] = cluster.database_config("l1bench")
    cfg = parse_config(data, env={})
    if args.pg:
        from ai_sysadmin.store.lifecycle import open_store

        store = await open_store(cfg)
    tcfg = cfg.trigger.model_copy(update={"model": False, "commit_interval": args.commit_interval})
    sink = TimingSink(store.triggers if store else None)
    follower = TriggerFollower(
        tcfg, JournalSource("file", str(jfile)), sink, state_dir=str(tmp / "state"), model=None, poll_interval=args.poll
    )
    task = asyncio.create_task(follower.run())
    await follower.started.wait()
    written: dict[str, float] = {}
    for i in range(args.entries):
        unit = f"svc{i}.service"
        await asyncio.to_thread(
            writer.write,
            jfile,
            [
                {
                    "MESSAGE": f"{unit}: Failed with result 'exit-code'.",
                    "PRIORITY": 4,
                    "SYSLOG_IDENTIFIER": "systemd",
                    "UNIT": unit,
                }
            ],
        )
        written[unit] = time.monotonic()
        await asyncio.sleep(args.gap)
    deadline = time.monotonic() + 30
    while len(sink.seen) < args.entries and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if store is not None:
        await store.close()
    if cluster is not None:
        cluster.destroy()
    lat = sorted((sink.seen[u] - written[u]) * 1000 for u in written if u in sink.seen)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(
        f"trigger latency into {'PostgreSQL' if args.pg else 'memory'} over {len(lat)}/{args.entries} entries "
        f"(poll {args.poll}s, commit interval "
        f"{args.commit_interval}s): p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {lat[-1]:.0f} ms, "
        f"mean {statistics.mean(lat):.0f} ms"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=200)
    ap.add_argument("--commit-interval", type=float, default=0.5)
    ap.add_argument("--poll", type=float, default=0.25)
    ap.add_argument("--gap", type=float, default=0.05, help="seconds between writes")
    ap.add_argument("--pg", action="store_true", help="record into a real PostgreSQL store")
    asyncio.run(main(ap.parse_args()))
