"""L4 as the service runs it: the escalation hook and the resolved-incident learner.

    meta = MetaHooks.build(cfg, investigator, knowledge, findings)   # compose/run.py
    ReviewStack.build(..., escalate=meta.escalate, on_resolved=meta.on_resolved)
    ...
    await meta.aclose()

The investigator, the knowledge base and the clients are the process's (built and closed
by its composition root); this only holds the two hooks and the escalations in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.meta.escalation import Escalator
from ai_sysadmin.meta.learning import Learner


@dataclass
class MetaHooks:
    escalator: Escalator
    learner: Learner

    @classmethod
    def build(cls, cfg: Config, investigator: Any, knowledge: Any, findings: Any) -> MetaHooks:
        """`knowledge`: the process's knowledge base (None without an embed role: nothing is learned)."""
        escalator = Escalator(investigator, debounce_seconds=cfg.meta.escalation_debounce_seconds, findings=findings)
        return cls(escalator=escalator, learner=Learner(knowledge, findings))

    async def escalate(self, incident_id: int, reason: str) -> None:
        await self.escalator.escalate(incident_id, reason)

    async def on_resolved(self, incident: dict[str, Any]) -> None:
        await self.learner.on_resolved(incident)

    async def aclose(self) -> None:
        """Cancel the investigations in flight."""
        await self.escalator.aclose()
