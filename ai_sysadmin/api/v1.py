"""OpenAI endpoints: /v1/models, /v1/chat/completions, /v1/embeddings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from ai_sysadmin.api import requestlog, shaping
from ai_sysadmin.api.appkeys import STATE
from ai_sysadmin.api.background import background_task
from ai_sysadmin.api.errors import ApiError, bad_field
from ai_sysadmin.api.relay import relay
from ai_sysadmin.api.state import AGENT_MODEL, ApiState
from ai_sysadmin.api.validate import check_chat, check_embeddings, decode_object, model_name, wants_stream

EMBED_ROLE = "embed"


def state_of(request: web.Request) -> ApiState:
    return request.app[STATE]


async def list_models(request: web.Request) -> web.Response:
    st = state_of(request)
    names = list(st.upstreams)
    probes = await asyncio.gather(*(st.upstreams[n].probe() for n in names))
    by_role = dict(zip(names, probes, strict=True))
    meta = by_role.get("meta", {"up": False, "status": "not configured"})
    agent_error = getattr(st.agent, "error", None) if st.agent is not None else "not enabled"
    data = [
        {
            "id": AGENT_MODEL,
            "object": "model",
            "created": st.started,
            "owned_by": "ai-sysadmin",
            "up": bool(meta.get("up")) and agent_error is None,
            "ai_sysadmin": {
                "kind": "agent",
                "backed_by": "meta",
                "status": meta.get("status") if agent_error is None else f"unavailable: {agent_error}",
            },
        }
    ]
    for name in names:
        p = by_role[name]
        role = st.upstreams[name].role
        data.append(
            {
                "id": name,
                "object": "model",
                "created": st.started,
                "owned_by": p.get("owned_by") or "llama-server",
                "up": bool(p.get("up")),
                "ai_sysadmin": {
                    "kind": "embedding" if name == EMBED_ROLE else "role",
                    "status": p.get("status"),
                    "upstream_model": role.model,
                    "served": p.get("served"),
                    "context_size": (p.get("meta") or {}).get("n_ctx"),
                },
            }
        )
    return web.json_response({"object": "list", "data": data})


class _Outcome:
    """What one request's metrics record: the model label and the status (499: the client left)."""

    __slots__ = ("code", "model", "started")

    def __init__(self) -> None:
        self.model = "unknown"
        self.code = 500
        self.started = time.monotonic()


@contextmanager
def _accounted(st: ApiState, endpoint: str) -> Iterator[_Outcome]:
    out = _Outcome()
    try:
        yield out
    except ApiError as exc:
        out.code = exc.status
        raise
    except asyncio.CancelledError:
        out.code = 499  # client closed the connection (nginx's convention)
        raise
    finally:
        st.metrics.requests.labels(endpoint, out.model, str(out.code)).inc()
        st.metrics.latency.labels(endpoint, out.model).observe(time.monotonic() - out.started)


async def _read(request: web.Request, st: ApiState, out: _Outcome) -> tuple[bytes, dict, str]:
    """The body, decoded, and the model it names (labelled on `out` for the metrics)."""
    body = await request.read()
    data = decode_object(body)
    requested = model_name(data)
    out.model = _label(st, requested)
    return body, data, requested


async def chat_completions(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    with _accounted(st, "chat") as out:
        body, data, requested = await _read(request, st, out)
        model, started = out.model, out.started
        check_chat(data)
        is_agent = requested == AGENT_MODEL
        upstream = None if is_agent else st.role_for(requested)
        if upstream is not None and upstream.name == EMBED_ROLE:
            raise bad_field("model", f"{requested!r} is the embedding model; use /v1/embeddings")
        # (the per-key limit was taken by the auth middleware, before the body was read)
        st.metrics.in_flight.labels(model).inc()
        try:
            task = background_task(data)
            cheap = st.background_upstream() if task else None
            if cheap is not None and (is_agent or upstream is None or upstream.name != cheap.name):
                # Title/tag generation: never the meta model's slot, never an investigation.
                st.metrics.background.labels(task).inc()
                fallback = upstream if upstream is not None else st.upstreams.get("meta")
                try:
                    resp = await _relay_chat(request, st, cheap, data, body, model, started)
                except ApiError as exc:
                    if exc.status != 503 or fallback is None:
                        raise
                    # The cheap role is down: a title from the selected model beats none.
                    resp = await _relay_chat(request, st, fallback, data, body, model, started)
            elif is_agent:
                if st.agent is None:
                    raise ApiError(
                        503, "the ai-sysadmin agent is not available in this server", code="agent_unavailable"
                    )
                resp = await st.agent.complete(request, data, started)
            else:
                assert upstream is not None
                resp = await _relay_chat(request, st, upstream, data, body, model, started)
            out.code = resp.status
            return resp
        finally:
            st.metrics.in_flight.labels(model).dec()


async def _relay_chat(
    request: web.Request, st: ApiState, upstream, data: dict, body: bytes, model: str, started: float
) -> web.StreamResponse:
    # The server's own id, client tools, background caps, the slot size (api/shaping.py);
    # re-encoded at most once per request, never per chunk.
    requestlog.note(request, model=model)
    stream = wants_stream(data)
    body, progress = await shaping.prepare(st.cfg.api, upstream, data, body, stream)
    return await relay(
        request,
        upstream,
        "/v1/chat/completions",
        body,
        stream=stream,
        model=model,
        metrics=st.metrics,
        started=started,
        progress=progress,
    )


async def embeddings(request: web.Request) -> web.StreamResponse:
    st = state_of(request)
    with _accounted(st, "embeddings") as out:
        body, data, requested = await _read(request, st, out)
        upstream = st.role_for(requested) if requested != AGENT_MODEL else None
        if upstream is None or upstream.name != EMBED_ROLE:
            if EMBED_ROLE not in st.upstreams:
                raise ApiError(
                    404, "no embedding model is configured (roles.embed)", param="model", code="model_not_found"
                )
            raise bad_field("model", f"{requested!r} does not serve embeddings; use {EMBED_ROLE!r}")
        check_embeddings(data)
        # (the per-key limit was taken by the auth middleware, before the body was read)
        if data.get("model") != upstream.role.model:
            body = json.dumps({**data, "model": upstream.role.model}).encode()
        resp = await relay(
            request,
            upstream,
            "/v1/embeddings",
            body,
            stream=False,
            model=out.model,
            metrics=st.metrics,
            started=out.started,
        )
        out.code = resp.status
        return resp


def _label(st: ApiState, requested: str) -> str:
    """The metrics label: a known model id, never a client-chosen string (bounded cardinality)."""
    if requested == AGENT_MODEL:
        return AGENT_MODEL
    role = st.aliases.get(requested)
    return role if role is not None else "unknown"
