"""The process's one knowledge base, opened on first use through the process's one embed client.

    kb = SharedKnowledge(cfg.knowledge, clients.embed)
    await kb.search(...)          # the investigator, its knowledge tool, the review's context
    await kb.add_incident(...)    # the learner
    await kb.index_runbooks()     # the runbook indexer

Opening ChromaDB may be slow or fail; it is tried on first use, and after a failure not
again for `retry_after` seconds (a review or an investigation must not wait on it each
time).  While it cannot be opened every call raises KnowledgeUnavailable, which each
caller already treats as "go on without knowledge".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from ai_sysadmin.config import KnowledgeConfig
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.store.knowledge import (
    COLLECTIONS,
    Hit,
    KnowledgeBase,
    KnowledgeUnavailable,
)

RETRY_AFTER = 600.0  # seconds between attempts to open the knowledge base after a failure


class SharedKnowledge:
    def __init__(
        self,
        cfg: KnowledgeConfig,
        embedder: LLMClient,
        *,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._cfg = cfg
        self._embedder = embedder
        self._retry_after = retry_after
        self._clock = clock
        self._kb: KnowledgeBase | None = None
        self._failed: tuple[float, str] | None = None  # (when, why) of the last failed open
        self._opening = asyncio.Lock()

    async def open(self) -> KnowledgeBase:
        """The opened knowledge base; raises KnowledgeUnavailable."""
        async with self._opening:  # concurrent first uses open it once
            if self._kb is not None:
                return self._kb
            if self._failed is not None and self._clock() - self._failed[0] < self._retry_after:
                raise KnowledgeUnavailable(self._failed[1])
            try:
                self._kb = await KnowledgeBase.open(self._cfg, self._embedder)
            except Exception as exc:
                self._failed = (self._clock(), f"{exc.__class__.__name__}: {exc}")
                raise KnowledgeUnavailable(self._failed[1]) from exc
            return self._kb

    async def search(self, text: str, collections: Any = COLLECTIONS, k: int = 5, *, mode: str = "hybrid") -> list[Hit]:
        return await (await self.open()).search(text, collections, k, mode=mode)

    async def add_incident(
        self, incident_id: int, summary: str, diagnosis: str = "", resolution: str = "", outcome: str = ""
    ) -> None:
        await (await self.open()).add_incident(incident_id, summary, diagnosis, resolution, outcome)

    async def index_runbooks(self) -> tuple[int, int]:
        return await (await self.open()).index_runbooks()
