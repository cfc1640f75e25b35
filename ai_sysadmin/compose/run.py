"""The composition root of `ai-sysadmin run`: every part of the service, built once, closed in reverse.

    async with service_parts(cfg) as parts:        # the orchestrator runs parts.follower, ...
        ...

Owned here: the store (pool, spool, writer), one LLM client per role, one knowledge base
(through the one embed client), the action service (the one Proposer), the investigator,
the L4 hooks, incidents + review, L1's follower, the metrics collector (on a fleet member
also writing to the hub) and the switch watch.
A failure while building closes what was already opened (the pool included).

`escalate`/`on_resolved` replace the L4 hooks (tests record escalations instead of
investigating).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ai_sysadmin.actions.policy import is_protected
from ai_sysadmin.actions.proposals import ActionService
from ai_sysadmin.collect.collector import MetricsCollector
from ai_sysadmin.compose.clients import RoleClients, service_clients
from ai_sysadmin.compose.investigator import escalation_investigator
from ai_sysadmin.compose.knowledge import SharedKnowledge
from ai_sysadmin.compose.member import hub_metrics
from ai_sysadmin.config import Config
from ai_sysadmin.incidents.switches import SwitchWatch
from ai_sysadmin.meta.findings import MetaFindings
from ai_sysadmin.meta.hooks import MetaHooks
from ai_sysadmin.review.stack import ReviewStack
from ai_sysadmin.store.lifecycle import Store, open_store
from ai_sysadmin.store.switches import SwitchStore
from ai_sysadmin.trigger.classifier import StructuredModel
from ai_sysadmin.trigger.follower import TriggerFollower, journal_source
from ai_sysadmin.trigger.hub import HubL1, MemberFollower
from ai_sysadmin.trigger.sink import TriggerSink

log = logging.getLogger(__name__)


@dataclass
class ServiceParts:
    cfg: Config
    store: Store
    clients: RoleClients
    knowledge: SharedKnowledge | None  # None: no embed role
    actions: ActionService
    meta: MetaHooks
    review: ReviewStack
    follower: TriggerFollower | HubL1  # a hub's L1 also follows every member's journal
    collector: MetricsCollector
    switches: SwitchWatch


@contextlib.asynccontextmanager
async def service_parts(cfg: Config, *, escalate: Any = None, on_resolved: Any = None) -> AsyncIterator[ServiceParts]:
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(cfg)
        stack.push_async_callback(store.close)
        await apply_grants(cfg, store)
        clients = await stack.enter_async_context(service_clients(cfg, on_call=store.llm_calls))
        knowledge = SharedKnowledge(cfg.knowledge, clients.embed) if clients.embed is not None else None
        # The one Proposer of the service: the review and meta layers propose through it.
        actions = ActionService(cfg, store.pool)
        findings = MetaFindings(store.pool)
        # On a hub each escalated incident is investigated with its own host's facts (docs/fleet.md).
        investigator = escalation_investigator(
            cfg, client=clients.meta, pool=store.pool, proposer=actions, knowledge=knowledge, findings=findings
        )
        # L4: the review's escalations start investigations; resolved incidents are learned.
        meta = MetaHooks.build(cfg, investigator, knowledge, findings)
        stack.push_async_callback(meta.aclose)
        # Incidents and the review listen to every recorded trigger through this sink.
        review = ReviewStack.build(
            cfg,
            store,
            actions,
            client=clients.review,
            knowledge=knowledge,
            escalate=escalate or meta.escalate,
            on_resolved=on_resolved or meta.on_resolved,
        )
        stack.push_async_callback(review.aclose)
        # Every host's triggers reach the incidents: the correlator links one host's triggers
        # only, and an action carries its incident's host, so a member's fault is that
        # member's incident and its actions run on that member's executor (docs/fleet.md).
        follower = l1(cfg, review.tap, clients.trigger)
        # A fleet member also writes its readings to the hub's database (compose/member.py).
        hub = hub_metrics(cfg)
        if hub is not None:
            stack.push_async_callback(hub.aclose)
        collector = MetricsCollector(cfg, store.metrics, review.tap, mirrors=(hub,) if hub else ())
        yield ServiceParts(
            cfg=cfg,
            store=store,
            clients=clients,
            knowledge=knowledge,
            actions=actions,
            meta=meta,
            review=review,
            follower=follower,
            collector=collector,
            switches=switch_watch(cfg, store),
        )


def l1(
    cfg: Config, sink: TriggerSink, model: StructuredModel | None, *, member_sink: TriggerSink | None = None
) -> TriggerFollower | HubL1:
    """L1: this host's journal into `sink`; on a hub also one pipeline per member host into
    `member_sink` (default: `sink`) (docs/fleet.md)."""
    hub = cfg.fleet.role == "hub"
    own = TriggerFollower(
        cfg.trigger,
        journal_source(cfg),
        sink,
        state_dir=cfg.state_dir,
        model=model,
        poll_interval=cfg.trigger.poll_interval,
        # On a hub a trigger's host decides its incident's and actions' host: the hub's own
        # lines are the hub's fleet id, whatever `_HOSTNAME` says (its executor runs that id's actions).
        host=cfg.fleet.host_id() if hub else None,
    )
    if not hub:
        return own
    if cfg.fleet.journal_dir is None:
        log.warning("fleet.role is hub but fleet.journal_dir is not set: the members' journals are not read")
        return own
    members = MemberFollower(
        cfg.trigger,
        cfg.fleet.journal_dir,
        member_sink if member_sink is not None else sink,
        state_dir=cfg.state_dir,
        model=model,
        own_host=cfg.fleet.host_id(),
        members=cfg.fleet.members,
        poll_interval=cfg.trigger.poll_interval,
    )
    return HubL1(own, members)


def switch_watch(cfg: Config, store: Store) -> SwitchWatch:
    """The watch after a switch (docs/preflight.md): records switches, attributes failures to them."""
    protected = cfg.protected_units
    return SwitchWatch(cfg, SwitchStore(store.pool), is_protected=lambda u: is_protected(u, protected))


async def apply_grants(cfg: Config, store: Store) -> None:
    """GRANT the executor's and the API's roles their privileges (idempotent; after migrating)."""
    db = cfg.database
    if not (db.executor_role or db.api_role):
        return
    from ai_sysadmin.store.grants import apply_grants as grant

    try:
        granted = await grant(store.pool, db)
        log.info("database grants applied: %s", ", ".join(f"{r} ({len(g)})" for r, g in granted.items()) or "none")
    except Exception as exc:  # database down at start: the next start applies them
        log.warning("database grants not applied: %s", exc)
