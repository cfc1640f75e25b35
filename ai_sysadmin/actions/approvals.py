"""A person's decisions: approve (signed), reject, pause, resume, clear a breaker; and reading them.

Used by the CLI (`ai-sysadmin actions ...`, `pause`, `resume`), chat `/approve` and the
REST API (actor = the API key's name).  Each raises a typed error the caller maps to its
own message or HTTP status: NotFound (404), InvalidState (409), NotAuthorized (403).

A person approves what they were shown: `show_action` returns the row's digest
(signing.digest) and `approve` takes it back; a row that changed in between is refused
(`Changed`), and the signature covers the digest, so the executor refuses it too.
Rejections, pauses, resumes and clearings also go to the decision ledger
(store/ledger.py), which the orchestrator can add to but not rewrite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.actions import signing
from ai_sysadmin.actions.catalog import Catalog, ProposalRejected, load_catalog
from ai_sysadmin.actions.facts import PAUSE_FOREVER, open_breaker, paused_until, set_pause
from ai_sysadmin.actions.proposals import POLICY_APPROVER, SERVICE_ACTOR
from ai_sysadmin.actions.types import ActionStatus
from ai_sysadmin.store import actions as ledger_actions
from ai_sysadmin.store import audit, ledger

APPROVABLE = (ActionStatus.QUEUED, ActionStatus.PROPOSED)
REJECTABLE = (ActionStatus.QUEUED, ActionStatus.PROPOSED, ActionStatus.APPROVED)
RESERVED_ACTORS = (SERVICE_ACTOR, POLICY_APPROVER)


class ApprovalError(Exception):
    pass


class NotFound(ApprovalError):
    pass


class InvalidState(ApprovalError):
    pass


class NotAuthorized(ApprovalError):
    pass


class Changed(InvalidState):
    """The action is not what the person was shown (a 409, like any state conflict)."""


def _no_key() -> NotAuthorized:
    return NotAuthorized(
        "this process has no approval key (actions.approval_key_file); decide as root or through the API"
    )


async def _ledger_ready(conn: psycopg.AsyncConnection) -> None:
    try:
        await ledger.require(conn)
    except ledger.LedgerUnavailable as exc:
        raise InvalidState(str(exc)) from None


async def rejected_by(conn: psycopg.AsyncConnection, action_id: int) -> str | None:
    """Who rejected this action, from the ledger or the steps; None when nobody did."""
    for d in await ledger.rejections(conn, action_id):
        return d.actor
    return await ledger_actions.rejected_step_actor(conn, action_id)


def _check_actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor or len(actor) > 200:
        raise NotAuthorized("an approval needs a named actor (at most 200 characters)")
    if actor in RESERVED_ACTORS:
        raise NotAuthorized(f"{actor!r} is the service's own name; only a person approves")
    return actor


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _decided_at() -> datetime:
    # Full precision: a ledger decision is ordered by this time against rows that arrive
    # within the same second (the signature itself covers whole seconds).
    return datetime.now(UTC)


async def _locked(conn: psycopg.AsyncConnection, action_id: int) -> dict[str, Any]:
    row = await ledger_actions.lock(conn, action_id)
    if row is None:
        raise NotFound(f"no action {action_id}")
    return row


async def approve(
    pool: AsyncConnectionPool,
    action_id: int,
    actor: str,
    reason: str,
    *,
    digest: str | None,
    key: bytes | None,
    ttl_seconds: int = 3600,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """Sign and record a person's approval of the queued action they were shown (its `digest`)."""
    actor = _check_actor(actor)
    if not key:
        raise _no_key()
    if not (reason or "").strip():
        raise InvalidState("an approval needs a reason (--reason TEXT)")
    digest = (digest or "").strip().lower()
    if not digest:
        raise InvalidState(
            f"approving action {action_id} needs the digest you were shown "
            f"(`ai-sysadmin actions show {action_id}`, then --digest D)"
        )
    catalog = catalog or load_catalog()
    async with pool.connection() as conn, conn.transaction():
        row = await _locked(conn, action_id)
        now_digest = signing.digest(row)
        if digest != now_digest:
            raise Changed(
                f"action {action_id} changed since you looked at it (digest {now_digest}, you sent "
                f"{digest[:64]}); show it again and approve what it is now"
            )
        who = await rejected_by(conn, action_id)
        if who is not None:
            raise InvalidState(f"action {action_id} was rejected by {who}; a rejection is final")
        if row["status"] not in APPROVABLE:
            raise InvalidState(f"action {action_id} is {row['status']}; only a queued action can be approved")
        try:
            catalog.validate(row["action"], row["params"])
        except ProposalRejected as exc:
            raise InvalidState(f"action {action_id} is not a valid catalog action ({exc})") from None
        now = _now()
        expires = now + timedelta(seconds=ttl_seconds)
        sig = signing.sign(key, action_id, digest, actor, now, expires, row["host"])
        await ledger_actions.add_person_approval(
            conn,
            action_id,
            approver=actor,
            reason=reason,
            approved_at=now,
            expires_at=expires,
            signature=sig,
            digest=digest,
        )
        await ledger_actions.transition(
            conn,
            action_id,
            row["status"],
            ActionStatus.APPROVED,
            actor=actor,
            at=now,
            reason=reason,
            event="action.approved",
            detail={
                "action": row["action"],
                "params": row["params"],
                "risk": row["risk"],
                "digest": digest,
                "expires_at": expires.isoformat(),
            },
        )
    return {
        "action_id": action_id,
        "approver": actor,
        "approved_at": now.isoformat(),
        "expires_at": expires.isoformat(),
        "digest": digest,
        "action": row["action"],
        "params": row["params"],
        "risk": row["risk"],
        "target": row["target"],
        "incident_id": row["incident_id"],
    }


