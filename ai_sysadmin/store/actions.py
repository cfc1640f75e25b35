"""The action ledger: `actions` rows, their steps, approvals and breakers, with the audit row of each change.

Every function takes the caller's connection, so its SQL runs under the caller's role:
the orchestrator and the API propose, approve and reject with theirs, the executor
claims, runs and verifies with its own (docs/security.md).  A change of status is
written once, by `transition`: the status, the step row and the audit row, in one
transaction (a savepoint when the caller already holds one).  The decision ledger the
orchestrator cannot rewrite is store/ledger.py; this module writes the main schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ai_sysadmin.store import audit

MAX_REASON = 2000  # a step's reason is kept at most this long
# Columns a transition or `update` may set besides the status (names are never input).
COLUMNS = frozenset({"started_at", "finished_at", "updated_at", "executed_by", "result", "verification"})
PAUSE_KEY = "actions.paused_until"  # the pause written before the ledger existed (migration 6)
LIST_COLUMNS = (
    "id, host, action, params, risk, status, decision, decision_reason, source, target, incident_id, "
    "contradicts, created_at, updated_at"
)


def subject(action_id: int) -> str:
    return f"action:{action_id}"


def _assignments(fields: Mapping[str, Any]) -> tuple[sql.Composed, list[Any]]:
    unknown = set(fields) - COLUMNS
    if unknown:
        raise ValueError(f"not an action column a change may set: {', '.join(sorted(unknown))}")
    names = list(fields)
    values = [Jsonb(fields[n]) if n in ("result", "verification") else fields[n] for n in names]
    return sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names), values


async def try_session_lock(conn: psycopg.AsyncConnection, key: int) -> bool:
    """Take an advisory lock held until `conn` closes (one executor per database); False: someone holds it."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
    return bool((await cur.fetchone())[0])  # type: ignore[index]


# ---------------------------------------------------------------------- recording a proposal


async def lock_target(conn: psycopg.AsyncConnection, target: str) -> None:
    """One proposal per target at a time (until the transaction ends), so two cannot both pass a limit."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ai-sysadmin-action:' || %s))", (target,))


async def pending_duplicate(
    conn: psycopg.AsyncConnection,
    action: str,
    params: dict[str, Any],
    statuses: Iterable[str],
    incident_id: int | None,
    host: str | None = None,
) -> tuple[int, str] | None:
    """The newest pending row of the same action and parameters *for the same incident* (none
    matches none): another incident's pending action never stands in for this incident's.
    `host`: on that host only (a fleet incident has one action per host)."""
    cur = await conn.execute(
        "SELECT id, status FROM actions WHERE action = %s AND params = %s "
        "AND status = ANY(%s) AND incident_id IS NOT DISTINCT FROM %s AND (%s::text IS NULL OR host = %s) "
        "ORDER BY id DESC LIMIT 1",
        (action, Jsonb(params), list(statuses), incident_id, host, host),
    )
    row = await cur.fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def existing_incident(conn: psycopg.AsyncConnection, incident_id: int | None) -> int | None:
    """`incident_id` when that incident exists (a model may name one that does not), else None."""
    if incident_id is None:
        return None
    cur = await conn.execute("SELECT 1 FROM incidents WHERE id = %s", (incident_id,))
    return incident_id if await cur.fetchone() else None


async def existing_finding(conn: psycopg.AsyncConnection, finding_id: int | None) -> int | None:
    if finding_id is None:
        return None
    cur = await conn.execute("SELECT 1 FROM findings WHERE id = %s", (finding_id,))
    return finding_id if await cur.fetchone() else None


async def insert(
    conn: psycopg.AsyncConnection,
    *,
    at: datetime,
    row: Mapping[str, Any],
    actor: str,
    step_actor: str,
    event: str,
    detail: dict[str, Any],
) -> int:
    """A new action (its row, its first step and the audit row) in one transaction; its id.

    `row`: incident_id, finding_id, action, params, risk, status, decision, decision_reason,
    proposal_reason, source, proposed_by, target, errors, and optionally contradicts (why a
    model's proposal contradicts its incident's evidence, actions/binding.py) and host (the
    host it runs on; None: the local host).
    """
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO actions (incident_id, finding_id, action, params, risk, status, decision, decision_reason, "
            "proposal_reason, source, proposed_by, target, errors, contradicts, created_at, updated_at, host) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "coalesce(%s, (SELECT value FROM store_settings WHERE key = 'local_host'))) RETURNING id",
            (
                row["incident_id"],
                row["finding_id"],
                row["action"],
                Jsonb(row["params"]),
                row["risk"],
                row["status"],
                row["decision"],
                row["decision_reason"],
                row["proposal_reason"],
                row["source"],
                row["proposed_by"],
                row["target"],
                Jsonb(row["errors"]),
                row.get("contradicts"),
                at,
                at,
                row.get("host"),
            ),
        )
        action_id = int((await cur.fetchone())[0])  # type: ignore[index]
        await conn.execute(
            "INSERT INTO action_steps (action_id, from_status, to_status, actor, reason, at) "
            "VALUES (%s, NULL, %s, %s, %s, %s)",
            (action_id, row["status"], step_actor, row["decision_reason"], at),
        )
        await audit.insert(conn, at, actor, event, subject(action_id), detail)
    return action_id


# ---------------------------------------------------------------------- changing one


async def transition(
    conn: psycopg.AsyncConnection,
    action_id: int,
    frm: str | None,
    to: str,
    *,
    actor: str,
    at: datetime,
    reason: str,
    event: str,
    detail: dict[str, Any],
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Move an action from `frm` to `to`: its status (and `fields`), a step row and an audit row, together."""
    sets, values = _assignments({"updated_at": at, **(fields or {})})
    async with conn.transaction():
        await conn.execute(
            sql.SQL("UPDATE actions SET status = %s, {} WHERE id = %s").format(sets), [to, *values, action_id]
        )
        await conn.execute(
            "INSERT INTO action_steps (action_id, from_status, to_status, actor, reason, at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (action_id, frm, to, actor, reason[:MAX_REASON], at),
        )
        await audit.insert(conn, at, actor, event, subject(action_id), detail)


