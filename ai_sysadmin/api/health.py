"""/health (the process answers) and /health/ready (every upstream and the database)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ai_sysadmin.api.appkeys import STATE
from ai_sysadmin.api.state import ApiState

DB_TIMEOUT = 2.0


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    st: ApiState = request.app[STATE]
    names = list(st.upstreams)
    probes, db = await asyncio.gather(asyncio.gather(*(st.upstreams[n].probe() for n in names)), database(st))
    upstreams = {n: {"up": p["up"], "status": p["status"]} for n, p in zip(names, probes, strict=True)}
    ok = all(p["up"] for p in probes) and db["up"]
    body = {"status": "ready" if ok else "degraded", "upstreams": upstreams, "database": db}
    return web.json_response(body, status=200 if ok else 503)


async def database(st: ApiState) -> dict[str, Any]:
    if st.pool is None:
        return {"up": False, "status": "not configured"}
    try:
        async with st.pool.connection(timeout=DB_TIMEOUT) as conn:
            await conn.execute("SELECT 1")
        return {"up": True, "status": "ok"}
    except Exception as exc:
        return {"up": False, "status": f"unavailable ({exc.__class__.__name__})"}
