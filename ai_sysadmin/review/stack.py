"""Incidents + L2 + L3 as the service runs them, built from the config in one place.

    stack = ReviewStack.build(cfg, store, actions, client=review_client, escalate=..., on_resolved=...)
    sink = stack.tap            # give L1 and the collector this sink instead of store.triggers
    await stack.restore()       # the live incidents of the last run
    tg.create_task(stack.incidents.run()); tg.create_task(stack.review.run())
    ...
    await stack.aclose()        # saves the context window (the client is its owner's to close)

A down review model is not fatal: reviews are recorded as skipped and the deterministic
candidates are still proposed.  A down database delays incident writes (kept in memory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ai_sysadmin.actions.proposals import ActionService
from ai_sysadmin.config import Config
from ai_sysadmin.context.window import TriggerWindow
from ai_sysadmin.incidents.health import CollectorUnits
from ai_sysadmin.incidents.hooks import OnResolved
from ai_sysadmin.incidents.tracker import IncidentService, TriggerTap
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.review.candidates import supported_actions
from ai_sysadmin.review.hooks import Escalate
from ai_sysadmin.review.record import PgReviewSink
from ai_sysadmin.review.reviewer import ReviewService
from ai_sysadmin.review.state_sources import PgState
from ai_sysadmin.store.knowledge import KnowledgeSearch
from ai_sysadmin.store.lifecycle import Store
from ai_sysadmin.store.switches import SwitchStore

log = logging.getLogger(__name__)


def window_path(cfg: Config) -> Path:
    return Path(cfg.state_dir) / "review" / "context-window.json"


@dataclass
class ReviewStack:
    incidents: IncidentService
    review: ReviewService
    tap: TriggerTap

    @classmethod
    def build(
        cls,
        cfg: Config,
        store: Store,
        actions: ActionService,
        *,
        client: LLMClient | None = None,
        escalate: Escalate | None = None,
        on_resolved: OnResolved | None = None,
        knowledge: KnowledgeSearch | None = None,
    ) -> ReviewStack:
        """`client`: the review role's LLMClient (None: reviews are recorded as skipped);
        `knowledge`: the process's knowledge base (None: the review opens none of its own)."""

        # On a hub each incident resolves by its own host's unit rows (docs/fleet.md).
        local = cfg.fleet.host_id() if cfg.fleet.role == "hub" else None
        units = CollectorUnits(store.pool, cfg.intervals.metrics, local=local)
        incidents = IncidentService(cfg, store.incidents, units, on_resolved=on_resolved, supported=supported_actions)
        window = TriggerWindow.load(window_path(cfg), cfg.review.max_triggers)
        review = ReviewService(
            cfg,
            incidents=incidents.active,
            window=window,
            proposer=actions,
            sink=PgReviewSink(store.pool),
            state=PgState(cfg, store.pool, actions=actions, knowledge=knowledge, on_call=store.llm_calls),
            units=units,
            client=client,
            escalate=escalate,
            switches=SwitchStore(store.pool),
        )

        # Triggers reach the review's window (and its early-run check) once correlated,
        # so each window entry knows its incident.
        incidents.on_correlated = review.notify
        tap = TriggerTap(store.triggers, incidents.submit)
        return cls(incidents, review, tap)

    async def restore(self) -> None:
        """The live incidents of the last run (before `incidents.run()` and `review.run()` start)."""
        try:
            await self.incidents.start()
        except Exception as exc:  # database down at start: correlate what comes, restore later restarts
            log.warning("incidents: live incidents not restored (%s)", exc)

    async def aclose(self) -> None:
        try:
            self.review.window.save()
        except OSError as exc:
            log.warning("context window not saved (%s)", exc)
        await self.review.state.aclose()
