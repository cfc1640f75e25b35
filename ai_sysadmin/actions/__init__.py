"""Actions: the typed catalog, the autonomy policy, approvals and the privileged executor.

The seam the other layers use is in `actions.types` (Proposal -> Proposer -> ProposalOutcome).
"""

from ai_sysadmin.actions.types import DECISIONS, RISKS, SOURCES, FieldError, Proposal, ProposalOutcome, Proposer

__all__ = ["DECISIONS", "RISKS", "SOURCES", "FieldError", "Proposal", "ProposalOutcome", "Proposer"]
