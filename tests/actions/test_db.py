"""The proposer, approvals, grants and the executor's re-validation against real PostgreSQL roles.

Executions here use only actions that refuse, expire or dry-run before touching the
host; the runs against real systemd and real Nix are in test_nspawn.py and test_nix.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from ai_sysadmin.actions import approvals
from ai_sysadmin.actions.executor import Executor
from ai_sysadmin.actions.facts import now_utc, set_pause
from ai_sysadmin.actions.proposals import ActionService
from ai_sysadmin.actions.signing import load_key
from ai_sysadmin.actions.types import Proposal
from ai_sysadmin.store.db import make_pool
from tests.actions.conftest import RolesDB, config, digest_of


def P(action: str, **params) -> Proposal:
    # A person's proposal (CLI): these tests are about the policy's facts and the executor, not
    # about binding a model's proposal to its incident (tests/actions/test_binding.py).
    return Proposal(action=action, params=params, reason="test", source="cli")


async def _rows(db: RolesDB, q: str, *args) -> list[dict]:
    async with await psycopg.AsyncConnection.connect(db.conninfo(db.orchestrator)) as c:
        cur = c.cursor(row_factory=dict_row)
        await cur.execute(q, args)
        return await cur.fetchall()


class Rig:
    def __init__(
        self, tmp: Path, db: RolesDB, key: Path, level: str = "auto-safe", disk_percent: float = 90.0, **actions
    ):
        self.db = db
        self.orch_cfg = config(tmp, db, db.orchestrator, autonomy_level=level, actions=actions)
        self.exec_cfg = config(
            tmp,
            db,
            db.executor,
            autonomy_level=level,
            thresholds={"disk_percent": disk_percent},
            actions={
                "approval_key_file": str(key),
                "nix_mode": "dry-run",
                "system_profile": str(tmp / "no-such-profile"),
                **actions,
            },
        )
        self.api_cfg = config(tmp, db, db.api, actions={"approval_key_file": str(key)})

    async def __aenter__(self) -> Rig:
        self.pool = make_pool(self.orch_cfg.database)
        self.api_pool = make_pool(self.api_cfg.database)
        await self.pool.open(wait=True)
        await self.api_pool.open(wait=True)
        self.service = ActionService(self.orch_cfg, self.pool)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.pool.close()
        await self.api_pool.close()

    async def execute_pending(self, **kw) -> Executor:
        ex = Executor(self.exec_cfg, out=lambda line: None, **kw)
        conn = await ex.connect()
        try:
            await ex.process_pending(conn)
        finally:
            await conn.close()
        return ex


def test_every_decision_is_recorded_with_its_reason(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, rate_limit_per_target=1) as rig:
            ok = await rig.service.propose(P("restart_unit", unit="web.service"))
            assert (ok.decision, ok.risk) == ("execute", "low") and ok.action_id
            dup = await rig.service.propose(P("restart_unit", unit="web.service"))
            assert dup.action_id == ok.action_id and "already pending" in dup.reason
            prot = await rig.service.propose(P("restart_unit", unit="sshd.service"))
            assert prot.decision == "refuse" and "protected" in prot.reason
            own = await rig.service.propose(P("restart_unit", unit="ai-sysadmin-executor.service"))
            assert own.decision == "refuse"
            high = await rig.service.propose(P("rollback_generation"))
            assert high.decision == "queue" and "high risk" in high.reason
            med = await rig.service.propose(P("collect_garbage", older_than_days=30))
            assert med.decision == "queue"
            bad = await rig.service.propose(
                Proposal(action="restart_unit", params={"unit": "x; reboot"}, reason="model", source="meta")
            )
            assert bad.decision == "refuse" and [e.field for e in bad.errors] == ["params.unit"]
            unknown = await rig.service.propose(Proposal(action="rm_rf", params={}, reason="", source="meta"))
            assert unknown.decision == "refuse" and unknown.errors[0].field == "action"
            state = await rig.service.policy_state()
            assert state["queued"] == 2 and state["paused_until"] is None
            # the approved one counts against the per-target limit (1): the next is queued
            again = await rig.service.propose(P("reset_failed_unit", unit="web.service"))
            assert again.decision == "queue" and ("rate limit" in again.reason or "breaker" in again.reason)
            await rig.execute_pending()  # the executor reads the unit's state first: no systemd here -> refused
        rows = await _rows(roles_db, "SELECT id, status, decision, decision_reason, errors FROM actions ORDER BY id")
        assert [r["decision"] for r in rows] == [
            "execute",
            "refuse",
            "refuse",
            "queue",
            "queue",
            "refuse",
            "refuse",
            "queue",
        ]
        assert all(r["decision_reason"] for r in rows)
        steps = await _rows(roles_db, "SELECT action_id, to_status FROM action_steps WHERE from_status IS NULL")
        assert len(steps) == len(rows)
        audit = await _rows(roles_db, "SELECT event, subject FROM audit_log ORDER BY id")
        events = [a["event"] for a in audit]
        assert events.count("action.refuse") == 4 and "action.duplicate" in events and "action.execute" in events

    asyncio.run(main())


def test_a_pending_action_is_a_duplicate_only_for_its_own_incident(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path
) -> None:
    """The same action pending for incident A does not swallow incident B's proposal (issue 19):
    B gets its own row, linked to B; a repeat for A (or for no incident) is still a duplicate."""

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(roles_db.conninfo(roles_db.orchestrator)) as c:
            a, b = [
                (
                    await (
                        await c.execute(
                            "INSERT INTO incidents (title, severity, category, status) "
                            "VALUES (%s, 'high', 'crash', 'open') "
                            "RETURNING id",
                            (title,),
                        )
                    ).fetchone()
                )[0]
                for title in ("A", "B")
            ]
            await c.commit()

        def for_incident(incident: int | None) -> Proposal:
            return Proposal(
                action="restart_unit", params={"unit": "web.service"}, reason="test", source="cli", incident_id=incident
            )

        async with Rig(tmp_path, roles_db, approval_key, level="suggest") as rig:
            first = await rig.service.propose(for_incident(a))
            other = await rig.service.propose(for_incident(b))
            again = await rig.service.propose(for_incident(a))
            loose = await rig.service.propose(for_incident(None))
            loose_again = await rig.service.propose(for_incident(None))
        assert first.decision == other.decision == "queue"
        assert other.action_id != first.action_id and "already pending" not in other.reason
        assert again.action_id == first.action_id and "already pending" in again.reason
        assert loose.action_id not in (first.action_id, other.action_id) and "already pending" not in loose.reason
        assert loose_again.action_id == loose.action_id and "already pending" in loose_again.reason
        rows = await _rows(roles_db, "SELECT id, incident_id FROM actions ORDER BY id")
        assert [(r["id"], r["incident_id"]) for r in rows] == [
            (first.action_id, a),
            (other.action_id, b),
            (loose.action_id, None),
        ]

    asyncio.run(main())


def test_roles_have_only_their_grants(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key) as rig:
            q = await rig.service.propose(P("rollback_generation"))
        denied = [
            (
                roles_db.executor,
                "INSERT INTO action_approvals (action_id, kind, approver, approved_at, expires_at) "
                "VALUES (%s, 'person', 'x', now(), now())",
            ),
            (roles_db.executor, "UPDATE actions SET params = '{}' WHERE id = %s"),
            (roles_db.executor, "UPDATE actions SET risk = 'low' WHERE id = %s"),
            (roles_db.executor, "DELETE FROM actions WHERE id = %s"),
            (roles_db.api, "UPDATE actions SET risk = 'low' WHERE id = %s"),
            (roles_db.api, "UPDATE actions SET result = '{}' WHERE id = %s"),
            (roles_db.api, "UPDATE actions SET params = '{}' WHERE id = %s"),
            (roles_db.api, "DELETE FROM actions WHERE id = %s"),
            (roles_db.api, "UPDATE findings SET severity = 'info' WHERE id = %s"),
            (roles_db.api, "INSERT INTO action_breakers (target, reason) VALUES ('x', %s::text)"),
        ]
        for role, stmt in denied:
            async with await psycopg.AsyncConnection.connect(roles_db.conninfo(role)) as c:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    await c.execute(stmt, (q.action_id,))
        # what they need works
        async with await psycopg.AsyncConnection.connect(roles_db.conninfo(roles_db.executor)) as c:
            await c.execute("SELECT * FROM actions, action_approvals, action_breakers, store_settings LIMIT 1")
            await c.execute("UPDATE actions SET updated_at = now() WHERE id = %s", (q.action_id,))
        async with Rig(tmp_path, roles_db, approval_key) as rig:
            out = await approvals.approve(
                rig.api_pool,
                q.action_id,
                "api-key-ops",
                "tested",
                digest=await digest_of(rig.api_pool, q.action_id),
                key=load_key(rig.api_cfg),
            )
            assert out["approver"] == "api-key-ops"

    asyncio.run(main())


@pytest.mark.parametrize("forgery", ["person-bad-signature", "policy-unsigned", "risk-lowered", "params-changed"])
def test_orchestrator_cannot_forge_an_approval(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path, forgery: str
) -> None:
    """As the orchestrator's role (the schema owner), mark an action approved: the executor refuses."""

    async def main() -> None:
        level = "suggest" if forgery == "params-changed" else "auto-full"
        async with Rig(tmp_path, roles_db, approval_key, level=level) as rig:
            if forgery == "params-changed":
                q = await rig.service.propose(P("collect_garbage", older_than_days=30))
                await approvals.approve(
                    rig.api_pool,
                    q.action_id,
                    "alice",
                    "ok",
                    digest=await digest_of(rig.api_pool, q.action_id),
                    key=load_key(rig.api_cfg),
                )
            else:
                q = await rig.service.propose(P("rollback_generation"))
            assert q.decision == "queue"
            async with (
                await psycopg.AsyncConnection.connect(roles_db.conninfo(roles_db.orchestrator)) as c,
                c.transaction(),
            ):
                if forgery == "person-bad-signature":
                    await c.execute(
                        "INSERT INTO action_approvals (action_id, kind, approver, approved_at, "
                        "expires_at, signature) VALUES (%s, 'person', 'alice', now(), "
                        "now() + interval '1 hour', %s)",
                        (q.action_id, "ab" * 32),
                    )
                elif forgery == "policy-unsigned":
                    await c.execute(
                        "INSERT INTO action_approvals (action_id, kind, approver, approved_at, "
                        "expires_at) VALUES (%s, 'policy', 'ai-sysadmin (policy)', now(), "
                        "now() + interval '1 hour')",
                        (q.action_id,),
                    )
                elif forgery == "risk-lowered":
                    await c.execute("UPDATE actions SET risk = 'low' WHERE id = %s", (q.action_id,))
                    await c.execute(
                        "INSERT INTO action_approvals (action_id, kind, approver, approved_at, "
                        "expires_at) VALUES (%s, 'policy', 'ai-sysadmin (policy)', now(), "
                        "now() + interval '1 hour')",
                        (q.action_id,),
                    )
                else:  # a person's signed approval, then the orchestrator edits the parameters
                    await c.execute(
                        "UPDATE actions SET params = '{\"older_than_days\": 1}' WHERE id = %s", (q.action_id,)
                    )
                await c.execute("UPDATE actions SET status = 'approved' WHERE id = %s", (q.action_id,))
            ex = await rig.execute_pending()
            assert ex.handled == 1
        row = (await _rows(roles_db, "SELECT status, started_at, result FROM actions WHERE id = %s", q.action_id))[0]
        assert row["status"] == "refused" and row["started_at"] is None and row["result"] is None
        step = (
            await _rows(
                roles_db,
                "SELECT actor, reason FROM action_steps WHERE action_id = %s ORDER BY id DESC LIMIT 1",
                q.action_id,
            )
        )[0]
        assert step["actor"] == "ai-sysadmin-executor"
        expect = {
            "person-bad-signature": "signature",
            "policy-unsigned": "own policy says queue",
            "risk-lowered": "not the catalog's",
            "params-changed": "signature",
        }[forgery]
        assert expect in step["reason"], step["reason"]

    asyncio.run(main())


