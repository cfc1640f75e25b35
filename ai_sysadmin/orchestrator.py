"""The service: wiring and lifecycle of `ai-sysadmin run`.

Today it runs L1 (follow the journal, record triggers with the journal cursor), the
metrics collector (every `intervals.metrics` seconds, threshold triggers into the same
store), daily retention, and -- when an `embed` role is configured -- keeps the
shipped runbooks indexed in the knowledge base.  The review layers that consume
triggers come later and hang off the same loop.
Degraded modes: a down trigger model leaves deterministic triggers flowing (L1 reports
degraded); a down database spools (the store's business); a down embedding server
only delays runbook indexing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from ai_sysadmin.config import Config

log = logging.getLogger(__name__)

STATUS_EVERY = 60.0  # seconds between status lines in the log
RETENTION_EVERY = 24 * 3600.0  # partitions are daily; once a day keeps them ahead
KNOWLEDGE_RETRY = 600.0  # seconds between runbook indexing attempts while embed is down


class Orchestrator:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.follower: Any = None
        self.knowledge_ready = False
        self.actions: Any = None  # ActionService, built in run()
        self.review: Any = None  # ai_sysadmin.review.stack.ReviewStack, built in run()
        # Hooks other layers set before run(): L4 escalation and resolved-incident write-back.
        self.escalate: Any = None  # review.hooks.Escalate
        self.on_resolved: Any = None  # incidents.hooks.OnResolved

    async def run(self, stop: asyncio.Event) -> int:
        from ai_sysadmin.llm import LLMClient
        from ai_sysadmin.store.lifecycle import open_store
        from ai_sysadmin.trigger.follower import TriggerFollower, journal_source

        cfg = self.cfg
        store = await open_store(cfg)
        await self._apply_grants(store)
        from ai_sysadmin.actions.proposals import ActionService

        # The one Proposer of the service: the review and meta layers propose through it.
        self.actions = ActionService(cfg, store.pool)
        client = None
        if cfg.trigger.model and cfg.roles.trigger.enable:
            client = LLMClient(cfg.roles.trigger, on_call=store.llm_calls)
        from ai_sysadmin.meta.service import MetaLayer
        from ai_sysadmin.review.stack import ReviewStack

        # L4: the review's escalations start investigations; resolved incidents are learned.
        meta = MetaLayer.build(cfg, store, self.actions)
        self.escalate = self.escalate or meta.escalate
        self.on_resolved = self.on_resolved or meta.on_resolved
        # Incidents and the review listen to every recorded trigger through this sink.
        self.review = ReviewStack.build(cfg, store, self.actions, escalate=self.escalate, on_resolved=self.on_resolved)
        self.follower = TriggerFollower(cfg.trigger, journal_source(cfg), self.review.tap,
                                        state_dir=cfg.state_dir, model=client, poll_interval=cfg.trigger.poll_interval)
        from ai_sysadmin.collect.collector import MetricsCollector

        collector = MetricsCollector(cfg, store.metrics, self.review.tap)
        follow = asyncio.create_task(self.follower.run(), name="l1")
        status = asyncio.create_task(self._status_loop(), name="status")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        # Helpers: their failures are logged inside and never stop the service.
        helpers = [
            asyncio.create_task(collector.run(), name="metrics"),
            asyncio.create_task(self._retention_loop(store), name="retention"),
            asyncio.create_task(self._knowledge_task(store), name="knowledge"),
            *await self.review.start(),
            asyncio.create_task(self._switch_watch(store).run(), name="switches"),
        ]
        rc = 0
        try:
            done, _ = await asyncio.wait({follow, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if follow in done:
                exc = follow.exception()
                if exc is not None:
                    log.error("L1 stopped: %s", exc)
                    rc = 1
        finally:
            for t in (follow, status, stopping, *helpers):
                t.cancel()
            for t in (follow, status, stopping, *helpers):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if client is not None:
                await client.aclose()
            await self.review.aclose()
            await meta.aclose()
            await store.close()
        return rc

    def _switch_watch(self, store: Any) -> Any:
        """The watch after a switch (docs/preflight.md): records switches, attributes failures to them."""
        from ai_sysadmin.actions.policy import is_protected
        from ai_sysadmin.incidents.switches import SwitchWatch
        from ai_sysadmin.store.switches import SwitchStore

        protected = self.cfg.protected_units
        return SwitchWatch(self.cfg, SwitchStore(store.pool), is_protected=lambda u: is_protected(u, protected))

    async def _apply_grants(self, store: Any) -> None:
        """GRANT the executor's and the API's roles their privileges (idempotent; after migrating)."""
        db = self.cfg.database
        if not (db.executor_role or db.api_role):
            return
        from ai_sysadmin.store.grants import apply_grants

        try:
            granted = await apply_grants(store.pool, db)
            log.info("database grants applied: %s", ", ".join(f"{r} ({len(g)})" for r, g in granted.items()) or "none")
        except Exception as exc:  # database down at start: the next start applies them
            log.warning("database grants not applied: %s", exc)

    async def _retention_loop(self, store: Any) -> None:
        while True:
            try:
                report = await store.run_retention()
                log.info("retention: %s", report)
            except Exception as exc:  # database down: the next day's run catches up
                log.warning("retention skipped: %s", exc)
            await asyncio.sleep(RETENTION_EVERY)

    async def _knowledge_task(self, store: Any) -> None:
        """Index the shipped runbooks once the embedding server answers."""
        embed = self.cfg.roles.embed
        if embed is None or not embed.enable:
            log.info("knowledge: no embed role configured; runbooks are not indexed")
            return
        from ai_sysadmin.llm import LLMClient
        from ai_sysadmin.store.knowledge import KnowledgeBase

        async with LLMClient(embed, on_call=store.llm_calls) as client:
            while True:
                try:
                    kb = await KnowledgeBase.open(self.cfg.knowledge, client)
                    indexed, unchanged = await kb.index_runbooks()
                    log.info("knowledge: runbooks indexed=%d unchanged=%d", indexed, unchanged)
                    self.knowledge_ready = True
                    return
                except Exception as exc:
                    log.warning("knowledge: runbook indexing failed (%s); retrying in %.0fs", exc, KNOWLEDGE_RETRY)
                await asyncio.sleep(KNOWLEDGE_RETRY)

    async def _status_loop(self) -> None:
        was_degraded = False
        while True:
            await asyncio.sleep(STATUS_EVERY)
            if self.follower is None:
                continue
            report = self.follower.report()
            log.info("L1: %s", " ".join(f"{k}={v}" for k, v in report.items() if v is not None))
            if report["degraded"] and not was_degraded:
                log.warning("L1 degraded: trigger model unavailable (%s); deterministic triggers continue",
                            report.get("model_error"))
            was_degraded = report["degraded"]


def run_service(cfg: Config) -> int:
    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await Orchestrator(cfg).run(stop)

    return asyncio.run(main())
