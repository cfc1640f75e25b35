"""`--host` on `ai-sysadmin status`, `incidents` and `actions list` as an admin of a fleet's hub
runs them (docs/fleet.md): only that host's rows, fleet incidents listed with their hosts,
and a bad host id refused with the option named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ai_sysadmin.actions.proposals import ActionService
from ai_sysadmin.actions.types import Proposal
from ai_sysadmin.incidents.health import CollectorUnits
from ai_sysadmin.incidents.tracker import IncidentService
from ai_sysadmin.store.lifecycle import open_store
from tests.conftest import make_config
from tests.incidents.test_fleet import trig
from tests.store.test_cli import cli

HUB = {"role": "hub", "host": "hub"}


async def fleet_rows(tmp_path: Path, db: dict[str, Any]) -> dict[str, int]:
    """A fleet incident on web-a and web-b, web-c's own incident, and a queued action on each
    of their hosts; returns the incident ids by name."""
    cfg = make_config(tmp_path, database=db, fleet=HUB)
    store = await open_store(cfg)
    try:
        svc = IncidentService(cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics))
        now = datetime.now(UTC)
        ts = [
            trig("web-a", now),
            trig("web-b", now + timedelta(seconds=60)),
            trig("web-c", now, rule="rule:segfault", unit="redis.service", n=1),
        ]
        await store.triggers.record_triggers(ts, "c1")
        svc.submit(ts)
        await svc.process()
        ids = {tuple(r["hosts"]): r["id"] for r in await store.incidents.list()}
        out = {"fleet": ids[("web-a", "web-b")], "c": ids[("web-c",)]}
        actions = ActionService(cfg, store.pool)
        for incident, unit in ((out["fleet"], "nginx.service"), (out["c"], "redis.service")):
            await actions.propose(Proposal("restart_unit", {"unit": unit}, "failed", "rules", incident_id=incident))
        return out
    finally:
        await store.close()


async def test_host_filters_in_the_cli(pg_database: dict[str, Any], tmp_path: Path) -> None:
    ids = await fleet_rows(tmp_path, pg_database)
    conf = {"database": pg_database, "fleet": HUB}

    r = cli(tmp_path, conf, "incidents")
    assert r.returncode == 0, r.stderr
    assert f"#{ids['fleet']}" in r.stdout and "fleet: web-a, web-b" in r.stdout and f"#{ids['c']}" in r.stdout
    r = cli(tmp_path, conf, "incidents", "--host", "web-b", "--json")
    assert r.returncode == 0, r.stderr
    assert [(i["id"], i["hosts"]) for i in json.loads(r.stdout)] == [(ids["fleet"], ["web-a", "web-b"])]
    r = cli(tmp_path, conf, "incidents", "--host", "web-c")
    assert r.returncode == 0 and f"#{ids['c']}" in r.stdout and f"#{ids['fleet']}" not in r.stdout
    r = cli(tmp_path, conf, "incidents", "--host", "nowhere")
    assert r.returncode == 0 and r.stdout.strip() == "no incidents"
    r = cli(tmp_path, conf, "incidents", "show", str(ids["fleet"]))
    assert r.returncode == 0 and "host fleet: web-a, web-b" in r.stdout and "web-b: first seen" in r.stdout

    r = cli(tmp_path, conf, "actions", "list", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert sorted(a["host"] for a in json.loads(r.stdout)) == ["web-a", "web-b", "web-c"]
    r = cli(tmp_path, conf, "actions", "list", "--host", "web-b", "--format", "json")
    rows = json.loads(r.stdout)
    assert [(a["host"], a["incident_id"], a["status"]) for a in rows] == [("web-b", ids["fleet"], "queued")]
    r = cli(tmp_path, conf, "actions", "list", "--host", "web-c")
    assert r.returncode == 0 and "web-c" in r.stdout and "web-a" not in r.stdout

    r = cli(tmp_path, conf, "status", "--host", "web-c", "--format", "json")
    st = json.loads(r.stdout)
    assert st["host"] == "web-c" and [i["id"] for i in st["open_incidents"]] == [ids["c"]]
    assert st["pending_approvals"] == 1 and st["layers"]["l1"]["triggers_last_hour"] == 1
    r = cli(tmp_path, conf, "status", "--format", "json")
    st = json.loads(r.stdout)
    assert "host" not in st and {i["id"] for i in st["open_incidents"]} == {ids["fleet"], ids["c"]}
    assert st["pending_approvals"] == 3
    r = cli(tmp_path, conf, "status", "--host", "web-a")
    assert "host web-a" in r.stdout and "fleet: web-a, web-b" in r.stdout and "pending approvals: 1" in r.stdout

    for argv in (("status",), ("incidents",), ("actions", "list")):
        r = cli(tmp_path, conf, *argv, "--host", "web a;rm")
        assert r.returncode == 2 and "argument --host: 'web a;rm' must be a host id" in r.stderr, r.stderr
