"""L4 as the service runs it: the escalation hook and the resolved-incident learner, from the config.

    meta = MetaLayer.build(cfg, store, actions)
    ReviewStack.build(..., escalate=meta.escalate, on_resolved=meta.on_resolved)
    ...
    await meta.aclose()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.meta.escalation import Escalator
from ai_sysadmin.meta.findings import MetaFindings
from ai_sysadmin.meta.learning import Learner

log = logging.getLogger(__name__)


@dataclass
class MetaLayer:
    escalator: Escalator
    learner: Learner
    clients: list[Any]

    @classmethod
    def build(cls, cfg: Config, store: Any, actions: Any) -> MetaLayer:
        from ai_sysadmin.llm import LLMClient
        from ai_sysadmin.meta.loop import Investigator
        from ai_sysadmin.meta.tools import build_toolset

        clients: list[Any] = []
        meta_client = LLMClient(cfg.roles.meta, on_call=store.llm_calls)
        clients.append(meta_client)
        embed_client = None
        if cfg.roles.embed is not None and cfg.roles.embed.enable:
            embed_client = LLMClient(cfg.roles.embed, on_call=store.llm_calls)
            clients.append(embed_client)
        findings = MetaFindings(store.pool)
        kb_holder: dict[str, Any] = {}

        async def open_kb() -> Any:
            if embed_client is None:
                return None
            if "kb" not in kb_holder:
                from ai_sysadmin.store.knowledge import KnowledgeBase

                kb_holder["kb"] = await KnowledgeBase.open(cfg.knowledge, embed_client)
            return kb_holder["kb"]

        tools = build_toolset(cfg, pool=store.pool, kb=None, proposer=actions)
        investigator = Investigator(cfg, meta_client, tools, actions, incident_store=findings)
        escalator = Escalator(_LazyKb(investigator, open_kb), debounce_seconds=cfg.meta.escalation_debounce_seconds,
                              findings=findings)
        return cls(escalator=escalator, learner=Learner(open_kb, findings), clients=clients)

    async def escalate(self, incident_id: int, reason: str) -> None:
        await self.escalator.escalate(incident_id, reason)

    async def on_resolved(self, incident: dict[str, Any]) -> None:
        await self.learner.on_resolved(incident)

    async def aclose(self) -> None:
        await self.escalator.aclose()
        for c in self.clients:
            try:
                await c.aclose()
            except Exception:
                log.debug("closing a meta client failed", exc_info=True)


class _LazyKb:
    """An Investigator whose knowledge base is opened on first use (ChromaDB may be slow to open)."""

    def __init__(self, investigator: Any, open_kb: Any):
        self._inv = investigator
        self._open_kb = open_kb

    async def investigate(self, question: str, **kw: Any) -> Any:
        if self._inv.kb is None:
            try:
                kb = await self._open_kb()
            except Exception as exc:
                log.warning("meta: knowledge base unavailable (%s); investigating without it", exc)
                kb = None
            if kb is not None:
                self._inv.kb = kb
                self._inv.tools.context.kb = kb
        return await self._inv.investigate(question, **kw)
