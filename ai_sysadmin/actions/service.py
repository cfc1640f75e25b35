"""The proposer every layer hands its proposals to.

`ActionService` validates a proposal against the catalog, establishes the policy's
facts from the database, decides, and records the action row, its first step and an
audit entry in one transaction -- for refusals too, with the reason.  When the policy
lets the service run an action it also writes a *policy* approval (unsigned: the
orchestrator has no approval key); the executor re-decides that from its own config.

`DryRunProposer` does the same validation and policy without a database (no pause,
no counters, no breakers: a replay has no live state) and records nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, Callable

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.actions import preconditions
from ai_sysadmin.actions.catalog import Catalog, Paths, ProposalRejected, ValidatedAction, load_catalog
from ai_sysadmin.actions.policy import Decision, decide, is_protected
from ai_sysadmin.actions.state import gather, now_utc, policy_state
from ai_sysadmin.actions.types import SOURCES, FieldError, Proposal, ProposalOutcome
from ai_sysadmin.actions.verification import unit_names
from ai_sysadmin.config import Config
from ai_sysadmin.store.db import is_unreachable

log = logging.getLogger(__name__)

SERVICE_ACTOR = "ai-sysadmin"  # the orchestrator's own name in steps, approvals and audit
POLICY_APPROVER = "ai-sysadmin (policy)"
STATUS_OF = {"record": "recorded", "queue": "queued", "execute": "approved", "refuse": "refused"}
PENDING = ("queued", "approved", "executing")
MAX_TEXT = 2000  # proposal reasons and actors are kept at most this long


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")  # PostgreSQL text and jsonb cannot hold NUL


def bounded_params(params: Any) -> dict[str, Any]:
    """What is stored/echoed of a proposal's parameters: strict JSON (no NaN, no NUL), and small."""
    if not isinstance(params, dict):
        return {"_invalid": _no_nul(repr(params)[:200])}
    try:
        text = json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return {"_invalid": _no_nul(repr(params)[:200])}
    if len(text) > 4096:
        return {"_truncated": _no_nul(text[:1024])}
    return json.loads(text.replace("\\u0000", "\\ufffd")) if "\\u0000" in text else params


def bounded_action(action: Any) -> str:
    return _no_nul(action[:100] if isinstance(action, str) else repr(action)[:100])


def _text(value: Any) -> str:
    return _no_nul(str(value if value is not None else "")[:MAX_TEXT])


