"""Incidents of many hosts (docs/fleet.md#fleet-incidents): each incident is one host's, except
the same rule on the same unit of several hosts within `review.fleet_window`, which is one
fleet incident listing them.  The correlator alone, then the service on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ai_sysadmin.actions.proposals import ActionService
from ai_sysadmin.actions.types import Proposal
from ai_sysadmin.config import ReviewConfig
from ai_sysadmin.incidents.correlate import Correlator, trigger_host
from ai_sysadmin.incidents.health import CollectorUnits
from ai_sysadmin.incidents.tracker import IncidentService
from ai_sysadmin.store.incidents import incident_hosts
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.trigger.model import Trigger, template_id
from tests.conftest import make_config

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CFG = ReviewConfig()  # fleet_window 600 s, incident_window 900 s


def trig(
    host: str | None,
    at: datetime,
    *,
    rule: str = "rule:unit-failed",
    unit: str | None = "nginx.service",
    category: str = "unit-failure",
    text: str = "nginx.service: Failed with result 'exit-code'.",
    n: int = 0,
) -> Trigger:
    # Ids differ per host: each host's L1 pipeline records its own trigger rows.
    return Trigger(
        id=f"{host or 'local'}-{rule}-{unit}-{int(at.timestamp())}-{n}",
        severity="high",
        category=category,
        source=rule,
        unit=unit,
        template=text,
        template_id=template_id(text),
        count=1,
        first_seen=at,
        last_seen=at,
        sample=[text],
        summary=text,
        host=host,
    )


def hub() -> Correlator:
    return Correlator(CFG, trigger_host)


def test_a_fault_on_a_is_an_incident_of_a_only() -> None:
    c = hub()
    c.add([trig("web-a", T0)])
    (inc,) = c.incidents.values()
    assert inc.host == "web-a" and inc.host_list == ["web-a"] and not inc.fleet
    # B's later trouble with another unit opens B's own incident, never joins A's.
    c.add([trig("web-b", T0 + timedelta(seconds=30), rule="rule:segfault", unit="postgresql.service", n=1)])
    assert sorted((i.host, i.fleet) for i in c.incidents.values()) == [("web-a", False), ("web-b", False)]


def test_same_fault_on_two_hosts_within_the_window_is_one_fleet_incident() -> None:
    c = hub()
    c.add([trig("web-a", T0)])
    changes = c.add([trig("web-b", T0 + timedelta(seconds=120)), trig("web-c", T0 + timedelta(seconds=599))])
    (inc,) = c.incidents.values()
    assert [ch.kind for ch in changes] == ["updated"]
    assert inc.fleet and inc.host == "web-a" and inc.host_list == ["web-a", "web-b", "web-c"]
    assert inc.to_json()["hosts"] == ["web-a", "web-b", "web-c"] and len(inc.evidence) == 3
    assert inc.to_json()["host"] == "web-a"


def test_same_fault_outside_the_window_is_two_incidents() -> None:
    c = hub()
    c.add([trig("web-a", T0), trig("web-b", T0 + timedelta(seconds=CFG.fleet_window + 1))])
    assert sorted((i.host, i.fleet) for i in c.incidents.values()) == [("web-a", False), ("web-b", False)]


def test_different_rules_on_two_hosts_are_two_incidents() -> None:
    c = hub()
    c.add(
        [
            trig("web-a", T0),
            trig("web-b", T0 + timedelta(seconds=10), rule="rule:oom-result", n=1),
            # The same rule on another unit is another fault too.
            trig("web-c", T0 + timedelta(seconds=20), unit="postgresql.service", n=2),
        ]
    )
    assert sorted(i.host for i in c.incidents.values()) == ["web-a", "web-b", "web-c"]
    assert not any(i.fleet for i in c.incidents.values())


def test_host_wide_categories_do_not_join_across_hosts() -> None:
    """A disk filling on A and a disk filling on B (different rules) are two problems; cause and
    effect never crosses hosts either: B's unit failing after A's OOM kill is B's own incident."""
    c = hub()
    oom = "Out of memory: Killed process 42 (nginx)"
    c.add([trig("web-a", T0, rule="rule:oom-kill", unit="kernel", category="oom", text=oom)])
    c.add([trig("web-b", T0 + timedelta(seconds=5), text="nginx.service: Failed with result 'oom-kill'.")])
    assert sorted((i.host, i.category) for i in c.incidents.values()) == [
        ("web-a", "oom"),
        ("web-b", "unit-failure"),
    ]


