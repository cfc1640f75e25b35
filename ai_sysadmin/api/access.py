"""What each endpoint needs: the key scopes that may call it and which per-key limit it counts against.

The table is keyed by the *handler the router matched*, never by the path string, so
path tricks (`//api/v1/...`, a trailing slash, `%2F`, `..`) cannot reach a handler
with another endpoint's rules: whatever the router resolves, the rules of what it
resolved apply.  A request the router does not resolve (404, 405) needs no scope.

    app.router.add_post("/api/v1/actions/{id}/approve", rest.approve)
    table.set(rest.approve, APPROVE)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from ai_sysadmin.api.errors import Handler
from ai_sysadmin.apikeys import Scope


class Pool(Enum):
    """Which per-key concurrency limit a request counts against."""

    MODEL = "model"  # api.max_concurrent_per_key: slots of a model server
    REST = "rest"  # api.max_concurrent_rest_per_key: everything else


@dataclass(frozen=True)
class Access:
    scopes: frozenset[Scope]  # any one of these suffices; empty: any caller that passed authentication
    what: str  # for the 403 message: "approving or rejecting an action"
    pool: Pool | None = Pool.REST  # None: not limited (public endpoints, unrouted requests)
    public: bool = False  # no key needed at all (liveness, readiness)


PUBLIC = Access(frozenset(), "the health checks", pool=None, public=True)
READ = Access(frozenset({Scope.READ}), "reading status, incidents, actions and metrics")
MODELS = Access(frozenset({Scope.READ, Scope.CHAT}), "listing the models")
CHAT = Access(frozenset({Scope.CHAT}), "chat and embeddings", pool=Pool.MODEL)
APPROVE = Access(frozenset({Scope.APPROVE}), "approving or rejecting an action")
UNROUTED = Access(frozenset(), "this path", pool=None)


class AccessTable:
    """Handler -> Access, filled while the routes are added; read by the auth middleware."""

    def __init__(self) -> None:
        self._by_handler: dict[Handler, Access] = {}

    def set(self, handler: Handler, access: Access) -> None:
        self._by_handler[handler] = access

    def of(self, request: web.Request) -> Access:
        return self._by_handler.get(request.match_info.handler, UNROUTED)