class ActionService:
    """The `Proposer` of the running service (see actions.types)."""

    def __init__(self, cfg: Config, pool: AsyncConnectionPool, *, catalog: Catalog | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.cfg = cfg
        self.pool = pool
        self.catalog = catalog or load_catalog()
        self.clock = clock or now_utc

    async def propose(self, proposal: Proposal) -> ProposalOutcome:
        try:
            va = self.catalog.validate(proposal.action, proposal.params)
        except ProposalRejected as exc:
            spec = self.catalog.get(proposal.action)
            return await self._record_refusal(proposal, spec.risk if spec else None, exc.errors)
        if proposal.source not in SOURCES:
            return await self._record_refusal(proposal, va.risk, (FieldError("source", "unknown source"),))
        try:
            return await self._propose_valid(proposal, va)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            # Never executes: without the database nothing can be approved or run.
            log.warning("action proposal not recorded (database unreachable): %s %s", va.id, va.params)
            return ProposalOutcome(action=va.id, params=va.params, risk=va.risk, decision="refuse",
                                   reason="database unreachable: proposal not recorded; propose again later",
                                   source=proposal.source, incident_id=proposal.incident_id)

    async def _propose_valid(self, proposal: Proposal, va: ValidatedAction) -> ProposalOutcome:
        now = self.clock()
        a = self.cfg.actions
        va = preconditions.bind(va, Paths(system_profile=a.system_profile, current_system=a.current_system))
        # Every name systemd knows the unit by: an alias of a protected unit is refused here,
        # before a decision is recorded, not only later by the executor.
        aliases = await unit_names(va.unit) if va.unit else ()
        async with self.pool.connection() as conn, conn.transaction():
            # One proposal per target at a time, so two concurrent ones cannot both pass a limit.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ai-sysadmin-action:' || %s))", (va.target,))
            dup = await self._pending_duplicate(conn, va)
            if dup is not None:
                dup_id, dup_status = dup
                reason = f"already pending as action {dup_id} ({dup_status})"
                await self._audit(conn, now, "action.duplicate", dup_id,
                                  {"action": va.id, "params": va.params, "source": proposal.source,
                                   "reason": reason, "proposal_reason": _text(proposal.reason)})
                return ProposalOutcome(action=va.id, params=va.params, risk=va.risk,
                                       decision="execute" if dup_status != "queued" else "queue", reason=reason,
                                       source=proposal.source, incident_id=proposal.incident_id, action_id=dup_id)
            facts = await gather(conn, self.cfg, va, now, extra_units=aliases)
            decision = facts.decide(self.cfg.autonomy_level, va)
            action_id = await self._insert(conn, now, proposal, va.id, va.params, va.risk, va.target, decision, ())
            if decision.decision == "execute":
                # The service may approve only what its policy lets it run; unsigned, so the
                # executor re-decides it from its own configuration before running anything.
                await conn.execute(
                    "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at) "
                    "VALUES (%s, 'policy', %s, %s, %s, %s)",
                    (action_id, POLICY_APPROVER, decision.reason, now,
                     now + timedelta(seconds=self.cfg.actions.approval_ttl_seconds)))
        return ProposalOutcome(action=va.id, params=va.params, risk=va.risk, decision=decision.decision,
                               reason=decision.reason, source=proposal.source, incident_id=proposal.incident_id,
                               action_id=action_id)

    async def _pending_duplicate(self, conn: psycopg.AsyncConnection, va: ValidatedAction) -> tuple[int, str] | None:
        cur = await conn.execute("SELECT id, status FROM actions WHERE action = %s AND params = %s "
                                 "AND status = ANY(%s) ORDER BY id DESC LIMIT 1",
                                 (va.id, Jsonb(va.params), list(PENDING)))
        row = await cur.fetchone()
        return (int(row[0]), str(row[1])) if row else None

    async def _record_refusal(self, proposal: Proposal, risk: str | None,
                              errors: tuple[FieldError, ...]) -> ProposalOutcome:
        reason = "invalid proposal: " + "; ".join(str(e) for e in errors)
        action, params = bounded_action(proposal.action), bounded_params(proposal.params)
        decision = Decision("refuse", reason)
        action_id = None
        try:
            async with self.pool.connection() as conn, conn.transaction():
                action_id = await self._insert(conn, self.clock(), proposal, action, params, risk, None,
                                               decision, errors)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            log.warning("refused proposal not recorded (database unreachable): %s", reason)
        return ProposalOutcome(action=action, params=params, risk=risk, decision="refuse", reason=reason,
                               source=proposal.source, incident_id=proposal.incident_id, action_id=action_id,
                               errors=tuple(errors))

    async def _insert(self, conn: psycopg.AsyncConnection, now: datetime, proposal: Proposal, action: str,
                      params: dict[str, Any], risk: str | None, target: str | None, decision: Decision,
                      errors: tuple[FieldError, ...]) -> int:
        status = STATUS_OF[decision.decision]
        incident = proposal.incident_id if isinstance(proposal.incident_id, int) else None
        finding = proposal.finding_id if isinstance(proposal.finding_id, int) else None
        if incident is not None:  # a model may name an incident that does not exist
            cur = await conn.execute("SELECT 1 FROM incidents WHERE id = %s", (incident,))
            incident = incident if await cur.fetchone() else None
        if finding is not None:
            cur = await conn.execute("SELECT 1 FROM findings WHERE id = %s", (finding,))
            finding = finding if await cur.fetchone() else None
        source = proposal.source if proposal.source in SOURCES else "unknown"
        cur = await conn.execute(
            "INSERT INTO actions (incident_id, finding_id, action, params, risk, status, decision, decision_reason, "
            "proposal_reason, source, proposed_by, target, errors, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (incident, finding, action, Jsonb(params), risk, status, decision.decision, decision.reason,
             _text(proposal.reason), source, _text(proposal.actor) or None, target,
             Jsonb([{"field": e.field, "reason": e.reason} for e in errors]), now, now))
        action_id = int((await cur.fetchone())[0])  # type: ignore[index]
        await conn.execute("INSERT INTO action_steps (action_id, from_status, to_status, actor, reason, at) "
                           "VALUES (%s, NULL, %s, %s, %s, %s)",
                           (action_id, status, _text(proposal.actor) or SERVICE_ACTOR, decision.reason, now))
        await self._audit(conn, now, f"action.{decision.decision}", action_id,
                          {"action": action, "params": params, "risk": risk, "decision": decision.decision,
                           "reason": decision.reason, "source": source, "actor": proposal.actor,
                           "incident": incident, "proposal_reason": _text(proposal.reason)})
        return action_id

    @staticmethod
    async def _audit(conn: psycopg.AsyncConnection, now: datetime, event: str, action_id: int,
                     detail: dict[str, Any]) -> None:
        await conn.execute("INSERT INTO audit_log (at, actor, event, subject, detail) VALUES (%s, %s, %s, %s, %s)",
                           (now, SERVICE_ACTOR, event, f"action:{action_id}", Jsonb(detail)))

    async def policy_state(self) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            return await policy_state(conn, self.cfg, self.clock())


class DryRunProposer:
    """Validation and policy with no live state; records nothing (replay --through review)."""

    def __init__(self, cfg: Config, catalog: Catalog | None = None):
        self.cfg = cfg
        self.catalog = catalog or load_catalog()
        self.outcomes: list[ProposalOutcome] = []

    async def propose(self, proposal: Proposal) -> ProposalOutcome:
        try:
            va = self.catalog.validate(proposal.action, proposal.params)
        except ProposalRejected as exc:
            spec = self.catalog.get(proposal.action)
            out = ProposalOutcome(action=bounded_action(proposal.action), params=bounded_params(proposal.params),
                                  risk=spec.risk if spec else None, decision="refuse",
                                  reason="invalid proposal: " + "; ".join(str(e) for e in exc.errors),
                                  source=proposal.source, incident_id=proposal.incident_id, errors=exc.errors)
        else:
            protected = is_protected(va.unit, self.cfg.protected_units, self.cfg.actions.protected_patterns)
            d = decide(self.cfg.autonomy_level, va.risk, protected=protected, target=va.target)
            out = ProposalOutcome(action=va.id, params=va.params, risk=va.risk, decision=d.decision,
                                  reason=f"{d.reason} (dry run: nothing recorded)", source=proposal.source,
                                  incident_id=proposal.incident_id)
        self.outcomes.append(out)
        return out
