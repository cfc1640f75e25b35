"""The API's own log: one access line per request, one error line per failed one, a request id.

    access 2026-12-02T08:10:04.513Z rid=5f0c2a9e41d3 key=webui POST /v1/chat/completions model=meta status=200
           latency=0.734s tokens=412+37                                                      (one line)
    error 2026-12-02T08:10:04.513Z rid=5f0c2a9e41d3 key=webui POST /v1/chat/completions status=504 upstream_idle: ...

Every response carries the id as `X-Request-Id` (a client's own id is kept when it is a
short plain token), so the line in the log and what the user saw can be matched.  A
stream that ended with an error event after its 200 headers gets `stream_error=` on its
access line and an error line too: the status alone would say it went well.

Handlers add what only they know (the model label, token counts, a mid-stream error)
with `note(request, ...)`; nothing here reads a request body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)  # ai_sysadmin.api.requestlog

HEADER = "X-Request-Id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_NOTE = "ai_sysadmin.requestlog"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Entry:
    """What one request's log lines say, filled in while it runs."""

    rid: str
    model: str = "-"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None  # an error the client saw after 200 headers (an SSE error event)


def install(app: web.Application) -> None:
    """Outermost middleware (it sees the final status) and the header on every prepared response."""
    app.middlewares.insert(0, access_middleware)
    app.on_response_prepare.append(_add_header)


def entry(request: web.Request) -> Entry:
    found = request.get(_NOTE)
    if found is None:
        given = request.headers.get(HEADER, "")
        found = Entry(rid=given if _CLIENT_ID.match(given) else uuid.uuid4().hex[:16])
        request[_NOTE] = found
    return found


def note(
    request: web.Request, *, model: str | None = None, tokens: tuple[int, int] | None = None, error: str | None = None
) -> None:
    e = entry(request)
    if model is not None:
        e.model = model
    if tokens is not None:
        e.prompt_tokens, e.completion_tokens = tokens
    if error is not None:
        e.error = error


async def _add_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[HEADER] = entry(request).rid


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    e = entry(request)
    started = time.monotonic()
    status = 500
    message: str | None = None
    try:
        response = await handler(request)
        status = response.status
        if status >= 400:
            message = _error_message(response)
        return response
    except asyncio.CancelledError:
        status, message = 499, "the client closed the connection"
        raise
    except ConnectionError:
        status, message = 499, "the client closed the connection"
        raise
    except web.HTTPException as exc:
        status, message = exc.status, exc.reason
        raise
    except Exception as exc:
        message = f"unhandled {exc.__class__.__name__}"
        raise
    finally:
        _write(request, e, status, time.monotonic() - started, message)


def _write(request: web.Request, e: Entry, status: int, latency: float, message: str | None) -> None:
    key = request.get("actor") or "-"
    tokens = f"{e.prompt_tokens}+{e.completion_tokens}" if e.prompt_tokens is not None else "-"
    now = _utc()
    line = (
        f"access {now} rid={e.rid} key={key} {request.method} {request.path} model={e.model} status={status} "
        f"latency={latency:.3f}s tokens={tokens}"
    )
    if e.error is not None:
        line += " stream_error=yes"
    log.info("%s", line)
    if status >= 400 or e.error is not None:
        why = e.error if status < 400 and e.error is not None else (message or "-")
        log.warning(
            "error %s rid=%s key=%s %s %s status=%d %s",
            now,
            e.rid,
            key,
            request.method,
            request.path,
            status,
            " ".join(why.split())[:500],
        )


def _utc() -> str:
    # The line carries its own time: the local runner's log format has none (journald adds its own).
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _error_message(response: web.StreamResponse) -> str | None:
    """`code: message` of an OpenAI-shaped error body (every error this API returns has one)."""
    body = getattr(response, "body", None)
    if not isinstance(body, (bytes, bytearray)) or len(body) > 65536:
        return None
    try:
        err = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(err, dict):
        return None
    return f"{err.get('code') or err.get('type')}: {err.get('message')}"