def test_model_templates_match_by_template() -> None:
    """Model-classified triggers have no rule: the same template on the same unit is the same fault."""
    c = hub()
    c.add([trig("web-a", T0, rule="model", text="upstream timed out while reading <*>")])
    c.add([trig("web-b", T0 + timedelta(seconds=60), rule="model", text="upstream timed out while reading <*>")])
    c.add([trig("web-c", T0 + timedelta(seconds=70), rule="model", text="certificate verify failed <*>", n=1)])
    assert sorted(i.host_list for i in c.incidents.values()) == [["web-a", "web-b"], ["web-c"]]


def test_one_host_correlator_ignores_hostnames() -> None:
    """Standalone: the journal's _HOSTNAME changing (a rename) does not split or fleet anything."""
    c = Correlator(CFG)
    c.add([trig("old-name", T0), trig("new-name", T0 + timedelta(seconds=30))])
    (inc,) = c.incidents.values()
    assert inc.host_list == [""] and not inc.fleet
    assert "host" not in inc.to_json() and "hosts" not in inc.to_json()  # replay's output as before


async def test_fleet_incident_stored_restored_filtered_and_proposed_per_host(tmp_path, pg_database: dict[str, Any]):
    cfg = make_config(tmp_path, database=pg_database, fleet={"role": "hub", "host": "hub"})
    store = await open_store(cfg)
    try:
        units = CollectorUnits(store.pool, cfg.intervals.metrics)
        svc = IncidentService(cfg, store.incidents, units)
        await svc.start()
        now = datetime.now(UTC)
        a, b, late = (
            trig("web-a", now),
            trig("web-b", now + timedelta(seconds=90)),
            trig("web-c", now + timedelta(seconds=CFG.fleet_window + 200)),
        )
        other = trig("web-b", now, rule="rule:segfault", unit="postgresql.service", n=1)
        local = trig(None, now, unit="sshd.service", n=2)  # the hub's own journal: no host named
        await store.triggers.record_triggers([a, b, late, other, local], "c1")
        svc.submit([a, b, late, other, local])
        await svc.process()

        rows = await store.incidents.list()
        by_hosts = {tuple(r["hosts"]): r for r in rows}
        assert set(by_hosts) == {("web-a", "web-b"), ("web-c",), ("web-b",), ("hub",)}, rows
        fleet = by_hosts[("web-a", "web-b")]
        assert fleet["host"] == "web-a" and fleet["triggers"] == 2
        assert by_hosts[("hub",)]["host"] == "hub"  # stored with the trigger's host, the local one only when none
        shown = await store.incidents.show(fleet["id"])
        assert [h["host"] for h in shown["hosts"]] == ["web-a", "web-b"]
        assert {t["host"] for t in shown["triggers"]} == {"web-a", "web-b"}

        # Filters: B sees the fleet incident and its own; C only its own; nobody else anything.
        assert {r["id"] for r in await store.incidents.list(host="web-b")} == {
            fleet["id"],
            by_hosts[("web-b",)]["id"],
        }
        assert [r["id"] for r in await store.incidents.list(host="web-c")] == [by_hosts[("web-c",)]["id"]]
        assert await store.incidents.list(host="web-z") == []

        # A restart takes the fleet incident back with its hosts: D's failure within the
        # window joins it.
        svc2 = IncidentService(cfg, store.incidents, units)
        await svc2.start()
        restored = next(i for i in svc2.active() if i.id == fleet["id"])
        assert restored.host == "web-a" and restored.host_list == ["web-a", "web-b"]
        c2 = trig("web-d", now + timedelta(seconds=300), n=3)
        await store.triggers.record_triggers([c2], "c2")
        svc2.submit([c2])
        await svc2.process()
        async with store.pool.connection() as conn:
            assert await incident_hosts(conn, fleet["id"]) == ["web-a", "web-b", "web-d"]
            assert await incident_hosts(conn, None) == []

        # A proposal for the fleet incident: one action per host, each waiting for a person,
        # even at a level that would run it unattended on one host.
        auto = make_config(
            tmp_path, database=pg_database, fleet={"role": "hub", "host": "hub"}, autonomy_level="auto-full"
        )
        service = ActionService(auto, store.pool)
        out = await service.propose(
            Proposal("restart_unit", {"unit": "nginx.service"}, "nginx failed", "rules", incident_id=fleet["id"])
        )
        assert out.decision == "queue" and "fleet incident on 3 hosts" in out.reason
        async with store.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT host, status FROM actions WHERE incident_id = %s ORDER BY id", (fleet["id"],)
            )
            assert await cur.fetchall() == [("web-a", "queued"), ("web-b", "queued"), ("web-d", "queued")]
        # Proposed again: each host's pending action stands, nothing is doubled.
        again = await service.propose(
            Proposal("restart_unit", {"unit": "nginx.service"}, "nginx failed", "rules", incident_id=fleet["id"])
        )
        assert again.action_id == out.action_id and "already pending" in again.reason
        # One host's incident: its action is that host's.
        single = by_hosts[("web-b",)]["id"]
        one = await service.propose(
            Proposal("restart_unit", {"unit": "postgresql.service"}, "crashed", "rules", incident_id=single)
        )
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT host FROM actions WHERE id = %s", (one.action_id,))
            assert await cur.fetchone() == ("web-b",)
        # What auto-full would run on the hub waits for a person on a member: the facts the
        # policy read are the hub's, not web-b's.
        member = await service.propose(
            Proposal("restart_unit", {"unit": "nginx.service"}, "nginx failed", "rules", incident_id=single)
        )
        assert member.decision == "queue" and "action for host web-b" in member.reason, member
        own = by_hosts[("hub",)]["id"]
        mine = await service.propose(
            Proposal("restart_unit", {"unit": "nginx.service"}, "nginx failed", "rules", incident_id=own)
        )
        assert "action for host" not in mine.reason, mine
    finally:
        await store.close()


