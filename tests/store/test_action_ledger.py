"""The action ledger (store/actions.py): a change of status is its row, its step and its audit row, or nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ai_sysadmin.config import parse_config
from ai_sysadmin.store import actions
from ai_sysadmin.store.db import make_pool
from ai_sysadmin.store.migrations import migrate

AT = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ROW = {
    "incident_id": None,
    "finding_id": None,
    "action": "restart_unit",
    "params": {"unit": "nginx.service"},
    "risk": "low",
    "status": "queued",
    "decision": "queue",
    "decision_reason": "needs a person",
    "proposal_reason": "it failed",
    "source": "rules",
    "proposed_by": None,
    "target": "nginx.service",
    "errors": [],
}


async def _migrated(pg_database: dict[str, Any]) -> None:
    pool = make_pool(parse_config({"database": pg_database}, env={}).database, max_size=1)
    await pool.open(wait=True, timeout=10)
    try:
        await migrate(pool)
    finally:
        await pool.close()


async def _history(conn: psycopg.AsyncConnection, action_id: int) -> tuple[str, list[tuple], list[tuple]]:
    cur = await conn.execute("SELECT status FROM actions WHERE id = %s", (action_id,))
    status = (await cur.fetchone())[0]
    cur = await conn.execute(
        "SELECT from_status, to_status, actor FROM action_steps WHERE action_id = %s ORDER BY id", (action_id,)
    )
    steps = await cur.fetchall()
    cur = await conn.execute(
        "SELECT actor, event, subject FROM audit_log WHERE subject = %s ORDER BY id", (actions.subject(action_id),)
    )
    return status, steps, await cur.fetchall()


async def test_a_transition_writes_status_step_and_audit_or_none_of_them(pg_database: dict[str, Any]) -> None:
    await _migrated(pg_database)
    cfg = parse_config({"database": pg_database}, env={})
    # No safe adapters on this connection: a NaN reaches PostgreSQL, which refuses it as JSON,
    # so the audit row -- the last of the three statements -- fails.
    async with await psycopg.AsyncConnection.connect(cfg.database.conninfo(), autocommit=True) as conn:
        action_id = await actions.insert(
            conn,
            at=AT,
            row=ROW,
            actor="ai-sysadmin",
            step_actor="rules",
            event="action.queue",
            detail={"action": "restart_unit"},
        )
        assert await _history(conn, action_id) == (
            "queued",
            [(None, "queued", "rules")],
            [("ai-sysadmin", "action.queue", f"action:{action_id}")],
        )

        with pytest.raises(psycopg.DataError):
            await actions.transition(
                conn,
                action_id,
                "queued",
                "approved",
                actor="alice",
                at=AT,
                reason="ok",
                event="action.approved",
                detail={"bad": float("nan")},
            )
        status, steps, audit = await _history(conn, action_id)
        assert (status, len(steps), len(audit)) == ("queued", 1, 1)

        # Inside the caller's transaction it is a savepoint: the caller's own work survives.
        async with conn.transaction():
            await actions.update(conn, action_id, result={"mode": "run", "steps": []})
            with pytest.raises(psycopg.DataError):
                await actions.transition(
                    conn,
                    action_id,
                    "queued",
                    "approved",
                    actor="alice",
                    at=AT,
                    reason="ok",
                    event="action.approved",
                    detail={"bad": float("nan")},
                )
        cur = await conn.execute("SELECT status, result FROM actions WHERE id = %s", (action_id,))
        assert await cur.fetchone() == ("queued", {"mode": "run", "steps": []})

        await actions.transition(
            conn,
            action_id,
            "queued",
            "approved",
            actor="alice",
            at=AT,
            reason="ok",
            event="action.approved",
            detail={"digest": "d"},
        )
        status, steps, audit = await _history(conn, action_id)
        assert status == "approved"
        assert steps[-1] == ("queued", "approved", "alice")
        assert audit[-1] == ("alice", "action.approved", f"action:{action_id}")


async def test_only_the_execution_columns_can_be_set_by_name(pg_database: dict[str, Any]) -> None:
    await _migrated(pg_database)
    cfg = parse_config({"database": pg_database}, env={})
    async with await psycopg.AsyncConnection.connect(cfg.database.conninfo(), autocommit=True) as conn:
        action_id = await actions.insert(
            conn, at=AT, row=ROW, actor="ai-sysadmin", step_actor="rules", event="action.queue", detail={}
        )
        for column in ("params", "risk", "status", "action; DROP TABLE actions"):
            with pytest.raises(ValueError, match="not an action column"):
                await actions.update(conn, action_id, **{column: "x"})
        cur = await conn.execute("SELECT params, risk FROM actions WHERE id = %s", (action_id,))
        assert await cur.fetchone() == ({"unit": "nginx.service"}, "low")
