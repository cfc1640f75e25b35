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
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.actions import preconditions
from ai_sysadmin.actions.binding import MODEL_SOURCES, Evidence, contradicts, unbound
from ai_sysadmin.actions.catalog import Catalog, Paths, ProposalRejected, ValidatedAction, load_catalog
from ai_sysadmin.actions.facts import gather, now_utc, policy_state
from ai_sysadmin.actions.policy import Decision, decide, is_protected
from ai_sysadmin.actions.types import SOURCES, ActionStatus, FieldError, PolicyDecision, Proposal, ProposalOutcome
from ai_sysadmin.actions.verification import unit_names
from ai_sysadmin.config import Config
from ai_sysadmin.store import actions as ledger_actions
from ai_sysadmin.store import audit
from ai_sysadmin.store.db import is_unreachable
from ai_sysadmin.store.incidents import incident_evidence, incident_hosts

log = logging.getLogger(__name__)

SERVICE_ACTOR = "ai-sysadmin"  # the orchestrator's own name in steps, approvals and audit
POLICY_APPROVER = "ai-sysadmin (policy)"
STATUS_OF = {
    PolicyDecision.RECORD: ActionStatus.RECORDED,
    PolicyDecision.QUEUE: ActionStatus.QUEUED,
    PolicyDecision.EXECUTE: ActionStatus.APPROVED,
    PolicyDecision.REFUSE: ActionStatus.REFUSED,
}
PENDING = (ActionStatus.QUEUED, ActionStatus.APPROVED, ActionStatus.EXECUTING)
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


def _incident_of(proposal: Proposal) -> int | None:
    return proposal.incident_id if isinstance(proposal.incident_id, int) else None


