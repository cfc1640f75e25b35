"""Escalation from L3: `escalate(incident_id, reason)` starts one investigation, debounced per incident.

The review calls this hook when its answer says `escalate`.  The hook returns at once
(the investigation runs as a task, one at a time: the meta model is the big one), and
an incident investigated within `meta.escalation_debounce_seconds` -- by this process
or, per the findings table, by any other -- is not investigated again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ai_sysadmin import envelope
from ai_sysadmin.meta.findings import FindingsStore
from ai_sysadmin.tasks import stop_tasks

if TYPE_CHECKING:  # the loop imports the model client; the escalation only calls it
    from ai_sysadmin.meta.loop import Investigation

log = logging.getLogger(__name__)

QUESTION = (
    "The periodic review escalated incident {id} for a deeper look. The review's reason: {reason}. "
    "Investigate with the tools, find the root cause, and propose catalog actions if they would help."
)


class Investigates(Protocol):
    """An investigator: meta.loop.Investigator, or one that opens its knowledge base on first use."""

    async def investigate(self, question: str, *, incident_id: int | None = None) -> Investigation: ...


class Escalator:
    def __init__(
        self,
        investigator: Investigates,
        *,
        debounce_seconds: float,
        findings: FindingsStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.investigator = investigator
        self.debounce = debounce_seconds
        self.findings = findings  # the cross-process debounce
        self._clock = clock
        self._last: dict[int, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._one_at_a_time = asyncio.Semaphore(1)
        self.started: list[int] = []  # incident ids, in order (status, tests)
        self.results: list[Investigation] = []  # finished, in order

    async def escalate(self, incident_id: int, reason: str) -> None:
        now = self._clock()
        last = self._last.get(incident_id)
        if last is not None and now - last < self.debounce:
            log.info("meta: escalation of incident %s debounced (%.0fs since the last)", incident_id, now - last)
            return
        if self.findings is not None and self.debounce > 0:
            try:
                if await self.findings.investigated_since(incident_id, self.debounce):
                    log.info("meta: incident %s was investigated recently; escalation skipped", incident_id)
                    self._last[incident_id] = now
                    return
            except Exception as exc:  # database down: the in-process debounce still holds
                log.warning("meta: escalation debounce check failed: %s", exc)
        self._last[incident_id] = now
        self.started.append(incident_id)
        task = asyncio.create_task(self._investigate(incident_id, reason), name=f"meta-incident-{incident_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _investigate(self, incident_id: int, reason: str) -> None:
        question = QUESTION.format(id=incident_id, reason=envelope.neutralise(str(reason))[:500])
        async with self._one_at_a_time:
            try:
                result = await self.investigator.investigate(question, incident_id=incident_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("meta: investigation of incident %s failed", incident_id)
                return
        self.results.append(result)
        log.info(
            "meta: incident %s investigated (%s, finding %s, %d steps): %s",
            incident_id,
            result.outcome,
            result.finding_id,
            len(result.steps),
            result.diagnosis.get("root_cause", "")[:160],
        )

    async def idle(self) -> None:
        """Wait until every started investigation has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await stop_tasks(*self._tasks)
