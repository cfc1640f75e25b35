"""What the handlers share: built by create_app, its parts filled in by compose/api.py's cleanup contexts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ai_sysadmin.api.auth import KeyRing
from ai_sysadmin.api.coalesce import Coalesced
from ai_sysadmin.api.errors import ApiError
from ai_sysadmin.api.limits import ConcurrencyLimiter
from ai_sysadmin.api.metrics import ApiMetrics, StoreSnapshot
from ai_sysadmin.api.upstream import Upstream
from ai_sysadmin.config import Config

AGENT_MODEL = "ai-sysadmin"


@dataclass
class ApiState:
    cfg: Config
    keyring: KeyRing
    limiter: ConcurrencyLimiter  # the model endpoints' per-key limit (the auth middleware holds it)
    metrics: ApiMetrics
    session: aiohttp.ClientSession | None = None
    upstreams: dict[str, Upstream] = field(default_factory=dict)  # role name -> upstream
    aliases: dict[str, str] = field(default_factory=dict)  # model id a client may send -> role name
    pool: Any = None  # psycopg_pool.AsyncConnectionPool
    snapshot: StoreSnapshot | None = None
    agent: Any = None  # ai_sysadmin.api.agent.Agent
    # /api/v1/status per `?host=` (None: every host), shared by concurrent callers (rest.status)
    status: dict[str | None, Coalesced[bytes]] = field(default_factory=dict)
    started: int = field(default_factory=lambda: int(time.time()))

    def role_for(self, model: str) -> Upstream:
        role = self.aliases.get(model)
        if role is None:
            known = ", ".join([AGENT_MODEL, *self.upstreams])
            raise ApiError(
                404, f"model {model!r} does not exist here; models: {known}", param="model", code="model_not_found"
            )
        return self.upstreams[role]

    def background_upstream(self) -> Upstream | None:
        name = self.cfg.api.background_role
        return self.upstreams.get(name) if name else None
