"""A person's decisions on queued actions: approve (signed), reject, clear a breaker; and reading them.

Used by the CLI (`ai-sysadmin actions ...`), chat `/approve` and the REST API (actor =
the API key's name).  Each raises a typed error the caller maps to its own message or
HTTP status: NotFound (404), InvalidState (409), NotAuthorized (403).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.actions import signing
from ai_sysadmin.actions.catalog import Catalog, ProposalRejected, load_catalog
from ai_sysadmin.actions.service import POLICY_APPROVER, SERVICE_ACTOR

APPROVABLE = ("queued", "proposed")
REJECTABLE = ("queued", "proposed", "approved")
RESERVED_ACTORS = (SERVICE_ACTOR, POLICY_APPROVER)


class ApprovalError(Exception):
    pass


class NotFound(ApprovalError):
    pass


class InvalidState(ApprovalError):
    pass


class NotAuthorized(ApprovalError):
    pass


def _check_actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor or len(actor) > 200:
        raise NotAuthorized("an approval needs a named actor (at most 200 characters)")
    if actor in RESERVED_ACTORS:
        raise NotAuthorized(f"{actor!r} is the service's own name; only a person approves")
    return actor


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


async def _locked(conn, action_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT id, action, params, risk, status, target FROM actions WHERE id = %s FOR UPDATE",
                      (action_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no action {action_id}")
    return row


async def _step(conn, action_id: int, frm: str, to: str, actor: str, reason: str, at: datetime,
                event: str, detail: dict[str, Any]) -> None:
    await conn.execute("UPDATE actions SET status = %s, updated_at = %s WHERE id = %s", (to, at, action_id))
    await conn.execute("INSERT INTO action_steps (action_id, from_status, to_status, actor, reason, at) "
                       "VALUES (%s, %s, %s, %s, %s, %s)", (action_id, frm, to, actor, reason, at))
    await conn.execute("INSERT INTO audit_log (at, actor, event, subject, detail) VALUES (%s, %s, %s, %s, %s)",
                       (at, actor, event, f"action:{action_id}", Jsonb(detail)))


async def approve(pool: AsyncConnectionPool, action_id: int, actor: str, reason: str, *, key: bytes | None,
                  ttl_seconds: int = 3600, catalog: Catalog | None = None) -> dict[str, Any]:
    """Sign and record a person's approval of a queued action; returns the approval."""
    actor = _check_actor(actor)
    if not key:
        raise NotAuthorized("this process has no approval key (actions.approval_key_file); "
                            "approve as root or through the API")
    if not (reason or "").strip():
        raise InvalidState("an approval needs a reason (--reason TEXT)")
    catalog = catalog or load_catalog()
    async with pool.connection() as conn, conn.transaction():
        row = await _locked(conn, action_id)
        if row["status"] not in APPROVABLE:
            raise InvalidState(f"action {action_id} is {row['status']}; only a queued action can be approved")
        try:
            catalog.validate(row["action"], row["params"])
        except ProposalRejected as exc:
            raise InvalidState(f"action {action_id} is not a valid catalog action ({exc})") from None
        now = _now()
        expires = now + timedelta(seconds=ttl_seconds)
        sig = signing.sign(key, action_id, row["action"], row["params"], actor, now, expires)
        await conn.execute(
            "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at, signature) "
            "VALUES (%s, 'person', %s, %s, %s, %s, %s)", (action_id, actor, reason[:2000], now, expires, sig))
        await _step(conn, action_id, row["status"], "approved", actor, reason[:2000], now, "action.approved",
                    {"action": row["action"], "params": row["params"], "risk": row["risk"],
                     "expires_at": expires.isoformat()})
    return {"action_id": action_id, "approver": actor, "approved_at": now.isoformat(),
            "expires_at": expires.isoformat()}


async def reject(pool: AsyncConnectionPool, action_id: int, actor: str, reason: str) -> dict[str, Any]:
    actor = _check_actor(actor)
    if not (reason or "").strip():
        raise InvalidState("a rejection needs a reason (--reason TEXT)")
    async with pool.connection() as conn, conn.transaction():
        row = await _locked(conn, action_id)
        if row["status"] not in REJECTABLE:
            raise InvalidState(f"action {action_id} is {row['status']}; only a queued or approved action "
                               "can be rejected")
        now = _now()
        await _step(conn, action_id, row["status"], "rejected", actor, reason[:2000], now, "action.rejected",
                    {"action": row["action"], "params": row["params"]})
    return {"action_id": action_id, "rejected_by": actor, "at": now.isoformat()}


async def clear_breaker(pool: AsyncConnectionPool, target: str, actor: str, reason: str) -> dict[str, Any]:
    actor = _check_actor(actor)
    async with pool.connection() as conn, conn.transaction():
        now = _now()
        cur = await conn.execute("UPDATE action_breakers SET cleared_at = %s, cleared_by = %s "
                                 "WHERE target = %s AND cleared_at IS NULL RETURNING id", (now, actor, target))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no open breaker on {target!r}")
        await conn.execute("INSERT INTO audit_log (at, actor, event, subject, detail) VALUES (%s, %s, %s, %s, %s)",
                           (now, actor, "breaker.cleared", f"target:{target}", Jsonb({"reason": reason[:2000]})))
    return {"target": target, "cleared_by": actor, "at": now.isoformat()}


LIST_COLUMNS = ("id, action, params, risk, status, decision, decision_reason, source, target, incident_id, "
                "created_at, updated_at")


async def list_actions(pool: AsyncConnectionPool, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    q = f"SELECT {LIST_COLUMNS} FROM actions"
    args: list[Any] = []
    if status:
        q += " WHERE status = %s"
        args.append(status)
    q += " ORDER BY id DESC LIMIT %s"
    args.append(max(1, min(int(limit), 1000)))
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(q, args)
        return await cur.fetchall()


async def show_action(pool: AsyncConnectionPool, action_id: int) -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM actions WHERE id = %s", (action_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no action {action_id}")
        await cur.execute("SELECT from_status, to_status, actor, reason, at FROM action_steps "
                          "WHERE action_id = %s ORDER BY id", (action_id,))
        row["steps"] = await cur.fetchall()
        await cur.execute("SELECT kind, approver, reason, approved_at, expires_at, signature IS NOT NULL AS signed "
                          "FROM action_approvals WHERE action_id = %s ORDER BY id", (action_id,))
        row["approvals"] = await cur.fetchall()
        return row