async def reject(pool: AsyncConnectionPool, action_id: int, actor: str, reason: str) -> dict[str, Any]:
    actor = _check_actor(actor)
    if not (reason or "").strip():
        raise InvalidState("a rejection needs a reason (--reason TEXT)")
    async with pool.connection() as conn, conn.transaction():
        row = await _locked(conn, action_id)
        if row["status"] not in REJECTABLE:
            raise InvalidState(
                f"action {action_id} is {row['status']}; only a queued or approved action can be rejected"
            )
        now = _now()
        # Final: the executor refuses an action with a rejection in the ledger, whatever its
        # row says later.  Before the executor first created the ledger, the step is the record.
        if await ledger.exists(conn):
            await ledger.record(
                conn, "reject", actor=actor, at=now, reason=reason, action_id=action_id, digest=signing.digest(row)
            )
        await ledger_actions.transition(
            conn,
            action_id,
            row["status"],
            ActionStatus.REJECTED,
            actor=actor,
            at=now,
            reason=reason,
            event="action.rejected",
            detail={"action": row["action"], "params": row["params"]},
        )
    return {"action_id": action_id, "rejected_by": actor, "at": now.isoformat()}


async def pause(
    pool: AsyncConnectionPool, actor: str, until: datetime | None, reason: str, *, key: bytes | None
) -> dict[str, Any]:
    """A person's pause (until a resume when `until` is None).  Signed when the key is at hand,
    which lets it replace a longer pause; unsigned it can only lengthen one."""
    actor = _check_actor(actor)
    async with pool.connection() as conn, conn.transaction():
        await _ledger_ready(conn)
        now = _decided_at()
        sig = signing.sign_decision(key, "pause", None, until, actor, now) if key else None
        await set_pause(conn, until, actor=actor, reason=reason, signature=sig, at=now)
        await audit.insert(
            conn,
            now,
            actor,
            "actions.paused",
            "actions",
            {"until": until.isoformat() if until else PAUSE_FOREVER, "signed": sig is not None},
        )
        state = await paused_until(conn, now)
    return {
        "paused_until": state if isinstance(state, str) or state is None else state.isoformat(),
        "by": actor,
        "at": now.isoformat(),
        "signed": sig is not None,
    }


async def resume(pool: AsyncConnectionPool, actor: str, reason: str, *, key: bytes | None) -> dict[str, Any]:
    """End every pause made before now: signed, or the executor ignores it."""
    actor = _check_actor(actor)
    if not key:
        raise _no_key()
    async with pool.connection() as conn, conn.transaction():
        await _ledger_ready(conn)
        now = _decided_at()
        was = await paused_until(conn, now)
        sig = signing.sign_decision(key, "resume", None, None, actor, now)
        await ledger.record(conn, "resume", actor=actor, at=now, reason=reason, signature=sig)
        await audit.insert(conn, now, actor, "actions.resumed", "actions", {"was_paused": was is not None})
    return {"was_paused": was is not None, "by": actor, "at": now.isoformat()}


async def clear_breaker(
    pool: AsyncConnectionPool, target: str, actor: str, reason: str, *, key: bytes | None
) -> dict[str, Any]:
    """A person lets automatic actions touch `target` again: signed, or the executor keeps it open."""
    actor = _check_actor(actor)
    if not key:
        raise _no_key()
    async with pool.connection() as conn, conn.transaction():
        await _ledger_ready(conn)
        now = _decided_at()
        if await open_breaker(conn, target) is None:
            raise NotFound(f"no open breaker on {target!r}")
        sig = signing.sign_decision(key, "clear_breaker", target, None, actor, now)
        await ledger.record(conn, "clear_breaker", actor=actor, at=now, reason=reason, target=target, signature=sig)
        # The orchestrator's advisory copy (its own policy reads it).
        await ledger_actions.clear_breakers(conn, target, at=now, actor=actor)
        await audit.insert(conn, now, actor, "breaker.cleared", f"target:{target}", {"reason": reason[:2000]})
    return {"target": target, "cleared_by": actor, "at": now.isoformat()}


async def list_actions(
    pool: AsyncConnectionPool, status: str | None = None, limit: int = 50, host: str | None = None
) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return await ledger_actions.list_actions(conn, status, max(1, min(int(limit), 1000)), host)


async def show_action(pool: AsyncConnectionPool, action_id: int) -> dict[str, Any]:
    async with pool.connection() as conn:
        row = await ledger_actions.get(conn, action_id)
        if row is None:
            raise NotFound(f"no action {action_id}")
        row["digest"] = signing.digest(row)  # what `approve` takes back
        row["steps"], row["approvals"] = await ledger_actions.history(conn, action_id)
        return row
