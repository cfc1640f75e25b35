"""Handing a proposal to the policy from L4: never raises, a missing proposer refuses."""

from __future__ import annotations

import logging
from typing import Any

from ai_sysadmin.actions.types import Proposal, ProposalOutcome

log = logging.getLogger(__name__)


async def propose(proposer: Any, proposal: Proposal) -> ProposalOutcome:
    if proposer is None:
        return ProposalOutcome(proposal.action, proposal.params, None, "refuse", "no action service configured",
                               proposal.source, proposal.incident_id)
    try:
        return await proposer.propose(proposal)
    except Exception as exc:  # a database hiccup must not end the investigation
        log.warning("meta: proposing %s failed: %s", proposal.action, exc)
        return ProposalOutcome(proposal.action, proposal.params, None, "refuse", f"proposal failed: {exc}",
                               proposal.source, proposal.incident_id)