def full_store(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> float:
    """A Nix store directory, and an executor threshold this file system is above (it is 'full')."""
    from ai_sysadmin.actions.preconditions import used_percent

    (tmp / "store").mkdir()
    monkeypatch.setenv("NIX_STORE_DIR", str(tmp / "store"))
    return used_percent(str(tmp)) / 2


def test_person_approval_runs_and_expired_one_does_nothing(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = full_store(tmp_path, monkeypatch)

    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="suggest", disk_percent=full) as rig:
            a = await rig.service.propose(P("collect_garbage", older_than_days=7))
            b = await rig.service.propose(P("nix_store_repair"))
            assert a.decision == b.decision == "queue"
            with pytest.raises(approvals.NotAuthorized):
                await approvals.approve(
                    rig.pool, a.action_id, "alice", "ok", digest=await digest_of(rig.pool, a.action_id), key=None
                )
            with pytest.raises(approvals.NotAuthorized):
                await approvals.approve(
                    rig.pool,
                    a.action_id,
                    "ai-sysadmin",
                    "ok",
                    digest=await digest_of(rig.pool, a.action_id),
                    key=load_key(rig.api_cfg),
                )
            with pytest.raises(approvals.NotFound):
                await approvals.approve(rig.pool, 99999, "alice", "ok", digest="0" * 64, key=load_key(rig.api_cfg))
            key = load_key(rig.api_cfg)
            await approvals.approve(
                rig.api_pool,
                a.action_id,
                "alice",
                "disk full",
                digest=await digest_of(rig.api_pool, a.action_id),
                key=key,
            )
            await approvals.approve(
                rig.api_pool,
                b.action_id,
                "alice",
                "later",
                digest=await digest_of(rig.api_pool, b.action_id),
                key=key,
                ttl_seconds=60,
            )
            with pytest.raises(approvals.InvalidState):
                await approvals.approve(
                    rig.api_pool,
                    a.action_id,
                    "alice",
                    "twice",
                    digest=await digest_of(rig.api_pool, a.action_id),
                    key=key,
                )
            # the executor's clock is two minutes on: b's approval is void, a's is not
            later = now_utc() + timedelta(minutes=2)
            await rig.execute_pending(clock=lambda: later)
        rows = {r["id"]: r for r in await _rows(roles_db, "SELECT id, status, result FROM actions")}
        assert rows[b.action_id]["status"] == "expired" and rows[b.action_id]["result"] is None
        # off NixOS (nix_mode dry-run) the medium action is a named dry run: argv printed, not run
        assert rows[a.action_id]["status"] == "dry-run"
        assert rows[a.action_id]["result"]["argv"] == [["nix-collect-garbage", "--delete-older-than", "7d"]]

    asyncio.run(main())


def test_pause_queues_and_holds_the_executor(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="auto-full") as rig:
            a = await rig.service.propose(P("collect_garbage", older_than_days=3))
            assert a.decision == "execute"
            async with rig.pool.connection() as c:
                await set_pause(c, None)
            b = await rig.service.propose(P("vacuum_journal", max_size_mb=500))
            assert b.decision == "queue" and "paused" in b.reason
            ex = await rig.execute_pending()
            assert ex.handled == 0
            assert (await rig.service.policy_state())["paused_until"] == "indefinitely"
        rows = {r["id"]: r["status"] for r in await _rows(roles_db, "SELECT id, status FROM actions")}
        assert rows == {a.action_id: "approved", b.action_id: "queued"}

    asyncio.run(main())


def test_hostile_proposals_through_the_recording_service(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    """The property test's proposals, through ActionService and PostgreSQL: nothing approved that should not be."""
    from hypothesis import HealthCheck, given, settings

    from ai_sysadmin.actions.catalog import load_catalog
    from tests.actions.test_properties import action_ids, params

    catalog = load_catalog()
    loop = asyncio.new_event_loop()
    rig = Rig(
        tmp_path, roles_db, approval_key, level="auto-safe", rate_limit_per_target=10**6, rate_limit_per_action=10**6
    )
    loop.run_until_complete(rig.__aenter__())
    outcomes = []
    try:

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(action=action_ids, p=params)
        def propose(action, p) -> None:
            outcomes.append(
                loop.run_until_complete(
                    rig.service.propose(Proposal(action=action, params=p, reason="r" * 5000, source="meta"))
                )
            )

        propose()
    finally:
        loop.run_until_complete(rig.__aexit__())
        loop.close()
    rows = asyncio.run(_rows(roles_db, "SELECT id, action, params, risk, status, errors FROM actions"))
    assert rows and len(rows) <= len(outcomes)
    for r in rows:
        if r["status"] == "approved":
            va = catalog.validate(r["action"], r["params"])  # raises if it is not a valid catalog action
            assert va.risk == r["risk"] == "low"
        else:
            assert r["status"] in ("refused", "queued")
            if r["status"] == "refused" and r["errors"]:
                assert all(e["field"].startswith(("action", "params", "source")) for e in r["errors"])
    assert all(o.decision != "execute" or o.risk == "low" for o in outcomes)


def test_grants_are_idempotent_and_skip_missing_roles(roles_db: RolesDB) -> None:
    from ai_sysadmin.config import parse_config
    from ai_sysadmin.store.grants import apply_grants

    async def main() -> None:
        section = {**roles_db.section(roles_db.orchestrator), "api_role": "no_such_role_xyz"}
        db = parse_config({"database": section}, env={}).database
        async with await psycopg.AsyncConnection.connect(roles_db.conninfo(roles_db.orchestrator)) as c:
            first = await apply_grants(c, db)
            second = await apply_grants(c, db)
        assert first == second and set(first) == {roles_db.executor}
        assert (
            "UPDATE(status,updated_at,started_at,finished_at,executed_by,result,verification) actions"
            in first[roles_db.executor]
        )

    asyncio.run(main())


def test_the_executor_decides_policy_approvals_from_its_own_config(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path
) -> None:
    """The service runs at auto-full; the executor's own config says auto-safe and protects one more unit."""

    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="auto-full") as rig:
            gc = await rig.service.propose(P("collect_garbage", older_than_days=5))
            unit = await rig.service.propose(P("reset_failed_unit", unit="precious.service"))
            assert gc.decision == unit.decision == "execute"
            rig.exec_cfg = config(
                tmp_path,
                roles_db,
                roles_db.executor,
                autonomy_level="auto-safe",
                protected_units=["precious.service"],
                actions={"nix_mode": "dry-run"},
            )
            await rig.execute_pending()
        rows = {r["id"]: r for r in await _rows(roles_db, "SELECT id, status FROM actions")}
        assert rows[gc.action_id]["status"] == rows[unit.action_id]["status"] == "refused"
        reasons = [
            r["reason"]
            for r in await _rows(
                roles_db, "SELECT reason FROM action_steps WHERE to_status = 'refused' ORDER BY action_id"
            )
        ]
        assert "own policy says queue: medium risk at autonomy level auto-safe" in reasons[0]
        assert "protected unit precious.service (executor's own list)" in reasons[1]

    asyncio.run(main())


def test_notify_wakes_the_executor_long_before_its_poll(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rig.net import wait_until

    full = full_store(tmp_path, monkeypatch)

    async def main() -> None:
        async with Rig(
            tmp_path, roles_db, approval_key, level="auto-full", poll_interval=600, disk_percent=full
        ) as rig:
            ex = Executor(rig.exec_cfg, out=lambda line: None)
            stop = asyncio.Event()
            task = asyncio.create_task(ex.run(stop))
            try:
                # ready once it has run its first round (recovery, pending) and waits on LISTEN
                await asyncio.to_thread(wait_until, lambda: ex.listening, 30, "executor listening")
                out = await rig.service.propose(P("collect_garbage", older_than_days=2))
                await asyncio.to_thread(wait_until, lambda: ex.handled == 1, 30, "picked up via NOTIFY")
            finally:
                stop.set()
                assert await task == 0
        assert (await _rows(roles_db, "SELECT status FROM actions WHERE id = %s", out.action_id))[0][
            "status"
        ] == "dry-run"

    asyncio.run(main())


def test_a_replayed_signed_approval_is_refused(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    """The orchestrator re-creates an action that already ran, with a copy of its (valid) signed approval."""

    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="suggest") as rig:
            q = await rig.service.propose(P("notify", message="disk almost full"))
            await approvals.approve(
                rig.api_pool,
                q.action_id,
                "alice",
                "ok",
                digest=await digest_of(rig.api_pool, q.action_id),
                key=load_key(rig.api_cfg),
            )
            await rig.execute_pending()
            first = (await _rows(roles_db, "SELECT * FROM actions WHERE id = %s", q.action_id))[0]
            assert first["status"] in ("verified", "failed") and first["started_at"] is not None
            ap = (await _rows(roles_db, "SELECT * FROM action_approvals WHERE action_id = %s", q.action_id))[0]
            async with (
                await psycopg.AsyncConnection.connect(roles_db.conninfo(roles_db.orchestrator)) as c,
                c.transaction(),
            ):
                await c.execute("DELETE FROM actions WHERE id = %s", (q.action_id,))
                await c.execute(
                    "INSERT INTO actions (id, action, params, risk, status, target) VALUES "
                    "(%s, 'notify', %s, 'low', 'approved', 'notify')",
                    (q.action_id, psycopg.types.json.Jsonb(first["params"])),
                )
                await c.execute(
                    "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, "
                    "expires_at, signature, digest) VALUES (%s, 'person', %s, '', %s, %s, %s, %s)",
                    (q.action_id, ap["approver"], ap["approved_at"], ap["expires_at"], ap["signature"], ap["digest"]),
                )
            await rig.execute_pending()  # a new executor process: nothing in memory
        row = (await _rows(roles_db, "SELECT status, started_at FROM actions WHERE id = %s", q.action_id))[0]
        assert row["status"] == "refused" and row["started_at"] is None
        reason = (
            await _rows(roles_db, "SELECT reason FROM action_steps WHERE action_id = %s ORDER BY id DESC", q.action_id)
        )[0]["reason"]
        assert "already used" in reason

    asyncio.run(main())


def test_the_executor_checks_the_world_not_the_story(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Policy-approved actions whose stated reason is false on this host: each refused with the
    precondition it failed, in the steps and the audit log, and nothing run."""
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("NIX_STORE_DIR", str(tmp_path / "store"))

    async def main() -> None:
        # thresholds.disk_percent 100: every file system here has room
        async with Rig(tmp_path, roles_db, approval_key, level="auto-full", disk_percent=100.0) as rig:
            vac = await rig.service.propose(P("vacuum_journal", max_size_mb=1024))
            gc = await rig.service.propose(P("collect_garbage", older_than_days=1))
            unit = await rig.service.propose(P("restart_unit", unit="haproxy.service"))
            note = await rig.service.propose(P("notify", message="disk is full"))
            assert vac.decision == gc.decision == unit.decision == note.decision == "execute"
            ex = await rig.execute_pending()
            assert ex.handled == 4
        rows = {r["id"]: r for r in await _rows(roles_db, "SELECT id, status, started_at FROM actions")}
        for a in (vac, gc, unit):
            assert rows[a.action_id]["status"] == "refused" and rows[a.action_id]["started_at"] is None
        assert rows[note.action_id]["started_at"] is not None  # no world precondition: it ran
        reasons = {
            r["action_id"]: r["reason"]
            for r in await _rows(roles_db, "SELECT action_id, reason FROM action_steps WHERE to_status = 'refused'")
        }
        # (a host without a journal directory has no journal file system to be full)
        assert reasons[vac.action_id].startswith("precondition not met: ")
        assert (
            "below thresholds.disk_percent 100%" in reasons[vac.action_id]
            or "the journal is not on this host" in reasons[vac.action_id]
        )
        assert f"the file system holding {tmp_path / 'store'} is" in reasons[gc.action_id]
        assert "precondition not met: no systemd here" in reasons[unit.action_id]
        audit = {
            r["subject"]: r
            for r in await _rows(
                roles_db, "SELECT subject, actor, detail FROM audit_log WHERE event = 'action.refused'"
            )
        }
        for a in (vac, gc, unit):
            entry = audit[f"action:{a.action_id}"]
            assert entry["actor"] == "ai-sysadmin-executor" and entry["detail"]["reason"] == reasons[a.action_id]

    asyncio.run(main())
