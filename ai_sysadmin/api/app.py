"""The aiohttp application: `create_app(cfg, ...)` builds it, `serve(cfg)` runs it.

    app = create_app(cfg)                       # everything from the config
    app = create_app(cfg, pool=pool, agent=a)   # tests and the service pass their own parts

Middlewares, outermost first: errors (OpenAI shape for everything), auth (bearer keys,
the endpoint's scopes from api/access.py, then the caller's per-key slot).
Body size is bounded by aiohttp itself (`client_max_size` = api.max_body_bytes -> 413).
Connections are bounded by api/connections.py (header timeout, unauthenticated cap,
open-files limit) and aiohttp's keep-alive timeout (api.keepalive_timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from aiohttp import web

from ai_sysadmin.api import access, health, rest, v1
from ai_sysadmin.api.access import AccessTable, Pool
from ai_sysadmin.api.auth import KeyRing, auth_middleware_for
from ai_sysadmin.api.connections import ConnectionGuard, GuardedTCPSite, raise_open_files_limit
from ai_sysadmin.api.errors import error_middleware
from ai_sysadmin.api.limits import ConcurrencyLimiter
from ai_sysadmin.api.metrics import ApiMetrics, StoreSnapshot, render
from ai_sysadmin.api.requestlog import install as install_request_log
from ai_sysadmin.api.state import AGENT_MODEL, ApiState
from ai_sysadmin.api.upstream import Upstream, make_session
from ai_sysadmin.config import Config, is_loopback

log = logging.getLogger(__name__)


class RefuseToStart(Exception):
    """The server must not start with this configuration (one line for the CLI)."""


def check_exposure(cfg: Config) -> None:
    """Beyond loopback only with keys (config validation says so too; this is the last gate)."""
    if not is_loopback(cfg.api.host) and not cfg.api.keys:
        raise RefuseToStart(f"api.host {cfg.api.host} is not loopback and no API keys are configured; "
                            "set api.api_key_file (or listen on 127.0.0.1)")
    if cfg.api.require_auth and not cfg.api.keys:
        raise RefuseToStart("api.require_auth is set but api.api_key_file holds no key")


def create_app(cfg: Config, *, pool: Any = None, agent: Any = None, metrics: ApiMetrics | None = None,
               enable_agent: bool = True) -> web.Application:
    check_exposure(cfg)
    keyring = KeyRing(cfg.api.keys, required=bool(cfg.api.require_auth))  # settled to a bool by the config
    limiters = {Pool.MODEL: ConcurrencyLimiter(cfg.api.max_concurrent_per_key),
                Pool.REST: ConcurrencyLimiter(cfg.api.max_concurrent_rest_per_key, "api.max_concurrent_rest_per_key")}
    st = ApiState(cfg=cfg, keyring=keyring, limiter=limiters[Pool.MODEL],
                  metrics=metrics or ApiMetrics(), pool=pool, agent=agent)
    guard = ConnectionGuard(cfg.api.header_timeout, cfg.api.max_unauthenticated_connections,
                            on_close=lambda reason: st.metrics.connections_closed.labels(reason).inc())
    table = AccessTable()
    app = web.Application(middlewares=[error_middleware, auth_middleware_for(keyring, table, limiters, guard)],
                          client_max_size=cfg.api.max_body_bytes)
    install_request_log(app)  # outermost: access and error lines, X-Request-Id
    app["state"] = st
    app["keyring"] = keyring
    app["connections"] = guard
    app["max_body_bytes"] = cfg.api.max_body_bytes
    app["enable_agent"] = enable_agent
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
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    return app


async def metrics_page(request: web.Request) -> web.Response:
    st: ApiState = request.app["state"]
    if st.snapshot is not None:
        await st.snapshot.refresh()
    return web.Response(body=render(st.metrics.registry), headers={"Content-Type": "text/plain; version=0.0.4"})


async def _startup(app: web.Application) -> None:
    st: ApiState = app["state"]
    cfg = st.cfg
    st.session = make_session()
    for role in cfg.roles.enabled():
        read_timeout = cfg.api.upstream_timeout or role.timeout
        st.upstreams[role.name] = Upstream(role, st.session, read_timeout, cfg.api.upstream_idle_timeout)
    # Clients may name a role ("meta") or the id its server answers to (roles.meta.model).
    st.aliases = {name: name for name in st.upstreams}
    for name, up in st.upstreams.items():
        if up.role.model not in st.aliases and up.role.model != AGENT_MODEL:
            st.aliases[up.role.model] = name
    if st.pool is None:
        from ai_sysadmin.store.db import make_pool

        st.pool = make_pool(cfg.database, min_size=1, max_size=4, timeout=5.0)
        await st.pool.open(wait=False)
        st.owns_pool = True
    st.snapshot = StoreSnapshot(st.pool, cfg.spool.directory(cfg.state_dir), cfg.spool.max_bytes)
    st.metrics.registry.register(st.snapshot)
    if st.agent is None and app["enable_agent"]:
        from ai_sysadmin.api.agent import Agent

        st.agent = Agent(st)
    if st.agent is not None and hasattr(st.agent, "start"):
        await st.agent.start()


async def _cleanup(app: web.Application) -> None:
    st: ApiState = app["state"]
    if st.agent is not None and hasattr(st.agent, "aclose"):
        await st.agent.aclose()
    if st.status is not None:
        await st.status.aclose()
    if st.snapshot is not None:
        st.metrics.registry.unregister(st.snapshot)
        st.snapshot = None
    if st.session is not None:
        await st.session.close()
    if st.owns_pool and st.pool is not None:
        await st.pool.close()


async def serve(cfg: Config, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop`). A client disconnect cancels its handler."""
    before, after = raise_open_files_limit()
    if after != before:
        log.info("open-files limit raised from %d to %d", before, after)
    app = create_app(cfg)
    # handler_cancellation: a closed client connection cancels the handler, which closes
    # the upstream request -- the model server stops generating for nobody.
    # keepalive_timeout: idle keep-alive connections close after it (aiohttp's own timer).
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                           keepalive_timeout=cfg.api.keepalive_timeout)
    await runner.setup()
    site = GuardedTCPSite(runner, cfg.api.host, cfg.api.port, guard=app["connections"], reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise RefuseToStart(f"cannot listen on {cfg.api.host}:{cfg.api.port}: {exc.strerror or exc}") from None
    log.info("API listening on http://%s:%d (auth %s, %d key(s))", cfg.api.host, cfg.api.port,
             "required" if cfg.api.require_auth else "optional", len(cfg.api.keys))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
