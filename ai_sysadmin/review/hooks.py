"""The seam L4 plugs into: escalation from a review.

When a review answers `escalate: true`, the review service calls
`escalate(incident_id, reason)` for the incident the review is most about -- at most
once per incident every `review.escalate_min_interval` seconds (the debounce is on
this side, so L4 may do slow, deep work).  A hook failure is logged and never fails
the review.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol


class Escalate(Protocol):
    def __call__(self, incident_id: int, reason: str) -> Awaitable[None]: ...
