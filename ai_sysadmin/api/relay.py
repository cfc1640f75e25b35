"""The hot path: relay one request to a role's llama-server, bytes in, bytes out.

Streams are copied chunk by chunk as they arrive (`iter_any`), never parsed: only the
last two chunks are kept so the usage numbers can be read once at the end (before the
first answer event, llama-server's prompt-progress events are held back and dropped:
api/progress.py).  Silence of `api.upstream_idle_timeout` -- before the headers, between
chunks, or for a whole non-streamed answer -- makes the server's /health be asked
(llm/liveness.py): a stopped server keeps its connection open and would otherwise hold
the chat for the whole read timeout, while a prompt may take minutes to process.  A client
that disconnects cancels the handler (the runner uses `handler_cancellation`); the
`finally` then closes the upstream connection, which is how llama-server learns to
stop generating and free the slot.  An upstream that dies or stalls after the headers
were sent ends the stream with an OpenAI-shaped error event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time

import aiohttp
from aiohttp import web

from ai_sysadmin.api import requestlog
from ai_sysadmin.api.errors import ApiError, error_body, sse_error
from ai_sysadmin.api.metrics import ApiMetrics
from ai_sysadmin.api.progress import Gate
from ai_sysadmin.api.upstream import Upstream

log = logging.getLogger(__name__)

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_PROMPT = re.compile(rb'"prompt_tokens"\s*:\s*(\d+)')
_COMPLETION = re.compile(rb'"completion_tokens"\s*:\s*(\d+)')
_MAX_ERROR_BODY = 64 * 1024


async def relay(
    request: web.Request,
    upstream: Upstream,
    path: str,
    body: bytes,
    *,
    stream: bool,
    model: str,
    metrics: ApiMetrics,
    started: float,
    progress: bool = False,
) -> web.StreamResponse:
    """`progress`: the body asks for prompt-progress events (api/progress.py), which are held back."""
    requestlog.note(request, model=model)
    # Headers come when a slot takes the request (streams) or with the whole answer: silence
    # until then makes the server be probed, not waited on for the whole read timeout.
    try:
        resp = await upstream.watched(upstream.post(path, body))
    except ApiError as exc:
        if exc.code == "upstream_idle":
            metrics.upstream_errors.labels(upstream.name, "idle").inc()
        raise
    complete = False
    try:
        if resp.status != 200:
            raise await upstream_failure(upstream, resp, metrics)
        if not stream:
            payload = await _read_body(upstream, resp, metrics)
            complete = True
            metrics.tokens_from(model, usage_of(payload))
            requestlog.note(request, tokens=usage_of(payload))
            return web.Response(body=payload, status=200, content_type="application/json")
        out = web.StreamResponse(status=200, headers=SSE_HEADERS)
        await out.prepare(request)
        prev = last = b""
        answering = False
        gate = Gate() if progress else None
        chunks = resp.content.iter_any().__aiter__()
        while True:
            try:
                # Silence (a long prompt, another slot's prompt batch, or a stopped server) makes
                # the server's /health be asked; only a server that is gone ends the stream.
                chunk = await upstream.watched(chunks.__anext__(), answering)
            except StopAsyncIteration:
                complete = True
                break
            except ApiError as exc:  # silent and gone (upstream.watched)
                await _upstream_died(request, upstream, exc, out, last, metrics)
                break
            except (TimeoutError, aiohttp.ClientError) as exc:
                await _upstream_died(request, upstream, upstream.map_error(exc), out, last, metrics)
                break
            if not answering:
                began = True
                if gate is not None:
                    chunk, began = gate.feed(chunk)  # progress dropped; pings pass
                if began:
                    metrics.ttft.labels(model).observe(time.monotonic() - started)
                    answering = True
                if not chunk:
                    continue
            try:
                await out.write(chunk)
            except ConnectionError:
                # The client went away (without handler cancellation seeing it first): stop;
                # the finally below drops the upstream connection, which frees the slot.
                metrics.upstream_errors.labels(upstream.name, "client_gone").inc()
                return out
            prev, last = last, chunk
        if gate is not None and not answering and complete:
            last = gate.leftover()  # ended before any answer event (an error event): pass it on
            if last:
                await _write_quietly(out, last)
        metrics.tokens_from(model, usage_of(prev + last))
        requestlog.note(request, tokens=usage_of(prev + last))
        with contextlib.suppress(ConnectionError):
            await out.write_eof()
        return out
    finally:
        if complete and not stream:
            resp.release()
        else:
            # Incomplete: dropping the connection is how llama-server learns to stop generating
            # and free the slot.  Streams: llama-server closes the connection after an SSE
            # answer while still announcing keep-alive, so it must never go back to the pool.
            resp.close()


async def _write_quietly(out: web.StreamResponse, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        await out.write(data)


async def _upstream_died(
    request: web.Request,
    upstream: Upstream,
    err: BaseException,
    out: web.StreamResponse,
    last: bytes,
    metrics: ApiMetrics,
) -> None:
    """End a stream whose upstream failed after the headers were sent: one error event, then [DONE]."""
    message = err.message if isinstance(err, ApiError) else f"model server {upstream.name!r} failed"
    code = err.code if isinstance(err, ApiError) else "upstream_error"
    reason = {"upstream_timeout": "timeout", "upstream_idle": "idle"}.get(code or "", "died_mid_stream")
    metrics.upstream_errors.labels(upstream.name, reason).inc()
    log.warning("%s: stream ended by the model server: %s", upstream.name, message)
    requestlog.note(request, error=message)
    sep = b"" if not last or last.endswith(b"\n\n") else b"\n\n"
    with contextlib.suppress(ConnectionError):  # the client is gone too
        await out.write(sep + sse_error(message, "upstream_error", code) + b"data: [DONE]\n\n")


async def _read_body(upstream: Upstream, resp: aiohttp.ClientResponse, metrics: ApiMetrics) -> bytes:
    try:
        return await upstream.watched(resp.read())
    except ApiError:
        metrics.upstream_errors.labels(upstream.name, "idle").inc()
        raise
    except (TimeoutError, aiohttp.ClientError) as exc:
        err = upstream.map_error(exc)
        metrics.upstream_errors.labels(
            upstream.name, "timeout" if isinstance(err, ApiError) and err.status == 504 else "failed"
        ).inc()
        raise err from None


async def upstream_failure(upstream: Upstream, resp: aiohttp.ClientResponse, metrics: ApiMetrics) -> ApiError:
    """A non-200 upstream answer as an ApiError in OpenAI's shape (llama-server omits `param`)."""
    try:
        raw = await resp.content.read(_MAX_ERROR_BODY)
    except (TimeoutError, aiohttp.ClientError):
        raw = b""
    message, err_type, code = f"model server {upstream.name!r} answered HTTP {resp.status}", None, None
    try:
        data = json.loads(raw)
        err = data.get("error", data) if isinstance(data, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or message)[:2000]
            err_type = err.get("type") if isinstance(err.get("type"), str) else None
            code = err.get("code") if isinstance(err.get("code"), str) else None
    except ValueError:
        if raw:
            message = f"{message}: {raw[:200].decode('utf-8', 'replace')}"
    if resp.status == 503:
        metrics.upstream_errors.labels(upstream.name, "not_ready").inc()
        return ApiError(
            503,
            f"model server {upstream.name!r} is not ready: {message}",
            code="upstream_loading",
            headers={"Retry-After": "5"},
        )
    if resp.status >= 500 or resp.status < 400:
        metrics.upstream_errors.labels(upstream.name, f"http_{resp.status}").inc()
        return ApiError(
            502, f"model server {upstream.name!r} failed (HTTP {resp.status}): {message}", code="upstream_error"
        )
    # 4xx: the request itself was refused (context too long, bad grammar ...): the client's to fix.
    return ApiError(resp.status, message, type=err_type, code=code or "upstream_rejected")


def usage_of(tail: bytes) -> tuple[int, int] | None:
    """(prompt, completion) tokens from the last bytes of an answer, or None."""
    # The last of each: an answer's usage comes after anything that merely looks like it.
    prompts, completions = list(_PROMPT.finditer(tail)), list(_COMPLETION.finditer(tail))
    if not prompts or not completions:
        return None
    return int(prompts[-1].group(1)), int(completions[-1].group(1))


__all__ = ["error_body", "relay", "upstream_failure", "usage_of"]
