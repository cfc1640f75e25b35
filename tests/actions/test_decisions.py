"""Issue 23: approvals bind what a person saw; decisions the orchestrator's role cannot rewrite.

Every attack here runs as the orchestrator's real PostgreSQL role -- the owner of the main
schema, which may even drop its own triggers -- against the real executor (in process,
its argv runner behind it), the way the red team ran them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ai_sysadmin.actions import approvals, signing
from ai_sysadmin.actions.facts import now_utc
from ai_sysadmin.actions.signing import load_key
from ai_sysadmin.store.ledger import SCHEMA
from tests.actions.conftest import RolesDB, digest_of
from tests.actions.test_db import P, Rig, _rows, full_store

REPO = Path(__file__).resolve().parents[2]


async def _as(db: RolesDB, role: str, *stmts: tuple[str, tuple]) -> None:
    async with await psycopg.AsyncConnection.connect(db.conninfo(role)) as c, c.transaction():
        for q, args in stmts:
            await c.execute(q, args or None)  # type: ignore[arg-type]  # none: several statements


async def _refused(
    db: RolesDB,
    role: str,
    q: str,
    args: tuple = (),
    error: type[Exception] = psycopg.errors.InsufficientPrivilege,
    match: str | None = None,
) -> None:
    with pytest.raises(error, match=match):
        await _as(db, role, (q, args))


async def _last_reason(db: RolesDB, action_id: int) -> str:
    return (
        await _rows(db, "SELECT reason FROM action_steps WHERE action_id = %s ORDER BY id DESC LIMIT 1", action_id)
    )[0]["reason"]


def test_a_swap_between_show_and_approve_is_refused(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="suggest") as rig:
            key = load_key(rig.api_cfg)
            q = await rig.service.propose(P("restart_unit", unit="web-swap.service"))
            shown = await approvals.show_action(rig.api_pool, q.action_id)
            assert shown["digest"] == signing.digest(shown) and len(shown["digest"]) == 64
            swap = (
                "UPDATE actions SET action = 'rollback_generation', params = '{}', risk = 'high', "
                "target = 'system-profile' WHERE id = %s",
                (q.action_id,),
            )
            # 1. the orchestrator swaps the row between the person's `show` and `approve`
            await _as(roles_db, roles_db.orchestrator, swap)
            with pytest.raises(
                approvals.Changed,
                match=f"action {q.action_id} changed since you looked at it "
                r"\(digest [0-9a-f]{64}",
            ):
                await approvals.approve(
                    rig.api_pool, q.action_id, "alice", "restart web", digest=shown["digest"], key=key
                )
            with pytest.raises(approvals.InvalidState, match="needs the digest you were shown"):
                await approvals.approve(rig.api_pool, q.action_id, "alice", "restart web", digest=None, key=key)
            # 2. the same swap after the approval: the executor re-reads the row and refuses it
            r = await rig.service.propose(P("restart_unit", unit="web-swap2.service"))
            out = await approvals.approve(
                rig.api_pool,
                r.action_id,
                "alice",
                "restart web",
                digest=await digest_of(rig.api_pool, r.action_id),
                key=key,
            )
            assert (out["action"], out["params"]) == ("restart_unit", {"unit": "web-swap2.service"})
            await _as(roles_db, roles_db.orchestrator, (swap[0], (r.action_id,)))
            await rig.execute_pending()
        for aid in (q.action_id, r.action_id):
            row = (await _rows(roles_db, "SELECT status, started_at, result FROM actions WHERE id = %s", aid))[0]
            assert row["started_at"] is None and row["result"] is None, row
        assert (await _rows(roles_db, "SELECT status FROM actions WHERE id = %s", r.action_id))[0][
            "status"
        ] == "refused"
        assert "changed since alice approved it" in await _last_reason(roles_db, r.action_id)

    asyncio.run(main())


def test_an_undone_rejection_is_refused(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="suggest") as rig:
            key = load_key(rig.api_cfg)
            q = await rig.service.propose(P("notify", message="rotate the logs"))
            await approvals.approve(
                rig.api_pool, q.action_id, "alice", "ok", digest=await digest_of(rig.api_pool, q.action_id), key=key
            )
            await approvals.reject(rig.api_pool, q.action_id, "alice", "changed my mind")
            with pytest.raises(approvals.InvalidState, match="rejected by alice; a rejection is final"):
                await approvals.approve(
                    rig.api_pool, q.action_id, "bob", "ok", digest=await digest_of(rig.api_pool, q.action_id), key=key
                )
            orch = roles_db.orchestrator
            # the database refuses the status change, for every role
            for role in (orch, roles_db.api, roles_db.executor):
                await _refused(
                    roles_db,
                    role,
                    "UPDATE actions SET status = 'approved' WHERE id = %s",
                    (q.action_id,),
                    psycopg.errors.RaiseException,
                    "a rejection is final",
                )
            await _refused(
                roles_db,
                orch,
                "DELETE FROM actions WHERE id = %s",
                (q.action_id,),
                psycopg.errors.RaiseException,
                "a rejection is final",
            )
            # the ledger's rejection cannot be removed by the orchestrator or the API
            for role in (orch, roles_db.api):
                for stmt in (
                    f"DELETE FROM {SCHEMA}.decisions",
                    f"TRUNCATE {SCHEMA}.decisions",
                    f"UPDATE {SCHEMA}.decisions SET kind = 'pause'",
                ):
                    await _refused(roles_db, role, stmt)
            # the owner drops its own trigger, erases the rejection step and re-approves: still refused
            await _as(
                roles_db,
                orch,
                ("DROP TRIGGER actions_rejection_final ON actions", ()),
                ("DELETE FROM action_steps WHERE action_id = %s AND to_status = 'rejected'", (q.action_id,)),
                ("UPDATE actions SET status = 'approved' WHERE id = %s", (q.action_id,)),
            )
            await rig.execute_pending()
        row = (await _rows(roles_db, "SELECT status, started_at FROM actions WHERE id = %s", q.action_id))[0]
        assert row == {"status": "refused", "started_at": None}
        assert "rejected by alice" in await _last_reason(roles_db, q.action_id)

    asyncio.run(main())


def test_a_used_approval_is_not_replayed_after_the_audit_log_is_gone(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path
) -> None:
    """Run once; wipe the audit trail every way a role can; re-create the action; a new Executor refuses."""

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
            assert first["started_at"] is not None
            ap = (await _rows(roles_db, "SELECT * FROM action_approvals WHERE action_id = %s", q.action_id))[0]
            used = await _rows(roles_db, f"SELECT action_id, digest FROM {SCHEMA}.used_approvals")
            assert used == [{"action_id": q.action_id, "digest": ap["digest"]}]
            orch = roles_db.orchestrator
            # nobody may forget a used approval
            for role in (orch, roles_db.api):
                for stmt in (
                    f"DELETE FROM {SCHEMA}.used_approvals",
                    f"TRUNCATE {SCHEMA}.used_approvals",
                    f"UPDATE {SCHEMA}.used_approvals SET signature = 'x'",
                    f"INSERT INTO {SCHEMA}.used_approvals (signature, action_id, digest) VALUES ('x', 1, 'x')",
                ):
                    await _refused(roles_db, role, stmt)
            # the old bypass is gone: no setting lets the orchestrator delete audit rows
            await _refused(
                roles_db,
                orch,
                "SET LOCAL ai_sysadmin.retention = 'on'; DELETE FROM audit_log",
                (),
                psycopg.errors.RaiseException,
                "append-only",
            )
            # the owner disables its own triggers and empties the audit log anyway, then replays
            await _as(
                roles_db,
                orch,
                ("ALTER TABLE audit_log DISABLE TRIGGER USER", ()),
                ("TRUNCATE audit_log", ()),
                ("DELETE FROM actions WHERE id = %s", (q.action_id,)),
                (
                    "INSERT INTO actions (id, action, params, risk, status, target) VALUES "
                    "(%s, 'notify', %s, 'low', 'approved', %s)",
                    (q.action_id, Jsonb(first["params"]), first["target"]),
                ),
                (
                    "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at, "
                    "signature, digest) VALUES (%s, 'person', %s, '', %s, %s, %s, %s)",
                    (q.action_id, ap["approver"], ap["approved_at"], ap["expires_at"], ap["signature"], ap["digest"]),
                ),
            )
            assert await _rows(roles_db, "SELECT 1 FROM audit_log") == []
            await rig.execute_pending()  # a new Executor instance: nothing in memory
        row = (await _rows(roles_db, "SELECT status, started_at FROM actions WHERE id = %s", q.action_id))[0]
        assert row == {"status": "refused", "started_at": None}
        assert "already used" in await _last_reason(roles_db, q.action_id)

    asyncio.run(main())


def test_truncate_audit_log_fails_for_every_role(tmp_path: Path, roles_db: RolesDB, approval_key: Path) -> None:
    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key) as rig:
            await rig.service.propose(P("notify", message="an audited proposal"))
        await _refused(
            roles_db,
            roles_db.orchestrator,
            "TRUNCATE audit_log",
            (),
            psycopg.errors.RaiseException,
            r"append-only \(TRUNCATE refused\)",
        )
        for role in (roles_db.executor, roles_db.api):
            await _refused(roles_db, role, "TRUNCATE audit_log")
            await _refused(roles_db, role, "DELETE FROM audit_log")
        assert len(await _rows(roles_db, "SELECT 1 FROM audit_log")) >= 1

    asyncio.run(main())


def test_a_persons_pause_holds_until_a_signed_resume(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = full_store(tmp_path, monkeypatch)  # the garbage collection's precondition holds: only the pause stops it

    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="auto-full", disk_percent=full) as rig:
            key = load_key(rig.api_cfg)
            a = await rig.service.propose(P("collect_garbage", older_than_days=3))
            assert a.decision == "execute"
            out = await approvals.pause(rig.api_pool, "alice", None, "investigating", key=key)
            assert out == {**out, "paused_until": "indefinitely", "signed": True}
            orch = roles_db.orchestrator
            await _refused(roles_db, orch, f"DELETE FROM {SCHEMA}.decisions WHERE kind = 'pause'")
            await _refused(roles_db, orch, f"UPDATE {SCHEMA}.decisions SET until = now() WHERE kind = 'pause'")
            now = now_utc().replace(microsecond=0)
            ins = f"INSERT INTO {SCHEMA}.decisions (kind, until, actor, at, signature) VALUES (%s, %s, 'alice', %s, %s)"
            await _as(
                roles_db,
                orch,
                (ins, ("resume", None, now, None)),  # unsigned
                (ins, ("resume", None, now, "ab" * 32)),  # forged
                (ins, ("pause", now + timedelta(seconds=1), now, None)),
            )  # "shortened", unsigned
            # and the column the database sets itself cannot be back-dated
            await _refused(
                roles_db,
                orch,
                f"INSERT INTO {SCHEMA}.decisions (kind, actor, at, recorded_at) "
                "VALUES ('resume', 'alice', now(), now() - interval '1 day')",
            )
            later = now_utc() + timedelta(minutes=5)
            assert (await rig.execute_pending(clock=lambda: later)).handled == 0
            await approvals.resume(rig.api_pool, "alice", "done", key=key)
            resume_row = (
                await _rows(
                    roles_db,
                    f"SELECT * FROM {SCHEMA}.decisions WHERE kind = 'resume' "
                    "AND signature IS NOT NULL ORDER BY id DESC LIMIT 1",
                )
            )[0]
            assert (await rig.execute_pending()).handled == 1
            # a new pause; a replayed copy of the old signed resume does not end it
            await approvals.pause(rig.api_pool, "alice", None, "again", key=None)
            b = await rig.service.propose(P("vacuum_journal", max_size_mb=500))
            await _as(
                roles_db,
                orch,
                ("UPDATE actions SET status = 'approved' WHERE id = %s", (b.action_id,)),
                (ins, ("resume", None, resume_row["at"], resume_row["signature"])),
            )
            assert (await rig.execute_pending()).handled == 0
            with pytest.raises(approvals.NotAuthorized):
                await approvals.resume(rig.api_pool, "alice", "no key", key=None)
        rows = {r["id"]: r["status"] for r in await _rows(roles_db, "SELECT id, status FROM actions")}
        assert rows[a.action_id] == "dry-run" and rows[b.action_id] == "approved"

    asyncio.run(main())


def test_a_breaker_cleared_by_the_orchestrator_stays_open(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = full_store(tmp_path, monkeypatch)  # the garbage collection's precondition holds: only the breaker stops it

    async def main() -> None:
        async with Rig(tmp_path, roles_db, approval_key, level="auto-full", disk_percent=full) as rig:
            a = await rig.service.propose(P("collect_garbage", older_than_days=4))
            assert a.decision == "execute"
            target = (await _rows(roles_db, "SELECT target FROM actions WHERE id = %s", a.action_id))[0]["target"]
            orch = roles_db.orchestrator
            now = now_utc().replace(microsecond=0)
            # the orchestrator may trip a breaker (caution) ...
            await _as(
                roles_db,
                orch,
                ("INSERT INTO action_breakers (target, reason) VALUES (%s, 'tripped')", (target,)),
                (
                    f"INSERT INTO {SCHEMA}.decisions (kind, target, actor, at, reason) "
                    "VALUES ('trip', %s, 'ai-sysadmin', %s, 'tripped')",
                    (target, now),
                ),
            )
            # ... but its clearing "by alice" is not signed: the executor keeps the breaker open
            await _as(
                roles_db,
                orch,
                ("UPDATE action_breakers SET cleared_at = now(), cleared_by = 'alice' WHERE target = %s", (target,)),
                (
                    f"INSERT INTO {SCHEMA}.decisions (kind, target, actor, at) VALUES ('clear_breaker', %s, "
                    "'alice', %s)",
                    (target, now),
                ),
            )
            await rig.execute_pending()
            assert "breaker open on" in await _last_reason(roles_db, a.action_id)
            with pytest.raises(approvals.NotAuthorized):
                await approvals.clear_breaker(rig.api_pool, target, "alice", "checked", key=None)
            await approvals.clear_breaker(rig.api_pool, target, "alice", "checked", key=load_key(rig.api_cfg))
            b = await rig.service.propose(P("collect_garbage", older_than_days=5))
            assert b.decision == "execute"
            await rig.execute_pending()
        rows = {r["id"]: r["status"] for r in await _rows(roles_db, "SELECT id, status FROM actions")}
        assert rows == {a.action_id: "refused", b.action_id: "dry-run"}

    asyncio.run(main())


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_cli_shows_the_digest_and_approves_only_what_was_shown(
    tmp_path: Path, roles_db: RolesDB, approval_key: Path
) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path),
                "autonomy_level": "suggest",
                "database": roles_db.section(roles_db.api),
                "actions": {"approval_key_file": str(approval_key)},
            }
        )
    )
    orch = tmp_path / "o.json"
    orch.write_text(json.dumps({**json.loads(cfg.read_text()), "database": roles_db.section(roles_db.orchestrator)}))
    r = _cli(orch, "actions", "propose", "restart_unit", "--params", '{"unit": "web-swap.service"}', "--reason", "x")
    aid = json.loads(r.stdout)["action_id"]
    shown = _cli(cfg, "actions", "show", str(aid))
    digest = json.loads(_cli(cfg, "actions", "show", str(aid), "--format", "json").stdout)["digest"]
    assert f"digest {digest}" in shown.stdout and f"--digest {digest}" in shown.stdout
    r = _cli(cfg, "actions", "approve", str(aid), "--reason", "ok")
    assert r.returncode == 1 and "needs the digest you were shown" in r.stderr and "Traceback" not in r.stderr
    asyncio.run(
        _as(
            roles_db,
            roles_db.orchestrator,
            ("UPDATE actions SET params = '{\"unit\": \"db.service\"}', target = 'db.service' WHERE id = %s", (aid,)),
        )
    )
    r = _cli(cfg, "actions", "approve", str(aid), "--digest", digest, "--reason", "ok")
    assert r.returncode == 1 and f"action {aid} changed since you looked at it" in r.stderr
    digest = json.loads(_cli(cfg, "actions", "show", str(aid), "--format", "json").stdout)["digest"]
    r = _cli(cfg, "actions", "approve", str(aid), "--digest", digest, "--reason", "ok")
    assert r.returncode == 0, r.stderr
    assert "restart_unit" in r.stdout and "db.service" in r.stdout and digest in r.stdout
    # pause and resume through the CLI (the API's role, as on a NixOS host): the resume is signed
    assert _cli(cfg, "pause").returncode == 0
    r = _cli(cfg, "resume")
    assert r.returncode == 0 and "actions resumed" in r.stdout, r.stderr