async def test_standalone_incidents_are_the_local_hosts(tmp_path, pg_database: dict[str, Any]) -> None:
    """Standalone: whatever _HOSTNAME the triggers carry, incidents (and their actions) are this host's."""
    cfg = make_config(tmp_path, database=pg_database, fleet={"host": "solo"})
    store = await open_store(cfg)
    try:
        svc = IncidentService(cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics))
        await svc.start()
        now = datetime.now(UTC)
        ts = [trig("nixos", now), trig("renamed", now + timedelta(seconds=60))]
        await store.triggers.record_triggers(ts, "c1")
        svc.submit(ts)
        await svc.process()
        (row,) = await store.incidents.list()
        assert row["host"] == "solo" and row["hosts"] == ["solo"] and row["triggers"] == 2
        # A restart takes it back as one host's, and a recurrence joins it.
        svc2 = IncidentService(cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics))
        await svc2.start()
        (inc,) = svc2.active()
        assert inc.id == row["id"] and not inc.fleet
        again = trig("other-name", now + timedelta(seconds=120), n=1)
        await store.triggers.record_triggers([again], "c2")
        svc2.submit([again])
        await svc2.process()
        assert [(r["id"], r["hosts"], r["triggers"]) for r in await store.incidents.list()] == [
            (row["id"], ["solo"], 3)
        ]
    finally:
        await store.close()


async def test_a_hubs_switch_explains_nothing_on_a_member(tmp_path, pg_database: dict[str, Any]) -> None:
    """Switch attribution (docs/preflight.md) pairs a switch with incidents of its own host only:
    the hub switching nginx does not make web-a's nginx failure the hub's switch's fault."""
    from ai_sysadmin.store.switches import SwitchRow, SwitchStore

    cfg = make_config(tmp_path, database=pg_database, fleet={"role": "hub", "host": "hub"})
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        switches = SwitchStore(store.pool)
        await switches.record(SwitchRow(now, 1, 2, "/nix/store/a", "/nix/store/b", "ok", {}, ("nginx.service",)))
        svc = IncidentService(cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics))
        ts = [trig("web-a", now + timedelta(seconds=5)), trig(None, now + timedelta(seconds=6), rule="rule:crash")]
        await store.triggers.record_triggers(ts, "c1")
        svc.submit(ts)
        await svc.process()
        ids = {r["host"]: r["id"] for r in await store.incidents.list()}
        assert set(ids) == {"web-a", "hub"}
        assert [a["incident_id"] for a in await switches.attribute(900, 30)] == [ids["hub"]]
    finally:
        await store.close()


