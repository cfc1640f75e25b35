"""A fleet member's incident investigated on the hub (docs/fleet.md#what-the-review-and-the-investigation-read):
the tools read what the hub holds of that member -- its journal files in the hub's journal
directory, its metrics and failed units in the hub's PostgreSQL, its triggers and incidents
-- never the hub's own state or another member's; the hub's own incident keeps the live
host's tools.

Real parts: journal files written by systemd-journal-remote, named as it names them on a
hub (SplitMode=host), read by the real journalctl; the real PostgreSQL with rows of three
hosts, the rows the member collector writes (put there by the schema owner).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ai_sysadmin.compose.investigator import HostInvestigators, escalation_investigator
from ai_sysadmin.incidents.health import CollectorUnits
from ai_sysadmin.incidents.tracker import IncidentService
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.trigger.remote_names import remote_file_name
from rig.journal import JournalWriter
from tests.conftest import make_config
from tests.incidents.test_fleet import trig
from tests.store.helpers import insert_host_metrics
from tests.trigger.helpers import entry


def journals(tmp_path: Path, writer: JournalWriter) -> tuple[Path, Path]:
    """The hub's own journal file, and the hub's journal-remote directory with web-1's and web-2's."""
    own = writer.write(
        tmp_path / "hub" / "system.journal",
        [entry("hub-own: nginx.service restarted fine", ident="nginx", unit="nginx.service", priority=3)],
        hostname="hub",
    )
    remote = tmp_path / "remote"
    writer.write(
        remote / remote_file_name("web-1"),
        [
            entry(
                "web-1: bind() to 0.0.0.0:80 failed (98: Address in use)",
                ident="nginx",
                unit="nginx.service",
                priority=3,
            ),
            entry("web-1: cron ran", ident="cron", unit="cron.service"),
        ],
        hostname="web-1",
    )
    writer.write(
        remote / remote_file_name("web-2"),
        [entry("web-2: nginx is not web-1's", ident="nginx", unit="nginx.service", priority=3)],
        hostname="web-2",
    )
    return own, remote


async def three_hosts_metrics(conn: Any) -> None:
    now = time.time()
    # The same names on every host, different values: a read of the wrong host shows.
    await insert_host_metrics(
        conn,
        "hub",
        [
            Sample(now, "units.failed", 1.0),
            Sample(now, "unit.failed", 1.0, "hubd.service"),
            Sample(now, "disk.used_percent", 91.0, "/"),
        ],
    )
    await insert_host_metrics(
        conn,
        "web-1",
        [
            Sample(now, "units.failed", 1.0),
            Sample(now, "unit.failed", 1.0, "nginx.service"),
            Sample(now, "disk.used_percent", 42.0, "/"),
            Sample(now, "disk.used_percent", 77.0, "/srv"),
            Sample(now, "disk.inodes_used_percent", 3.0, "/srv"),
        ],
    )
    await insert_host_metrics(
        conn,
        "web-2",
        [
            Sample(now, "units.failed", 1.0),
            Sample(now, "unit.failed", 1.0, "web2-only.service"),
            Sample(now, "disk.used_percent", 13.0, "/"),
        ],
    )


async def test_a_members_incident_is_investigated_with_what_the_hub_holds_of_that_member(
    tmp_path: Path, pg_database: dict[str, Any], journal_writer: JournalWriter
) -> None:
    own, remote = journals(tmp_path, journal_writer)
    cfg = make_config(
        tmp_path,
        database=pg_database,
        journal={"source": "file", "path": str(own)},
        fleet={"role": "hub", "host": "hub", "journal_dir": str(remote)},
    )
    store = await open_store(cfg)
    try:
        async with store.pool.connection() as conn:
            await three_hosts_metrics(conn)
        now = datetime.now(UTC)
        w1 = trig("web-1", now)
        w2 = trig("web-2", now, rule="rule:segfault", unit="php-fpm.service", n=1)
        mine = trig(None, now, unit="hubd.service", n=2)  # the hub's own journal
        await store.triggers.record_triggers([w1, w2, mine], "c1")
        svc = IncidentService(cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics, local="hub"))
        svc.submit([w1, w2, mine])
        await svc.process()
        ids = {r["host"]: r["id"] for r in await store.incidents.list()}
        assert set(ids) == {"web-1", "web-2", "hub"}

        inv = escalation_investigator(cfg, client=None, proposer=None, pool=store.pool, knowledge=None, findings=None)
        assert isinstance(inv, HostInvestigators)
        member = await inv.for_incident(ids["web-1"])
        assert member is not inv.local and await inv.for_incident(ids["web-1"]) is member  # built once per host
        tools = member.tools
        assert tools.context is not None and tools.context.host.name == "member:web-1"
        assert member.about is not None and "host web-1, a member of the fleet" in member.about

        # The journal: web-1's file in the hub's directory, with the live host's argument checks.
        r = await tools.call("journal_query", {})
        assert r.ok and r.data == {"entries": 2}, r.text
        assert "web-1: bind() to 0.0.0.0:80 failed" in r.text and "hub-own" not in r.text and "web-2" not in r.text
        r = await tools.call("journal_query", {"unit": "nginx.service", "priority": "err"})
        assert r.data == {"entries": 1} and "Address in use" in r.text
        r = await tools.call("journal_query", {"since": "--output=export"})
        assert not r.ok and r.text.startswith("error: invalid argument since:")

        # Unit states: web-1's collector rows, not the hub's (hubd) or web-2's.
        r = await tools.call("failed_units", {})
        assert r.ok and [u["unit"] for u in r.data["units"]] == ["nginx.service"], r.text
        r = await tools.call("unit_status", {"unit": "nginx.service"})
        assert r.ok and "ActiveState=failed" in r.text, r.text
        r = await tools.call("unit_status", {"unit": "hubd.service"})
        assert r.ok and "ActiveState=unknown (not failed)" in r.text, r.text

        # Disks and metrics: web-1's values (the hub's / is at 91%, web-2's at 13%).
        r = await tools.call("disk_usage", {})
        assert r.ok and [(m["mount"], m["used_percent"]) for m in r.data["mounts"]] == [("/", 42.0), ("/srv", 77.0)]
        r = await tools.call("metrics_query", {"name": "disk.used_percent", "subject": "/", "aggregate": "last"})
        assert r.ok and r.summary == "1 points, min 42 max 42 last 42", r.summary
        r = await tools.call("metrics_query", {})
        assert r.ok and "disk.used_percent / 1 42 42 42" in r.text and "disk.used_percent /srv 1 77" in r.text, r.text
        assert "unit.failed nginx.service" in r.text and "hubd.service" not in r.text and "web2-only" not in r.text

        # Triggers and incidents: web-1's only.
        r = await tools.call("trigger_templates", {})
        assert r.ok and r.data["evidence_ids"]["trigger"] == [w1.id], r.text
        r = await tools.call("incident_history", {})
        assert r.ok and r.data["evidence_ids"]["incident"] == [str(ids["web-1"])], r.text
        r = await tools.call("incident_history", {"incident_id": ids["hub"]})
        assert not r.ok

        # What the hub does not hold is an error naming the member, never the hub's own facts.
        for name, args in (
            ("top_processes", {}),
            ("largest_dirs", {"path": "/var"}),
            ("nixos_generations", {}),
            ("unit_dependencies", {"unit": "nginx.service"}),
        ):
            r = await tools.call(name, args)
            assert not r.ok and "not held on the hub for member web-1" in r.text, (name, r.text)

        # The hub's own incident: the live host's tools (its own journal file).
        local = await inv.for_incident(ids["hub"])
        assert local is inv.local and local.tools.context is not None and local.tools.context.host.name == "live"
        r = await local.tools.call("journal_query", {})
        assert r.ok and "hub-own" in r.text and "web-1" not in r.text
        assert await inv.for_incident(None) is inv.local
    finally:
        await store.close()


async def test_a_member_without_a_journal_file_or_unit_rows_says_so(
    tmp_path: Path, pg_database: dict[str, Any], journal_writer: JournalWriter
) -> None:
    own, remote = journals(tmp_path, journal_writer)
    cfg = make_config(
        tmp_path,
        database=pg_database,
        journal={"source": "file", "path": str(own)},
        fleet={"role": "hub", "host": "hub", "journal_dir": str(remote)},
    )
    store = await open_store(cfg)
    try:
        async with store.pool.connection() as conn:
            await three_hosts_metrics(conn)
        w3 = trig("web-3", datetime.now(UTC))
        await store.triggers.record_triggers([w3], "c1")
        svc = IncidentService(cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics, local="hub"))
        svc.submit([w3])
        await svc.process()
        (row,) = await store.incidents.list()
        inv = escalation_investigator(cfg, client=None, proposer=None, pool=store.pool, knowledge=None, findings=None)
        assert isinstance(inv, HostInvestigators)
        tools = (await inv.for_incident(row["id"])).tools
        r = await tools.call("journal_query", {})
        assert not r.ok and "no journal file of member web-3" in r.text, r.text
        r = await tools.call("failed_units", {})
        assert not r.ok and "no unit state of member web-3" in r.text, r.text
        r = await tools.call("disk_usage", {})
        assert not r.ok and "not held on the hub for member web-3" in r.text, r.text
    finally:
        await store.close()


def test_a_standalone_host_keeps_one_live_investigator(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, fleet={"host": "solo"})
    inv = escalation_investigator(cfg, client=None, proposer=None, pool=object(), knowledge=None, findings=None)
    assert not isinstance(inv, HostInvestigators) and inv.tools.context is not None
    assert inv.tools.context.host.name == "live" and inv.about is None
