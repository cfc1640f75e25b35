"""The incident service on real PostgreSQL: persisted, restored after a restart, self-resolved
from the collector's unit state, acknowledged by a person, hooks called."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ai_sysadmin.incidents.health import CollectorUnits
from ai_sysadmin.incidents.tracker import IncidentService, TriggerTap
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.trigger.model import Trigger, template_id
from tests.conftest import make_config


def trig(tid: str, sev: str, cat: str, unit: str | None, text: str, at: datetime) -> Trigger:
    return Trigger(
        id=tid,
        severity=sev,
        category=cat,
        source="rule:test",
        unit=unit,
        template=text,
        template_id=template_id(text),
        count=1,
        first_seen=at,
        last_seen=at,
        sample=[text],
        summary=text,
    )


async def test_persist_restore_resolve(tmp_path, pg_database: dict[str, Any]) -> None:
    cfg = make_config(tmp_path, database=pg_database, review={"quiet_seconds": 60})
    store = await open_store(cfg)
    resolved: list[dict] = []

    async def on_resolved(inc: dict) -> None:
        resolved.append(inc)

    try:
        now = datetime.now(UTC)
        clock = [now]
        units = CollectorUnits(store.pool, cfg.intervals.metrics)
        svc = IncidentService(cfg, store.incidents, units, on_resolved=on_resolved, clock=lambda: clock[0])
        tap = TriggerTap(store.triggers, svc.submit)
        await svc.start()
        ts = [
            trig("a" * 32, "critical", "oom", "kernel", "Out of memory: Killed process 5 (web)", now),
            trig("b" * 32, "high", "unit-failure", "web.service", "web.service: Failed with result 'oom-kill'.", now),
            trig(
                "c" * 32,
                "high",
                "unit-failure",
                "db2.service",
                "db2.service: Failed with result 'exit-code'.",
                now + timedelta(seconds=400),
            ),
        ]
        await tap.record_triggers(ts, "cursor-1")
        await svc.process()
        rows = await store.incidents.list()
        assert len(rows) == 2
        oom = next(r for r in rows if r["category"] == "oom")
        assert oom["triggers"] == 2 and oom["severity"] == "critical"
        shown = await store.incidents.show(oom["id"])
        assert {t["id"] for t in shown["triggers"]} == {"a" * 32, "b" * 32}

        # A restart: a new service takes the live incidents back; a recurrence joins, not opens.
        svc2 = IncidentService(cfg, store.incidents, units, on_resolved=on_resolved, clock=lambda: clock[0])
        await svc2.start()
        assert {i.id for i in svc2.active()} == {r["id"] for r in rows}
        svc2.submit(
            [
                trig(
                    "d" * 32,
                    "high",
                    "unit-failure",
                    "web.service",
                    "web.service: Failed again",
                    now + timedelta(seconds=5),
                )
            ]
        )
        await svc2.process()
        assert len(await store.incidents.list()) == 2

        # A trigger that reached the database only after its incident was saved (spooled in an
        # outage) is linked on the next tick.
        late = trig(
            "e" * 32, "high", "unit-failure", "web.service", "web.service: Failed late", now + timedelta(seconds=6)
        )
        svc2.submit([late])
        await svc2.process()
        assert (await store.triggers.get("e" * 32)) is None  # not in the database yet
        await store.triggers.record_triggers([late], None, stream="thresholds")
        await svc2.tick()
        assert (await store.triggers.get("e" * 32))["incident_id"] == oom["id"]

        # A person acknowledges the db2 incident: the service keeps that status.
        db2 = next(r for r in rows if r["category"] == "unit-failure")
        await store.incidents.set_status(db2["id"], "acknowledged")
        await svc2.tick()
        assert next(i for i in svc2.active() if i.id == db2["id"]).status == "acknowledged"

        # Self-resolution needs the collector's unit state: web.service failed -> stays open.
        clock[0] = now + timedelta(seconds=1000)
        ts_now = time.time()
        await store.metrics.write(
            [Sample(ts_now, "units.failed", 1.0), Sample(ts_now, "unit.failed", 1.0, "web.service")]
        )
        await svc2.tick()
        assert svc2.correlator.by_id(oom["id"]).status == "open"
        assert svc2.correlator.by_id(db2["id"]).status == "resolved"  # db2.service is not failed
        # The collector sees it healthy again: resolved, with the reason, and the hook is called.
        await store.metrics.write([Sample(ts_now + 1, "units.failed", 0.0)])
        await svc2.tick()
        got = await store.incidents.show(oom["id"])
        assert got["status"] == "resolved" and "web.service no longer failed" in got["resolution"]
        assert got["resolved_reason"] == got["resolution"]
        assert [r["id"] for r in resolved if r["category"] == "oom"] == [oom["id"]]
    finally:
        await store.close()