def test_the_review_and_the_notification_name_a_fleet_incidents_hosts() -> None:
    from ai_sysadmin.review.candidates import notify_message

    c = hub()
    c.add([trig("web-a", T0), trig("web-b", T0 + timedelta(seconds=5)), trig("db-1", T0, unit="x.service", n=1)])
    fleet = next(i for i in c.incidents.values() if i.fleet)
    single = next(i for i in c.incidents.values() if not i.fleet)
    assert notify_message(fleet).endswith(" on 2 hosts: web-a, web-b")
    assert "hosts" not in notify_message(single)  # one host's message is as before
    fleet.title = "x" * 300
    assert len(notify_message(fleet)) <= 500


# ------------------------------------------------------------------ a member's context on the hub


async def _unit_rows(conn: Any, host: str, failed: list[str], **disk: float) -> None:
    """A collector reading of `host` as it lands on the hub (the member collector's rows)."""
    import time

    from ai_sysadmin.store.metrics import Sample
    from tests.store.helpers import insert_host_metrics

    now = time.time()
    samples = [Sample(now, "units.failed", float(len(failed)))]
    samples += [Sample(now, "unit.failed", 1.0, u) for u in failed]
    samples += [Sample(now, "disk.used_percent", v, "/" + m.strip("_")) for m, v in disk.items()]
    await insert_host_metrics(conn, host, samples)


async def test_a_member_incident_resolves_by_the_members_unit_state(tmp_path, pg_database: dict[str, Any]) -> None:
    cfg = make_config(tmp_path, database=pg_database, fleet={"role": "hub", "host": "hub"})
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        later = now + timedelta(seconds=cfg.review.quiet_seconds + 5)
        units = CollectorUnits(store.pool, cfg.intervals.metrics, local="hub")
        svc = IncidentService(cfg, store.incidents, units, clock=lambda: later)
        ts = [
            trig("web-1", now),  # nginx.service on web-1
            trig("web-2", now, rule="rule:segfault", unit="php-fpm.service", n=1),
            trig("web-3", now, rule="rule:segfault", unit="redis.service", n=2),
            trig(None, now, rule="rule:segfault", unit="sshd.service", n=3),  # the hub's own
        ]
        await store.triggers.record_triggers(ts, "c1")
        svc.submit(ts)
        await svc.process()
        async with store.pool.connection() as conn:
            # The hub's view says nginx and php-fpm failed, sshd not; each member's says otherwise.
            await _unit_rows(conn, "hub", ["nginx.service", "php-fpm.service"])
            await _unit_rows(conn, "web-1", [])
            await _unit_rows(conn, "web-2", ["php-fpm.service"])
            # web-3 has written no unit state: unknown, whatever the hub's says.
        changes = await svc.tick()
        assert sorted(ch.incident.host for ch in changes if ch.kind == "resolved") == ["hub", "web-1"]
        status = {r["host"]: r["status"] for r in await store.incidents.list()}
        assert status == {"web-1": "resolved", "web-2": "open", "web-3": "open", "hub": "resolved"}
        # The view of each host, as asked: the hub's own by its id, a member's by its.
        assert (await units.view("web-2")).failed == frozenset({"php-fpm.service"})
        assert (
            (await units.view("hub")).failed
            == (await units.view()).failed
            == frozenset({"nginx.service", "php-fpm.service"})
        )
        assert not (await units.view("web-3")).available
    finally:
        await store.close()


