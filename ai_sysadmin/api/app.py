"""The aiohttp application: `create_app(cfg, ...)` builds it, `serve(cfg)` runs it.

    app = create_app(cfg)                       # everything from the config
    app = create_app(cfg, pool=pool, agent=a)   # tests and the service pass their own parts

Middlewares, outermost first: errors (OpenAI shape for everything), auth (bearer keys).
Body size is bounded by aiohttp itself (`client_max_size` = api.max_body_bytes -> 413).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web

from ai_sysadmin.api import health, rest, v1
from ai_sysadmin.api.auth import KeyRing, auth_middleware_for
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
    keyring = KeyRing(cfg.api.keys, required=cfg.api.require_auth)
    st = ApiState(cfg=cfg, keyring=keyring, limiter=ConcurrencyLimiter(cfg.api.max_concurrent_per_key),
                  metrics=metrics or ApiMetrics(), pool=pool, agent=agent)
    app = web.Application(middlewares=[error_middleware, auth_middleware_for(keyring)],
                          client_max_size=cfg.api.max_body_bytes)
    install_request_log(app)  # outermost: access and error lines, X-Request-Id
    app["state"] = st
    app["keyring"] = keyring
    app["max_body_bytes"] = cfg.api.max_body_bytes
    app["enable_agent"] = enable_agent
    app.router.add_get("/health", health.health)
    app.router.add_get("/health/ready", health.ready)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/v1/models", v1.list_models)
    app.router.add_post("/v1/chat/completions", v1.chat_completions)
    app.router.add_post("/v1/embeddings", v1.embeddings)
    app.router.add_get("/api/v1/status", rest.status)
    app.router.add_get("/api/v1/incidents", rest.incidents)
    app.router.add_get("/api/v1/incidents/{id}", rest.incident)
    app.router.add_get("/api/v1/actions", rest.actions)
    app.router.add_get("/api/v1/actions/{id}", rest.action)
    app.router.add_post("/api/v1/actions/{id}/approve", rest.approve)
    app.router.add_post("/api/v1/actions/{id}/reject", rest.reject)
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
    if st.snapshot is not None:
        st.metrics.registry.unregister(st.snapshot)
        st.snapshot = None
    if st.session is not None:
        await st.session.close()
    if st.owns_pool and st.pool is not None:
        await st.pool.close()


async def serve(cfg: Config, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop`). A client disconnect cancels its handler."""
    app = create_app(cfg)
    # handler_cancellation: a closed client connection cancels the handler, which closes
    # the upstream request -- the model server stops generating for nobody.
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.api.host, cfg.api.port, reuse_address=True)
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
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
