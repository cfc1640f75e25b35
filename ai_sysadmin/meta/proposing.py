"""Handing a proposal to the policy from L4: never raises, a missing proposer refuses."""

from __future__ import annotations

import logging

from ai_sysadmin.actions.types import PolicyDecision, Proposal, ProposalOutcome, Proposer

log = logging.getLogger(__name__)


async def propose(proposer: Proposer | None, proposal: Proposal) -> ProposalOutcome:
    if proposer is None:
        return ProposalOutcome(
            proposal.action,
            proposal.params,
            None,
            PolicyDecision.REFUSE,
            "no action service configured",
            proposal.source,
            proposal.incident_id,
        )
    try:
        return await proposer.propose(proposal)
    except Exception as exc:  # a database hiccup must not end the investigation
        log.warning("meta: proposing %s failed: %s", proposal.action, exc)
        return ProposalOutcome(
            proposal.action,
            proposal.params,
            None,
            PolicyDecision.REFUSE,
            f"proposal failed: {exc}",
            proposal.source,
            proposal.incident_id,
        )
