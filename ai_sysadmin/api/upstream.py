"""The role model servers as the API sees them: one aiohttp session, one `Upstream` per role.

Relaying uses aiohttp's client rather than the `openai` SDK on purpose: the SDK parses
every chunk into objects and the API must pass bytes through untouched.  Failures map
to the statuses clients expect:

* nothing listens (connection refused)          -> 503 at once (connect timeout 1 s by default);
* no byte within the read timeout               -> 504 (`api.upstream_timeout`, else the role's timeout);
* silent for `api.upstream_idle_timeout` (waiting for headers, between prompt-progress events
  or tokens, for a whole non-streamed answer) -> its /health is asked; no answer -> 504 before
  the headers, an error event naming the role after (llm/liveness.py).  A stopped server
  keeps its connection open for minutes; a working one may pause a stream for a whole
  batch of another slot's prompt;
* the server drops the connection mid-response  -> 502 before headers, an error event after.

Messages are plain words for the person in the chat window; the library's own exception
text (aiohttp's "Response payload is not completed: <TransferEncodingError ...>") goes
to the log only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from ai_sysadmin.api.errors import ApiError
from ai_sysadmin.config import RoleConfig
from ai_sysadmin.llm import liveness

T = TypeVar("T")

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 1.0  # health / props probes for /v1/models, /health/ready, status
WRITE_ATTEMPTS = 3  # sends of one request when the server drops the connection before answering


@dataclass
class Upstream:
    role: RoleConfig
    session: aiohttp.ClientSession
    read_timeout: float
    idle_timeout: float = 30.0  # silence before /health is asked (api.upstream_idle_timeout); llm/liveness.py
    slot_tokens: int | None = None  # the served context per slot, from /props (asked once, see slot_size)

    @property
    def name(self) -> str:
        return self.role.name

    def headers(self, content_type: bool = True) -> dict[str, str]:
        h = {"Content-Type": "application/json"} if content_type else {}
        if self.role.api_key is not None:
            h["Authorization"] = f"Bearer {self.role.api_key.reveal()}"
        return h

    def timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=None,
            connect=self.role.connect_timeout,
            sock_connect=self.role.connect_timeout,
            sock_read=self.read_timeout,
        )

    async def post(self, path: str, body: bytes) -> aiohttp.ClientResponse:
        """Send `body` and return once the response headers arrived (the caller releases it)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return await self.session.post(
                    f"{self.role.url}{path}",
                    data=body,
                    headers=self.headers(),
                    timeout=self.timeout(),
                    allow_redirects=False,
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # The server closed the connection before any response (a keep-alive connection
                # it had just dropped, or its HTTP queue was full): the request was not
                # processed, so trying again on a fresh connection is safe.  Refused is final.
                if attempt == WRITE_ATTEMPTS or isinstance(exc, aiohttp.ClientConnectorError):
                    raise self.map_error(exc) from None
                await asyncio.sleep(0.01 * attempt)
            except Exception as exc:
                raise self.map_error(exc) from None
        raise AssertionError("unreachable")

    def map_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ApiError) or not isinstance(exc, Exception):
            return exc
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return ApiError(
                503,
                f"model server {self.name!r} did not accept a connection within {self.role.connect_timeout:g}s",
                code="upstream_unavailable",
                headers={"Retry-After": "5"},
            )
        if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
            return ApiError(
                504, f"model server {self.name!r} sent nothing within {self.read_timeout:g}s", code="upstream_timeout"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ApiError(
                503,
                f"model server {self.name!r} is not reachable at {self.role.url}: "
                f"{exc.os_error.strerror if exc.os_error and exc.os_error.strerror else exc}",
                code="upstream_unavailable",
                headers={"Retry-After": "5"},
            )
        if isinstance(exc, aiohttp.ClientPayloadError):
            log.warning("%s: connection broken mid-answer: %s", self.name, _short(exc))
            return ApiError(
                502,
                f"model server {self.name!r} stopped mid-answer: it closed the connection "
                "before the answer was complete (stopped or crashed? see its log)",
                code="upstream_error",
            )
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            log.warning("%s: disconnected: %s", self.name, _short(exc))
            return ApiError(
                502,
                f"model server {self.name!r} closed the connection without answering (stopped or crashed? see its log)",
                code="upstream_error",
            )
        if isinstance(exc, aiohttp.ClientError):
            log.warning("%s: request failed: %s", self.name, _short(exc))
            return ApiError(
                502,
                f"model server {self.name!r} failed ({exc.__class__.__name__}); see the API log",
                code="upstream_error",
            )
        return exc

    @property
    def streams_progress(self) -> bool:
        """llama-server (its /props answered, see slot_size): it can send prompt-progress chunks."""
        return self.slot_tokens is not None

    async def watched(self, aw: Awaitable[T], answering: bool = False) -> T:
        """`aw` (headers, a body, a chunk), 504 once silence and a failed /health show the server
        gone (llm/liveness.py); `answering`: tokens were flowing, which the message says."""
        try:
            return await liveness.watched(aw, self.idle_timeout, self._alive)
        except liveness.Silent as exc:
            log.warning("%s: silent: %s", self.name, exc)
            what = "went silent mid-answer" if answering else "stopped answering"
            raise ApiError(
                504,
                f"model server {self.name!r} {what}: {exc} (api.upstream_idle_timeout); "
                "it may be stopped or crashed, see its log",
                code="upstream_idle",
            ) from None

    async def _alive(self) -> str | None:
        timeout = liveness.probe_timeout(self.idle_timeout)
        try:
            async with self.session.get(
                f"{self.role.url}/health", headers=self.headers(False), timeout=aiohttp.ClientTimeout(total=timeout)
            ) as r:
                return liveness.health_verdict(r.status, None, timeout)
        except TimeoutError:
            return liveness.health_verdict(None, None, timeout)
        except aiohttp.ClientError as exc:
            return liveness.health_verdict(None, _short(exc), timeout)

    async def slot_size(self) -> int | None:
        """Tokens one request may use on this server (`/props` n_ctx per slot), asked once; None if unknown."""
        if self.slot_tokens is None:
            status, props = await self.get_json("/props")
            settings = props.get("default_generation_settings") if isinstance(props, dict) else None
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            if status == 200 and isinstance(n_ctx, int) and n_ctx > 0:
                self.slot_tokens = n_ctx
        return self.slot_tokens

    async def post_json(self, path: str, payload: Any, timeout: float) -> tuple[int, Any]:
        """A small JSON request to a llama-server extra (/tokenize, /apply-template); (0, None) on failure."""
        return await self._json_request("POST", path, timeout, payload)

    async def get_json(self, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, Any]:
        """(status, decoded JSON or None); status 0 when nothing answers."""
        return await self._json_request("GET", path, timeout)

    async def _json_request(self, method: str, path: str, timeout: float, payload: Any = None) -> tuple[int, Any]:
        try:
            async with self.session.request(
                method,
                f"{self.role.url}{path}",
                json=payload,
                headers=self.headers(False),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as r:
                try:
                    return r.status, await r.json(content_type=None)
                except ValueError:
                    return r.status, None
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.debug("%s %s: %s", self.name, path, exc)
            return 0, None

    async def probe(self) -> dict[str, Any]:
        """Is the server up (its /v1/models answers), and what does it serve."""
        status, body = await self.get_json("/v1/models")
        if status == 200 and isinstance(body, dict):
            data = body.get("data") or []
            first = data[0] if data and isinstance(data[0], dict) else {}
            return {
                "up": True,
                "status": "ok",
                "served": first.get("id"),
                "owned_by": first.get("owned_by"),
                "meta": first.get("meta") if isinstance(first.get("meta"), dict) else {},
            }
        if status == 503:
            return {"up": False, "status": "loading"}
        return {"up": False, "status": "unavailable" if status == 0 else f"HTTP {status}"}


def make_session() -> aiohttp.ClientSession:
    # No connection cap: the per-key limiter and llama-server's slots bound concurrency.
    # auto_decompress off: bytes are relayed exactly as the model server sent them.
    # Idle connections are dropped after 3 s, before llama-server's own 5 s keep-alive timeout.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=3, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",))


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) < 160 else text[:157] + "..."
