"""The changing state L2 puts in the context: metrics, policy, knowledge -- from the live
database, or from a replay's metric snapshot.  Every source tolerates failure: a part
that cannot be read is shown as unknown, never blocks a review."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import Config
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.llm.client import CallHook
from ai_sysadmin.store.knowledge import KnowledgeSearch
from ai_sysadmin.store.metrics import Sample

log = logging.getLogger(__name__)

# Metric series worth the review's tokens (per-process tops are the meta layer's business).
CONTEXT_METRICS = (
    "disk.used_percent",
    "disk.inodes_used_percent",
    "mem.percent",
    "swap.percent",
    "swap.pages_per_s",
    "psi.memory.some_avg10",
    "cpu.percent",
    "cpu.iowait_percent",
    "units.failed",
    "net.errors",
    "net.drops",
)


def threshold_state(cfg: Config, name: str, value: float) -> bool | None:
    t = cfg.thresholds
    limit = {
        "disk.used_percent": t.disk_percent,
        "disk.inodes_used_percent": t.inode_percent,
        "psi.memory.some_avg10": t.memory_pressure_avg10,
        "swap.pages_per_s": t.swap_pages_per_s,
        "units.failed": float(t.failed_units),
    }.get(name)
    return None if limit is None else value >= limit


class StateSource(Protocol):
    async def metrics(self, host: str | None = None) -> list[dict[str, Any]]:
        """The context's metric series of `host` (None: this host's)."""
        ...

    async def policy(self) -> dict[str, Any]: ...

    async def knowledge(self, text: str, k: int) -> list[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


class PolicyView(Protocol):
    """The policy's live state (actions.proposals.ActionService)."""

    async def policy_state(self) -> dict[str, Any]: ...


KB_RETRY = 600.0  # seconds between attempts to open the knowledge base while embed is down


class PgState:
    def __init__(
        self,
        cfg: Config,
        pool: AsyncConnectionPool,
        *,
        actions: PolicyView | None = None,
        knowledge: KnowledgeSearch | None = None,
        on_call: CallHook | None = None,
    ):
        self.cfg = cfg
        self.pool = pool
        self.actions = actions
        self.kb = knowledge  # opened lazily from the embed role when None
        self._on_call = on_call
        self._embed_client: LLMClient | None = None
        self._kb_failed_at: float | None = None
        # This host's own rows are the store's local host's (what its collector writes).
        self._local = cfg.fleet.host_id() if cfg.fleet.role == "hub" else None

    async def _knowledge_base(self) -> KnowledgeSearch | None:
        import time

        embed = self.cfg.roles.embed
        if self.kb is not None or embed is None or not embed.enable:
            return self.kb
        if self._kb_failed_at is not None and time.monotonic() - self._kb_failed_at < KB_RETRY:
            return None
        from ai_sysadmin.store.knowledge import KnowledgeBase

        try:
            self._embed_client = self._embed_client or LLMClient(embed, on_call=self._on_call)
            self.kb = await KnowledgeBase.open(self.cfg.knowledge, self._embed_client)
        except Exception as exc:
            log.info("review: knowledge base not available (%s); retrying in %.0fs", exc, KB_RETRY)
            self._kb_failed_at = time.monotonic()
        return self.kb

    async def aclose(self) -> None:
        if self._embed_client is not None:
            await self._embed_client.aclose()

    async def metrics(self, host: str | None = None) -> list[dict[str, Any]]:
        from ai_sysadmin.store.metrics import first_and_last

        asked = None if not host or host == self._local else host
        try:
            async with self.pool.connection() as conn:
                rows = await first_and_last(conn, CONTEXT_METRICS, asked)
        except Exception as exc:
            log.info("review: metrics unavailable for the context (%s)", exc)
            return []
        return [
            {
                "name": n,
                "subject": s,
                "last": float(last),
                "first": float(first),
                "over": threshold_state(self.cfg, n, float(last)),
            }
            for n, s, last, first in rows
        ]

    async def policy(self) -> dict[str, Any]:
        if self.actions is None:
            return {"autonomy_level": self.cfg.autonomy_level}
        try:
            return await self.actions.policy_state()
        except Exception as exc:
            return {"autonomy_level": self.cfg.autonomy_level, "unavailable": exc.__class__.__name__}

    async def knowledge(self, text: str, k: int) -> list[dict[str, Any]]:
        if k <= 0 or not text.strip():
            return []
        kb = await self._knowledge_base()
        if kb is None:
            return []
        try:
            hits = await kb.search(text, ["runbooks", "incidents"], k)
        except Exception as exc:  # embed server down: review without knowledge
            log.info("review: knowledge search failed (%s)", exc)
            return []
        return [
            {"collection": h.collection, "id": h.id, "title": h.metadata.get("title", ""), "snippet": h.snippet}
            for h in hits
        ]


class SnapshotState:
    """Replay: metrics from the snapshot file, the policy as configured, shipped runbooks by name."""

    def __init__(self, cfg: Config, samples: Sequence[Sample] = ()):
        self.cfg = cfg
        self.samples = list(samples)

    async def metrics(self, host: str | None = None) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "subject": s.subject,
                "last": s.value,
                "first": s.value,
                "over": threshold_state(self.cfg, s.name, s.value),
            }
            for s in self.samples
            if s.name in CONTEXT_METRICS
        ]

    async def policy(self) -> dict[str, Any]:
        return {"autonomy_level": self.cfg.autonomy_level}

    async def knowledge(self, text: str, k: int) -> list[dict[str, Any]]:
        return []

    async def aclose(self) -> None:
        return None  # nothing held