async def update(conn: psycopg.AsyncConnection, action_id: int, **fields: Any) -> None:
    """Set columns of an action without a change of status (a result, a verification)."""
    sets, values = _assignments(fields)
    await conn.execute(sql.SQL("UPDATE actions SET {} WHERE id = %s").format(sets), [*values, action_id])


async def append_step_result(conn: psycopg.AsyncConnection, action_id: int, result: dict[str, Any]) -> None:
    """Add one command's result to the action's `result.steps`."""
    await conn.execute(
        "UPDATE actions SET result = jsonb_set(result, '{steps}', (result->'steps') || %s::jsonb) WHERE id = %s",
        (Jsonb([result]), action_id),
    )


# ---------------------------------------------------------------------- reading


async def with_status(conn: psycopg.AsyncConnection, status: str, host: str) -> list[dict[str, Any]]:
    """`host`'s actions in `status`, oldest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM actions WHERE status = %s AND host = %s ORDER BY id", (status, host))
    return await cur.fetchall()


async def claim_approved(conn: psycopg.AsyncConnection, host: str) -> dict[str, Any] | None:
    """The oldest approved action addressed to `host`, locked for the caller's transaction (others skip it)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM actions WHERE status = 'approved' AND host = %s ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
        (host,),
    )
    return await cur.fetchone()