class ActionService:
    """The `Proposer` of the running service (see actions.types)."""

    def __init__(
        self,
        cfg: Config,
        pool: AsyncConnectionPool,
        *,
        catalog: Catalog | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
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
            return ProposalOutcome(
                action=va.id,
                params=va.params,
                risk=va.risk,
                decision=PolicyDecision.REFUSE,
                reason="database unreachable: proposal not recorded; propose again later",
                source=proposal.source,
                incident_id=proposal.incident_id,
            )

    async def _propose_valid(self, proposal: Proposal, va: ValidatedAction) -> ProposalOutcome:
        now = self.clock()
        a = self.cfg.actions
        va = preconditions.bind(va, Paths(system_profile=a.system_profile, current_system=a.current_system))
        # Every name systemd knows the unit by: an alias of a protected unit is refused here,
        # before a decision is recorded, not only later by the executor.
        aliases = await unit_names(va.unit) if va.unit else ()
        async with self.pool.connection() as conn, conn.transaction():
            # One proposal per target at a time, so two concurrent ones cannot both pass a limit.
            await ledger_actions.lock_target(conn, va.target)
            incident = await ledger_actions.existing_incident(conn, _incident_of(proposal))
            # An action runs on one host: its incident's.  A fleet incident's proposal becomes
            # one action per host it reached, each waiting for a person (docs/fleet.md).
            hosts = await incident_hosts(conn, incident)
            on: list[str | None] = list(hosts) or [None]
            outcomes = [await self._propose_on(conn, now, proposal, va, aliases, incident, h, hosts) for h in on]
        return outcomes[0]

    async def _propose_on(
        self,
        conn: psycopg.AsyncConnection,
        now: datetime,
        proposal: Proposal,
        va: ValidatedAction,
        aliases: tuple[str, ...],
        incident: int | None,
        host: str | None,
        hosts: list[str],
    ) -> ProposalOutcome:
        """Decide and record the action on `host` (None: the local host's)."""
        # A duplicate is pending for the same incident: the same action pending for another
        # incident does not stand in for this one (each incident's record links its own action).
        dup = await ledger_actions.pending_duplicate(conn, va.id, va.params, PENDING, incident, host)
        if dup is not None:
            dup_id, dup_status = dup
            reason = f"already pending as action {dup_id} ({dup_status})"
            await self._audit(
                conn,
                now,
                "action.duplicate",
                dup_id,
                {
                    "action": va.id,
                    "params": va.params,
                    "source": proposal.source,
                    "reason": reason,
                    "proposal_reason": _text(proposal.reason),
                },
            )
            pending = PolicyDecision.QUEUE if dup_status == ActionStatus.QUEUED else PolicyDecision.EXECUTE
            return ProposalOutcome(
                action=va.id,
                params=va.params,
                risk=va.risk,
                decision=pending,
                reason=reason,
                source=proposal.source,
                incident_id=proposal.incident_id,
                action_id=dup_id,
            )
        facts = await gather(conn, self.cfg, va, now, extra_units=aliases)
        found = await incident_evidence(conn, proposal.incident_id) if proposal.source in MODEL_SOURCES else None
        evidence = Evidence(*found) if found is not None else None
        against = contradicts(va, proposal.source, evidence)
        decision = facts.decide(self.cfg.autonomy_level, va, unbound(va, proposal.source, evidence, self.cfg.actions))
        if len(hosts) > 1 and decision.decision == PolicyDecision.EXECUTE:
            # The same fault on several hosts (a deploy, an upstream): acting on all of them at
            # once is the blast radius a person must choose, host by host.
            decision = Decision(
                PolicyDecision.QUEUE,
                f"fleet incident on {len(hosts)} hosts ({', '.join(hosts)}): each host's action waits for a person",
            )
        elif host is not None and host != self.cfg.fleet.host_id() and decision.decision == PolicyDecision.EXECUTE:
            # The facts above (unit states, protected units, limits) are this host's: the review
            # and the investigation read the member's state as the hub holds it, the policy does
            # not, so what it would run there waits for a person (docs/fleet.md).
            decision = Decision(
                PolicyDecision.QUEUE,
                f"action for host {host}: decided on this host's facts, not {host}'s; it waits for a person",
            )
        action_id = await self._insert(
            conn, now, proposal, va.id, va.params, va.risk, va.target, decision, (), contradicts=against, host=host
        )
        if decision.decision == PolicyDecision.EXECUTE:
            # The service may approve only what its policy lets it run; unsigned, so the
            # executor re-decides it from its own configuration before running anything.
            await ledger_actions.add_policy_approval(
                conn,
                action_id,
                approver=POLICY_APPROVER,
                reason=decision.reason,
                approved_at=now,
                expires_at=now + timedelta(seconds=self.cfg.actions.approval_ttl_seconds),
            )
        return ProposalOutcome(
            action=va.id,
            params=va.params,
            risk=va.risk,
            decision=decision.decision,
            reason=decision.reason,
            source=proposal.source,
            incident_id=proposal.incident_id,
            action_id=action_id,
            contradicts=against,
        )

    async def _record_refusal(
        self, proposal: Proposal, risk: str | None, errors: tuple[FieldError, ...]
    ) -> ProposalOutcome:
        reason = "invalid proposal: " + "; ".join(str(e) for e in errors)
        action, params = bounded_action(proposal.action), bounded_params(proposal.params)
        decision = Decision(PolicyDecision.REFUSE, reason)
        action_id = None
        try:
            async with self.pool.connection() as conn, conn.transaction():
                action_id = await self._insert(
                    conn, self.clock(), proposal, action, params, risk, None, decision, errors
                )
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            log.warning("refused proposal not recorded (database unreachable): %s", reason)
        return ProposalOutcome(
            action=action,
            params=params,
            risk=risk,
            decision=PolicyDecision.REFUSE,
            reason=reason,
            source=proposal.source,
            incident_id=proposal.incident_id,
            action_id=action_id,
            errors=tuple(errors),
        )

    async def _insert(
        self,
        conn: psycopg.AsyncConnection,
        now: datetime,
        proposal: Proposal,
        action: str,
        params: dict[str, Any],
        risk: str | None,
        target: str | None,
        decision: Decision,
        errors: tuple[FieldError, ...],
        *,
        contradicts: str | None = None,
        host: str | None = None,
    ) -> int:
        status = STATUS_OF[decision.decision]
        incident = _incident_of(proposal)
        finding = proposal.finding_id if isinstance(proposal.finding_id, int) else None
        # A model may name an incident or finding that does not exist.
        incident = await ledger_actions.existing_incident(conn, incident)
        finding = await ledger_actions.existing_finding(conn, finding)
        source = proposal.source if proposal.source in SOURCES else "unknown"
        row = {
            "incident_id": incident,
            "finding_id": finding,
            "action": action,
            "params": params,
            "risk": risk,
            "status": status,
            "decision": decision.decision,
            "decision_reason": decision.reason,
            "proposal_reason": _text(proposal.reason),
            "source": source,
            "proposed_by": _text(proposal.actor) or None,
            "target": target,
            "errors": [{"field": e.field, "reason": e.reason} for e in errors],
            "contradicts": contradicts,
            "host": host,
        }
        return await ledger_actions.insert(
            conn,
            at=now,
            row=row,
            actor=SERVICE_ACTOR,
            step_actor=_text(proposal.actor) or SERVICE_ACTOR,
            event=f"action.{decision.decision}",
            detail={
                "action": action,
                "params": params,
                "risk": risk,
                "decision": decision.decision,
                "reason": decision.reason,
                "source": source,
                "actor": proposal.actor,
                "incident": incident,
                "proposal_reason": _text(proposal.reason),
                **({"contradicts": contradicts} if contradicts else {}),
            },
        )

    @staticmethod
    async def _audit(
        conn: psycopg.AsyncConnection, now: datetime, event: str, action_id: int, detail: dict[str, Any]
    ) -> None:
        await audit.insert(conn, now, SERVICE_ACTOR, event, ledger_actions.subject(action_id), detail)

    async def policy_state(self) -> dict[str, Any]:
        async with self.pool.connection() as conn:
            return await policy_state(conn, self.cfg, self.clock())


class DryRunProposer:
    """Validation and policy with no live state; records nothing (replay --through review)."""

    def __init__(
        self,
        cfg: Config,
        catalog: Catalog | None = None,
        evidence: Callable[[int | None], Evidence | Iterable[str] | None] | None = None,
    ):
        self.cfg = cfg
        self.catalog = catalog or load_catalog()
        self.outcomes: list[ProposalOutcome] = []
        # incident id -> its Evidence (or just its trusted units)
        self.evidence = evidence or (lambda _incident: None)

    async def propose(self, proposal: Proposal) -> ProposalOutcome:
        try:
            va = self.catalog.validate(proposal.action, proposal.params)
        except ProposalRejected as exc:
            spec = self.catalog.get(proposal.action)
            out = ProposalOutcome(
                action=bounded_action(proposal.action),
                params=bounded_params(proposal.params),
                risk=spec.risk if spec else None,
                decision=PolicyDecision.REFUSE,
                reason="invalid proposal: " + "; ".join(str(e) for e in exc.errors),
                source=proposal.source,
                incident_id=proposal.incident_id,
                errors=exc.errors,
            )
        else:
            protected = is_protected(va.unit, self.cfg.protected_units, self.cfg.actions.protected_patterns)
            found = self.evidence(proposal.incident_id)
            bound = unbound(va, proposal.source, found, self.cfg.actions)
            d = decide(self.cfg.autonomy_level, va.risk, protected=protected, target=va.target, unbound=bound)
            out = ProposalOutcome(
                action=va.id,
                params=va.params,
                risk=va.risk,
                decision=d.decision,
                reason=f"{d.reason} (dry run: nothing recorded)",
                source=proposal.source,
                incident_id=proposal.incident_id,
                contradicts=contradicts(va, proposal.source, found),
            )
        self.outcomes.append(out)
        return out
