"""One LLM client per role, owned by the process's composition root (closed with it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.llm import LLMClient


@dataclass(frozen=True)
class RoleClients:
    """The clients of one process; None: the role is not used there (disabled or not configured)."""

    trigger: LLMClient | None = None  # L1's classifier (only with trigger.model)
    review: LLMClient | None = None
    meta: LLMClient | None = None
    embed: LLMClient | None = None


@contextlib.asynccontextmanager
async def service_clients(cfg: Config, *, on_call: Any) -> AsyncIterator[RoleClients]:
    """The clients of `ai-sysadmin run`, every call accounted through `on_call`.

    The meta client exists even with roles.meta disabled: an escalation then ends as a
    failed investigation, recorded, as it always has."""
    async with contextlib.AsyncExitStack() as stack:

        def client(role: Any) -> LLMClient:
            made = LLMClient(role, on_call=on_call)
            stack.push_async_callback(made.aclose)
            return made

        embed = cfg.roles.embed
        yield RoleClients(
            trigger=client(cfg.roles.trigger) if cfg.trigger.model and cfg.roles.trigger.enable else None,
            review=client(cfg.roles.review) if cfg.roles.review.enable else None,
            meta=client(cfg.roles.meta),
            embed=client(embed) if embed is not None and embed.enable else None,
        )
