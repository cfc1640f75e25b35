"""What propose_action proposed, collected per investigation.

    with collect_proposals() as proposals:     # the loop, around one investigation
        ...                                    # propose_action calls record_proposal(outcome)
    proposals                                  # this investigation's outcomes, in order

A toolset is shared by every investigation of a process, and the API runs several at
once: a proposal must reach only the investigation that made it, so the collector lives
in a context variable (each asyncio task has its own context), not in the toolset.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

_PROPOSALS: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "ai_sysadmin_meta_proposals", default=None
)


@contextlib.contextmanager
def collect_proposals() -> Iterator[list[Any]]:
    """Collect the ProposalOutcomes propose_action makes inside this block (one investigation), in order."""
    collected: list[Any] = []
    token = _PROPOSALS.set(collected)
    try:
        yield collected
    finally:
        _PROPOSALS.reset(token)


def record_proposal(outcome: Any) -> None:
    """propose_action's outcome, for the investigation that made it (outside one it is only returned)."""
    collected = _PROPOSALS.get()
    if collected is not None:
        collected.append(outcome)
