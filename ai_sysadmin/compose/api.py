"""The composition root of `ai-sysadmin api`: the application and its parts, as aiohttp cleanup contexts.

    app = build_app(cfg)       # create_app + the parts below, opened at startup, closed in reverse
    await serve(cfg)           # until SIGTERM/SIGINT

The parts, in order: the upstream HTTP session and one Upstream per enabled role; the
PostgreSQL pool; the store snapshot behind /metrics; the `ai-sysadmin` agent (its
accounting writer, its meta client, its investigator from compose/investigator.py);
the shared status round.  A part that fails to start closes the ones before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ai_sysadmin.api.app import RefuseToStart, create_app
from ai_sysadmin.api.appkeys import CONNECTIONS, STATE
from ai_sysadmin.api.connections import GuardedTCPSite, raise_open_files_limit
from ai_sysadmin.api.metrics import StoreSnapshot
from ai_sysadmin.api.state import AGENT_MODEL
from ai_sysadmin.api.upstream import Upstream, make_session
from ai_sysadmin.compose.signals import stop_on_signals
from ai_sysadmin.config import Config

log = logging.getLogger(__name__)

__all__ = ["RefuseToStart", "build_app", "serve"]


def build_app(cfg: Config, *, enable_agent: bool = True) -> web.Application:
    app = create_app(cfg)
    app.cleanup_ctx.extend([_upstreams, _pool, _snapshot, *([_agent] if enable_agent else []), _status_rounds])
    return app


async def _upstreams(app: web.Application) -> AsyncIterator[None]:
    st = app[STATE]
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
    try:
        yield
    finally:
        await st.session.close()


async def _pool(app: web.Application) -> AsyncIterator[None]:
    from ai_sysadmin.store.db import make_pool

    st = app[STATE]
    st.pool = make_pool(st.cfg.database, min_size=1, max_size=4, timeout=5.0)
    await st.pool.open(wait=False)  # a database that is down at start is the handlers' 503, not a crash
    try:
        yield
    finally:
        await st.pool.close()


async def _snapshot(app: web.Application) -> AsyncIterator[None]:
    st = app[STATE]
    cfg = st.cfg
    st.snapshot = StoreSnapshot(st.pool, cfg.spool.directory(cfg.state_dir), cfg.spool.max_bytes)
    st.metrics.registry.register(st.snapshot)
    try:
        yield
    finally:
        st.metrics.registry.unregister(st.snapshot)
        st.snapshot = None


async def _agent(app: web.Application) -> AsyncIterator[None]:
    from ai_sysadmin.api.agent import Agent

    st = app[STATE]
    async with contextlib.AsyncExitStack() as stack:
        agent = Agent(st, recorder=await _accounting(st, stack))
        try:
            agent.investigator = await _agent_investigator(st, agent, stack)
        except Exception as exc:  # a missing part leaves the model listed but answering 503
            agent.error = f"{exc.__class__.__name__}: {exc}"
            log.warning("the ai-sysadmin agent model is unavailable: %s", agent.error)
        st.agent = agent
        yield


async def _agent_investigator(st: Any, agent: Any, stack: contextlib.AsyncExitStack) -> Any:
    from ai_sysadmin.actions.proposals import ActionService
    from ai_sysadmin.compose.investigator import build_investigator
    from ai_sysadmin.llm import LLMClient

    cfg = st.cfg
    if not cfg.roles.meta.enable:
        raise RuntimeError("roles.meta is disabled")
    client = LLMClient(
        cfg.roles.meta,
        on_call=agent.on_call,
        idle_timeout=cfg.api.upstream_idle_timeout,
        idle_setting="api.upstream_idle_timeout",
    )
    stack.push_async_callback(client.aclose)
    return build_investigator(cfg, client=client, pool=st.pool, proposer=ActionService(cfg, st.pool))


async def _accounting(st: Any, stack: contextlib.AsyncExitStack) -> Any:
    """Record the agent's model calls in llm_calls like the service does (layer meta).

    The writer spools into the API's own state directory while PostgreSQL is away.
    Accounting is bookkeeping: if it cannot be set up the agent still answers."""
    try:
        from prometheus_client import CollectorRegistry

        from ai_sysadmin.store.lifecycle import build_store

        store = build_store(st.cfg, pool=st.pool, registry=CollectorRegistry())
        store.writer.start()
        stack.push_async_callback(store.writer.aclose)
        store.llm_calls.start()
        stack.push_async_callback(store.llm_calls.aclose)
        return store.llm_calls
    except Exception as exc:
        log.warning("agent model calls will not be recorded: %s", exc)
        return None


async def _status_rounds(app: web.Application) -> AsyncIterator[None]:
    """/api/v1/status's shared rounds (made on first use by rest.status) end with the app."""
    yield
    for shared in app[STATE].status.values():
        await shared.aclose()


async def serve(cfg: Config, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop`). A client disconnect cancels its handler."""
    before, after = raise_open_files_limit()
    if after != before:
        log.info("open-files limit raised from %d to %d", before, after)
    app = build_app(cfg)
    # handler_cancellation: a closed client connection cancels the handler, which closes
    # the upstream request -- the model server stops generating for nobody.
    # keepalive_timeout: idle keep-alive connections close after it (aiohttp's own timer).
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, keepalive_timeout=cfg.api.keepalive_timeout)
    try:
        await runner.setup()  # starts the cleanup contexts; one that fails closes those before it
        site = GuardedTCPSite(runner, cfg.api.host, cfg.api.port, guard=app[CONNECTIONS], reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise RefuseToStart(f"cannot listen on {cfg.api.host}:{cfg.api.port}: {exc.strerror or exc}") from None
        log.info(
            "API listening on http://%s:%d (auth %s, %d key(s))",
            cfg.api.host,
            cfg.api.port,
            "required" if cfg.api.require_auth else "optional",
            len(cfg.api.keys),
        )
        stop = stop_on_signals(stop)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await runner.cleanup()
