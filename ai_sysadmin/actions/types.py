"""The seam every layer proposes through: a typed proposal in, a policy outcome out.

L3 review, L4 meta, the deterministic candidates, the API and chat all hand a
`Proposal` to a `Proposer` (ai_sysadmin.actions.proposals.ActionService in the service,
a dry-run proposer in `replay`).  The proposer validates it against the catalog, asks
the policy, records it, and returns a `ProposalOutcome`.  Nothing a model says sets
the risk or the decision: both come from the catalog and the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

RISKS = ("low", "medium", "high")


class PolicyDecision(StrEnum):
    """What the policy decided about a proposal (stored as these words in actions.decision)."""

    RECORD = "record"
    QUEUE = "queue"
    EXECUTE = "execute"
    REFUSE = "refuse"


class ActionStatus(StrEnum):
    """Where an action row stands (stored as these words in actions.status and action_steps)."""

    PROPOSED = "proposed"  # rows written before the policy recorded its decision (older databases)
    RECORDED = "recorded"
    QUEUED = "queued"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    VERIFIED = "verified"
    INTERRUPTED = "interrupted"
    DRY_RUN = "dry-run"
    REFUSED = "refused"
    EXPIRED = "expired"
    REJECTED = "rejected"


DECISIONS = tuple(PolicyDecision)
SOURCES = ("rules", "review", "meta", "api", "chat", "cli")


@dataclass(frozen=True)
class Proposal:
    action: str  # catalog id, as the proposer (model, rule, person) named it: unvalidated
    params: dict[str, Any]
    reason: str
    source: str  # one of SOURCES
    incident_id: int | None = None
    finding_id: int | None = None
    actor: str | None = None  # who proposed (an API key's name, a local user); None for the service


@dataclass(frozen=True)
class FieldError:
    field: str  # "action", "params.unit", ...
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True)
class ProposalOutcome:
    action: str
    params: dict[str, Any]
    risk: str | None  # the catalog's risk; None when the action id is not in the catalog
    decision: PolicyDecision
    reason: str  # why this decision (policy rule, or the validation errors)
    source: str
    incident_id: int | None = None
    action_id: int | None = None  # the recorded row (None in dry-run)
    errors: tuple[FieldError, ...] = field(default_factory=tuple)
    # Why a model's proposal contradicts its incident's evidence (actions/binding.py); None: it does not.
    contradicts: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "params": self.params,
            "risk": self.risk,
            "decision": self.decision,
            "reason": self.reason,
            "source": self.source,
            "incident": self.incident_id,
            "action_id": self.action_id,
            "errors": [str(e) for e in self.errors],
            "contradicts": self.contradicts,
        }


class Proposer(Protocol):
    async def propose(self, proposal: Proposal) -> ProposalOutcome: ...
