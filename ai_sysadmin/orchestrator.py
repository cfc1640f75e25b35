"""The service: the lifecycle of `ai-sysadmin run` (its parts are built in compose/run.py).

It runs L1 (follow the journal, record triggers with the journal cursor), the metrics
collector (every `intervals.metrics` seconds, threshold triggers into the same store),
incidents and the L2/L3 review (escalating to L4 investigations, learning from resolved
incidents), the watch after a switch, daily retention, and -- when an `embed` role is
configured -- keeps the shipped runbooks indexed in the knowledge base.  All of it runs
in one asyncio.TaskGroup; L1 ending (or SIGTERM) stops the rest.
Degraded modes: a down trigger model leaves deterministic triggers flowing (L1 reports
degraded); a down database spools (the store's business); a down embedding server
only delays runbook indexing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from ai_sysadmin.config import Config

log = logging.getLogger(__name__)

STATUS_EVERY = 60.0  # seconds between status lines in the log
RETENTION_EVERY = 24 * 3600.0  # partitions are daily; once a day keeps them ahead
KNOWLEDGE_RETRY = 600.0  # seconds between runbook indexing attempts while embed is down


class Orchestrator:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.parts: Any = None  # compose.run.ServiceParts, while run() runs
        self.knowledge_ready = False
        # Hooks other layers (or tests) set before run(): L4 escalation and resolved-incident write-back.
        self.escalate: Any = None  # review.hooks.Escalate
        self.on_resolved: Any = None  # incidents.hooks.OnResolved

    @property
    def follower(self) -> Any:
        return self.parts.follower if self.parts is not None else None

    async def run(self, stop: asyncio.Event) -> int:
        from ai_sysadmin.compose.run import service_parts

        async with service_parts(self.cfg, escalate=self.escalate, on_resolved=self.on_resolved) as parts:
            self.parts = parts
            try:
                return await self._supervise(parts, stop)
            finally:
                self.parts = None

    async def _supervise(self, parts: Any, stop: asyncio.Event) -> int:
        """Run every part until L1 ends or `stop` is set; 1 when L1 failed."""
        await parts.review.restore()
        failed: list[BaseException] = []
        async with asyncio.TaskGroup() as tg:
            follow = tg.create_task(self._follow(parts.follower, failed), name="l1")
            stopping = tg.create_task(stop.wait(), name="stop")
            # Helpers: their failures are logged and never stop the service.
            helpers = [
                tg.create_task(_logged(name, coro), name=name)
                for name, coro in (
                    ("status", self._status_loop(parts.follower)),
                    ("metrics", parts.collector.run()),
                    ("retention", self._retention_loop(parts.store)),
                    ("knowledge", self._knowledge_task(parts.knowledge)),
                    ("incidents", parts.review.incidents.run()),
                    ("review", parts.review.review.run()),
                    ("switches", parts.switches.run()),
                )
            ]
            await asyncio.wait({follow, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for t in (follow, stopping, *helpers):
                t.cancel()  # the group waits for them
        return 1 if failed else 0

    async def _follow(self, follower: Any, failed: list[BaseException]) -> None:
        try:
            await follower.run()
        except Exception as exc:
            log.error("L1 stopped: %s", exc)
            failed.append(exc)

    async def _retention_loop(self, store: Any) -> None:
        while True:
            try:
                report = await store.run_retention()
                log.info("retention: %s", report)
            except Exception as exc:  # database down: the next day's run catches up
                log.warning("retention skipped: %s", exc)
            await asyncio.sleep(RETENTION_EVERY)

    async def _knowledge_task(self, knowledge: Any) -> None:
        """Index the shipped runbooks once the embedding server answers."""
        if knowledge is None:
            log.info("knowledge: no embed role configured; runbooks are not indexed")
            return
        while True:
            try:
                indexed, unchanged = await knowledge.index_runbooks()
                log.info("knowledge: runbooks indexed=%d unchanged=%d", indexed, unchanged)
                self.knowledge_ready = True
                return
            except Exception as exc:
                log.warning("knowledge: runbook indexing failed (%s); retrying in %.0fs", exc, KNOWLEDGE_RETRY)
            await asyncio.sleep(KNOWLEDGE_RETRY)

    async def _status_loop(self, follower: Any) -> None:
        was_degraded = False
        while True:
            await asyncio.sleep(STATUS_EVERY)
            report = follower.report()
            log.info("L1: %s", " ".join(f"{k}={v}" for k, v in report.items() if v is not None))
            if report["degraded"] and not was_degraded:
                log.warning(
                    "L1 degraded: trigger model unavailable (%s); deterministic triggers continue",
                    report.get("model_error"),
                )
            was_degraded = report["degraded"]


async def _logged(name: str, aw: Awaitable[None]) -> None:
    """A helper of the service: its failure is logged, the others go on."""
    try:
        await aw
    except Exception:
        log.exception("%s stopped after an error; the service goes on without it", name)


def run_service(cfg: Config) -> int:
    async def main() -> int:
        from ai_sysadmin.compose.signals import stop_on_signals

        return await Orchestrator(cfg).run(stop_on_signals())

    return asyncio.run(main())