async def test_a_fleet_incident_resolves_when_every_host_is_healthy(tmp_path, pg_database: dict[str, Any]) -> None:
    cfg = make_config(tmp_path, database=pg_database, fleet={"role": "hub", "host": "hub"})
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC)
        later = now + timedelta(seconds=30 + cfg.review.quiet_seconds + 5)  # quiet after web-b's trigger
        svc = IncidentService(
            cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics, local="hub"), clock=lambda: later
        )
        ts = [trig("web-a", now), trig("web-b", now + timedelta(seconds=30))]
        await store.triggers.record_triggers(ts, "c1")
        svc.submit(ts)
        await svc.process()
        async with store.pool.connection() as conn:
            await _unit_rows(conn, "web-a", [])
            await _unit_rows(conn, "web-b", ["nginx.service"])
        assert await svc.tick() == []  # still failed on web-b
        async with store.pool.connection() as conn:
            await _unit_rows(conn, "web-b", [])
        [ch] = await svc.tick()
        assert ch.kind == "resolved" and ch.incident.host_list == ["web-a", "web-b"]
    finally:
        await store.close()


async def test_the_review_of_a_member_incident_shows_that_members_state(tmp_path, pg_database: dict[str, Any]) -> None:
    from ai_sysadmin.context.build import build_context
    from ai_sysadmin.review.candidates import candidates_for
    from ai_sysadmin.review.stack import ReviewStack

    cfg = make_config(tmp_path, database=pg_database, fleet={"role": "hub", "host": "hub"})
    store = await open_store(cfg)
    try:
        stack = ReviewStack.build(cfg, store, ActionService(cfg, store.pool))
        w1 = trig("web-1", datetime.now(UTC))
        await store.triggers.record_triggers([w1], "c1")
        stack.incidents.submit([w1])
        await stack.incidents.process()
        async with store.pool.connection() as conn:
            await _unit_rows(conn, "hub", ["hubd.service"], root=91.0)
            await _unit_rows(conn, "web-1", ["nginx.service"], root=42.0, srv=77.0)
            await _unit_rows(conn, "web-2", ["web2-only.service"], root=13.0)
        svc = stack.review
        incs = list(svc.incidents())
        cands = {i.key: candidates_for(i, lambda u: False) for i in incs}
        inputs = await svc._inputs(incs, cands)
        assert {m.get("host") for m in inputs.metrics} == {"web-1"}
        disk = {m["subject"]: m["last"] for m in inputs.metrics if m["name"] == "disk.used_percent"}
        assert disk == {"/root": 42.0, "/srv": 77.0}
        assert inputs.units_by_host == {"web-1": {"available": True, "failed": ["nginx.service"], "reason": ""}}
        svc.budget = 6000  # no tokenizer here: the conservative estimate needs room
        ctx = await build_context(inputs, svc.counter, svc.budget)
        assert "the hub of a fleet" in ctx.system and "| host web-1 (member)" in ctx.user
        assert "Units on host web-1 (member): failed: nginx.service." in ctx.user
        assert "host web-1: disk.used_percent[/srv] = 77" in ctx.user
        assert "hubd" not in ctx.user and "91" not in ctx.user and "web2-only" not in ctx.user

        # With no incident the hub reviews itself: its own state, named as the hub's.
        inputs = await svc._inputs([], {})
        assert {m.get("host") for m in inputs.metrics} == {"hub"}
        assert inputs.units_by_host == {"hub": {"available": True, "failed": ["hubd.service"], "reason": ""}}
    finally:
        await store.close()


async def test_a_standalone_review_reads_only_its_own_rows(tmp_path, pg_database: dict[str, Any]) -> None:
    from ai_sysadmin.review.state_sources import PgState
    from ai_sysadmin.store.metrics import failed_units

    cfg = make_config(tmp_path, database=pg_database, fleet={"host": "solo"})
    store = await open_store(cfg)
    try:
        async with store.pool.connection() as conn:
            await _unit_rows(conn, "solo", ["mine.service"], root=50.0)
            await _unit_rows(conn, "stranger", ["theirs.service"], root=99.0)  # rows of no concern here
            assert await failed_units(conn, 600) == frozenset({"mine.service"})
            assert await failed_units(conn, 600, "stranger") == frozenset({"theirs.service"})
        rows = await PgState(cfg, store.pool).metrics()
        assert [(m["name"], m["subject"], m["last"]) for m in rows if m["name"] == "disk.used_percent"] == [
            ("disk.used_percent", "/root", 50.0)
        ]
        assert all("host" not in m for m in rows)
    finally:
        await store.close()