async def local_host(conn: psycopg.AsyncConnection) -> str | None:
    """The host id of the database's own host (migration 9), whose actions a hub's or standalone executor runs."""
    cur = await conn.execute("SELECT value FROM store_settings WHERE key = 'local_host'")
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def lock(conn: psycopg.AsyncConnection, action_id: int) -> dict[str, Any] | None:
    """The fields a person decides on, locked for the caller's transaction; None when there is no such action."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, action, params, risk, status, target, incident_id, host FROM actions WHERE id = %s FOR UPDATE",
        (action_id,),
    )
    return await cur.fetchone()


async def rejected_step_actor(conn: psycopg.AsyncConnection, action_id: int) -> str | None:
    """Who moved the action to `rejected` (its step); None when nobody did."""
    cur = await conn.execute(
        "SELECT actor FROM action_steps WHERE action_id = %s AND to_status = 'rejected' ORDER BY id LIMIT 1",
        (action_id,),
    )
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def list_actions(
    conn: psycopg.AsyncConnection, status: str | None, limit: int, host: str | None = None
) -> list[dict[str, Any]]:
    """The latest actions; `host`: only those that run on that host."""
    q = f"SELECT {LIST_COLUMNS} FROM actions"
    where: list[str] = []
    args: list[Any] = []
    if status:
        where.append("status = %s")
        args.append(status)
    if host:
        where.append("host = %s")
        args.append(host)
    if where:
        q += " WHERE " + " AND ".join(where)
    q += " ORDER BY id DESC LIMIT %s"
    args.append(limit)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(q, args)  # fixed text from this module
    return await cur.fetchall()


async def get(conn: psycopg.AsyncConnection, action_id: int) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM actions WHERE id = %s", (action_id,))
    return await cur.fetchone()


async def history(conn: psycopg.AsyncConnection, action_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An action's steps and its approvals (a signature shown as `signed`), oldest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT from_status, to_status, actor, reason, at FROM action_steps WHERE action_id = %s ORDER BY id",
        (action_id,),
    )
    steps = await cur.fetchall()
    await cur.execute(
        "SELECT kind, approver, reason, approved_at, expires_at, signature IS NOT NULL AS signed, "
        "digest FROM action_approvals WHERE action_id = %s ORDER BY id",
        (action_id,),
    )
    return steps, await cur.fetchall()


async def recent_counts(
    conn: psycopg.AsyncConnection,
    *,
    target: str,
    action: str,
    statuses: Iterable[str],
    since: datetime,
    exclude_id: int,
) -> tuple[int, int, datetime | None]:
    """Actions taken since `since`: on `target`, of kind `action`, and the last one on `target`."""
    cur = await conn.execute(
        "SELECT count(*) FILTER (WHERE target = %s), count(*) FILTER (WHERE action = %s), "
        "max(coalesce(started_at, updated_at)) FILTER (WHERE target = %s) "
        "FROM actions WHERE status = ANY(%s) AND coalesce(started_at, updated_at) > %s AND id <> %s",
        (target, action, target, list(statuses), since, exclude_id),
    )
    per_target, per_action, last = await cur.fetchone()  # type: ignore[misc]
    return per_target, per_action, last


async def recent_targets(
    conn: psycopg.AsyncConnection, statuses: Iterable[str], since: datetime
) -> list[tuple[str, int, datetime]]:
    """(target, actions taken since `since`, the last one's time), by target."""
    cur = await conn.execute(
        "SELECT target, count(*), max(coalesce(started_at, updated_at)) FROM actions "
        "WHERE status = ANY(%s) AND coalesce(started_at, updated_at) > %s AND target IS NOT NULL "
        "GROUP BY target ORDER BY target",
        (list(statuses), since),
    )
    return [(t, n, last) for t, n, last in await cur.fetchall()]


async def count_queued(conn: psycopg.AsyncConnection) -> int:
    """Actions waiting for a person's approval."""
    cur = await conn.execute("SELECT count(*) FROM actions WHERE status = 'queued'")
    return int((await cur.fetchone())[0])  # type: ignore[index]


# ---------------------------------------------------------------------- approvals


async def latest_approval(conn: psycopg.AsyncConnection, action_id: int) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM action_approvals WHERE action_id = %s ORDER BY id DESC LIMIT 1", (action_id,))
    return await cur.fetchone()


async def add_person_approval(
    conn: psycopg.AsyncConnection,
    action_id: int,
    *,
    approver: str,
    reason: str,
    approved_at: datetime,
    expires_at: datetime,
    signature: str,
    digest: str,
) -> None:
    await conn.execute(
        "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at, signature, "
        "digest) VALUES (%s, 'person', %s, %s, %s, %s, %s, %s)",
        (action_id, approver, reason[:MAX_REASON], approved_at, expires_at, signature, digest),
    )


async def add_policy_approval(
    conn: psycopg.AsyncConnection,
    action_id: int,
    *,
    approver: str,
    reason: str,
    approved_at: datetime,
    expires_at: datetime,
) -> None:
    """The service's own approval: unsigned, so the executor decides again from its own configuration."""
    await conn.execute(
        "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at) "
        "VALUES (%s, 'policy', %s, %s, %s, %s)",
        (action_id, approver, reason, approved_at, expires_at),
    )


# ---------------------------------------------------------------------- breakers and the legacy pause


async def trip_breaker(conn: psycopg.AsyncConnection, target: str, action_id: int, reason: str) -> None:
    """The main schema's (advisory) breaker; the ledger's trip is the one only a signed clearing closes."""
    await conn.execute(
        "INSERT INTO action_breakers (target, action_id, reason) VALUES (%s, %s, %s) "
        "ON CONFLICT (target) WHERE cleared_at IS NULL DO NOTHING",
        (target, action_id, reason),
    )


async def clear_breakers(conn: psycopg.AsyncConnection, target: str, *, at: datetime, actor: str) -> None:
    await conn.execute(
        "UPDATE action_breakers SET cleared_at = %s, cleared_by = %s WHERE target = %s AND cleared_at IS NULL",
        (at, actor, target),
    )


async def uncleared_breakers(
    conn: psycopg.AsyncConnection, target: str | None = None
) -> list[tuple[str, int, str, datetime]]:
    """(target, action_id, reason, tripped_at) of breaker rows not cleared, oldest first."""
    q = "SELECT target, action_id, reason, tripped_at FROM action_breakers WHERE cleared_at IS NULL"
    cur = await conn.execute(
        q + (" AND target = %s" if target is not None else "") + " ORDER BY tripped_at",
        (target,) if target is not None else (),
    )
    return [(t, i, r, at) for t, i, r, at in await cur.fetchall()]


async def legacy_pause(conn: psycopg.AsyncConnection) -> str | None:
    """The pause recorded before the ledger existed, as written (an ISO time or a word); None: none."""
    cur = await conn.execute("SELECT value FROM store_settings WHERE key = %s", (PAUSE_KEY,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def set_legacy_pause(conn: psycopg.AsyncConnection, value: str) -> None:
    await conn.execute(
        "INSERT INTO store_settings (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (PAUSE_KEY, value),
    )
