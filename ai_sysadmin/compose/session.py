"""The composition root of `ask` and `chat`: the parts one investigation needs, opened from the config.

    async with open_session(cfg) as session:
        await session.investigator.investigate(question)

Each part degrades on its own: PostgreSQL down -> nothing is stored and proposals are
refused (there is no action service), but the tools that read the host still run;
embedding model or ChromaDB down -> knowledge search ranks lexically or is absent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ai_sysadmin.compose.investigator import build_investigator
from ai_sysadmin.config import Config
from ai_sysadmin.llm import LLMClient

log = logging.getLogger(__name__)


@dataclass
class Session:
    cfg: Config
    investigator: Any  # meta.loop.Investigator
    client: LLMClient
    pool: Any = None
    kb: Any = None
    warnings: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def open_session(cfg: Config, *, db_timeout: float = 5.0) -> AsyncIterator[Session]:
    warnings: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        pool = await _open_pool(cfg, db_timeout, warnings)
        if pool is not None:
            stack.push_async_callback(pool.close)
        kb = await _open_kb(cfg, stack, warnings)
        proposer = None
        if pool is not None:
            from ai_sysadmin.actions.proposals import ActionService

            proposer = ActionService(cfg, pool)
        client = LLMClient(cfg.roles.meta)
        stack.push_async_callback(client.aclose)
        inv = build_investigator(cfg, client=client, pool=pool, proposer=proposer, knowledge=kb)
        yield Session(cfg=cfg, investigator=inv, client=client, pool=pool, kb=kb, warnings=warnings)


async def _open_pool(cfg: Config, timeout: float, warnings: list[str]) -> Any:
    from ai_sysadmin.store.db import make_pool

    pool = make_pool(cfg.database, max_size=2, timeout=timeout)
    try:
        await pool.open(wait=True, timeout=timeout)
    except Exception as exc:
        await pool.close()
        warnings.append(
            f"PostgreSQL unreachable ({str(exc).splitlines()[0][:160]}): the diagnosis is not stored "
            "and actions cannot be proposed"
        )
        return None
    return pool


async def _open_kb(cfg: Config, stack: contextlib.AsyncExitStack, warnings: list[str]) -> Any:
    """The knowledge base, opened now so that a failure is a warning before the first question."""
    embed = cfg.roles.embed
    if embed is None or not embed.enable:
        return None
    from ai_sysadmin.compose.knowledge import SharedKnowledge
    from ai_sysadmin.store.knowledge import KnowledgeUnavailable

    client = LLMClient(embed)
    stack.push_async_callback(client.aclose)
    knowledge = SharedKnowledge(cfg.knowledge, client)
    try:
        return await knowledge.open()
    except KnowledgeUnavailable as exc:
        warnings.append(f"knowledge base unavailable ({exc.__cause__ or exc})")
        return None
