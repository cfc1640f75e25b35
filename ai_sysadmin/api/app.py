"""The aiohttp application: `create_app(cfg)` builds its routes, middlewares and shared state.

    app = create_app(cfg)          # handlers and state only
    app = build_app(cfg)           # compose/api.py: plus its parts (upstreams, pool, agent) as cleanup contexts

Middlewares, outermost first: errors (OpenAI shape for everything), auth (bearer keys,
the endpoint's scopes from api/access.py, then the caller's per-key slot).
Body size is bounded by aiohttp itself (`client_max_size` = api.max_body_bytes -> 413).
Connections are bounded by api/connections.py (header timeout, unauthenticated cap,
open-files limit) and aiohttp's keep-alive timeout (api.keepalive_timeout).
"""

from __future__ import annotations

import logging

from aiohttp import web

from ai_sysadmin.api import access, health, rest, v1
from ai_sysadmin.api.access import AccessTable, Pool
from ai_sysadmin.api.appkeys import CONNECTIONS, KEYRING, MAX_BODY_BYTES, STATE
from ai_sysadmin.api.auth import KeyRing, auth_middleware_for
from ai_sysadmin.api.connections import ConnectionGuard
from ai_sysadmin.api.errors import error_middleware
from ai_sysadmin.api.limits import ConcurrencyLimiter
from ai_sysadmin.api.metrics import ApiMetrics, render
from ai_sysadmin.api.requestlog import install as install_request_log
from ai_sysadmin.api.state import ApiState
from ai_sysadmin.config import Config, is_loopback

log = logging.getLogger(__name__)


class RefuseToStart(Exception):
    """The server must not start with this configuration (one line for the CLI)."""


def check_exposure(cfg: Config) -> None:
    """Beyond loopback only with keys (config validation says so too; this is the last gate)."""
    if not is_loopback(cfg.api.host) and not cfg.api.keys:
        raise RefuseToStart(
            f"api.host {cfg.api.host} is not loopback and no API keys are configured; "
            "set api.api_key_file (or listen on 127.0.0.1)"
        )
    if cfg.api.require_auth and not cfg.api.keys:
        raise RefuseToStart("api.require_auth is set but api.api_key_file holds no key")


def create_app(cfg: Config, *, metrics: ApiMetrics | None = None) -> web.Application:
    check_exposure(cfg)
    keyring = KeyRing(cfg.api.keys, required=bool(cfg.api.require_auth))  # settled to a bool by the config
    limiters = {
        Pool.MODEL: ConcurrencyLimiter(cfg.api.max_concurrent_per_key),
        Pool.REST: ConcurrencyLimiter(cfg.api.max_concurrent_rest_per_key, "api.max_concurrent_rest_per_key"),
    }
    st = ApiState(cfg=cfg, keyring=keyring, limiter=limiters[Pool.MODEL], metrics=metrics or ApiMetrics())
    guard = ConnectionGuard(
        cfg.api.header_timeout,
        cfg.api.max_unauthenticated_connections,
        on_close=lambda reason: st.metrics.connections_closed.labels(reason).inc(),
    )
    table = AccessTable()
    app = web.Application(
        middlewares=[error_middleware, auth_middleware_for(keyring, table, limiters, guard)],
        client_max_size=cfg.api.max_body_bytes,
    )
    install_request_log(app)  # outermost: access and error lines, X-Request-Id
    app[STATE] = st
    app[KEYRING] = keyring
    app[CONNECTIONS] = guard
    app[MAX_BODY_BYTES] = cfg.api.max_body_bytes
    # (method, path, handler, who may call it: api/access.py)
    routes = (
        ("GET", "/health", health.health, access.PUBLIC),
        ("GET", "/health/ready", health.ready, access.PUBLIC),
        ("GET", "/metrics", metrics_page, access.READ),
        ("GET", "/v1/models", v1.list_models, access.MODELS),
        ("POST", "/v1/chat/completions", v1.chat_completions, access.CHAT),
        ("POST", "/v1/embeddings", v1.embeddings, access.CHAT),
        ("GET", "/api/v1/status", rest.status, access.READ),
        ("GET", "/api/v1/incidents", rest.incidents, access.READ),
        ("GET", "/api/v1/incidents/{id}", rest.incident, access.READ),
        ("GET", "/api/v1/actions", rest.actions, access.READ),
        ("GET", "/api/v1/actions/{id}", rest.action, access.READ),
        ("POST", "/api/v1/actions/{id}/approve", rest.approve, access.APPROVE),
        ("POST", "/api/v1/actions/{id}/reject", rest.reject, access.APPROVE),
    )
    for method, path, handler, rule in routes:
        if method == "GET":
            app.router.add_get(path, handler)  # and HEAD, with the same handler and rules
        else:
            app.router.add_route(method, path, handler)
        table.set(handler, rule)
    return app


async def metrics_page(request: web.Request) -> web.Response:
    st = request.app[STATE]
    if st.snapshot is not None:
        await st.snapshot.refresh()
    return web.Response(body=render(st.metrics.registry), headers={"Content-Type": "text/plain; version=0.0.4"})
