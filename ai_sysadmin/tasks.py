"""Stopping a background task: the one way every part that owns one does it.

    await stop_tasks(self._task)          # cancel, then wait until it has ended
    await stop_tasks(*helpers)            # several at once

A stopped task's own failure is logged (debug), never raised: a part that is being
stopped must not fail its owner's shutdown.  The caller's own cancellation is not
swallowed.  Ground floor: imports no layer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def stop_tasks(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel each task (None entries are skipped) and return once all of them have ended."""
    pending = [t for t in tasks if t is not None]
    if not pending:
        return
    for t in pending:
        t.cancel()
    await asyncio.wait(pending)
    for t in pending:
        if not t.cancelled() and t.exception() is not None:
            log.debug("a stopped task had failed: %r", t.exception())
