"""The role model servers as the API sees them: one aiohttp session, one `Upstream` per role.

Relaying uses aiohttp's client rather than the `openai` SDK on purpose: the SDK parses
every chunk into objects and the API must pass bytes through untouched.  Failures map
to the statuses clients expect:

* nothing listens (connection refused)          -> 503 at once (connect timeout 1 s by default);
* no byte within the read timeout               -> 504 (`api.upstream_timeout`, else the role's timeout);
* the server drops the connection mid-response  -> 502 before headers, an error event after.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from ai_sysadmin.api.errors import ApiError
from ai_sysadmin.config import RoleConfig

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 1.0  # health / props probes for /v1/models, /health/ready, status
WRITE_ATTEMPTS = 3  # sends of one request when the server drops the connection before answering


@dataclass
class Upstream:
    role: RoleConfig
    session: aiohttp.ClientSession
    read_timeout: float

    @property
    def name(self) -> str:
        return self.role.name

    def headers(self, content_type: bool = True) -> dict[str, str]:
        h = {"Content-Type": "application/json"} if content_type else {}
        if self.role.api_key is not None:
            h["Authorization"] = f"Bearer {self.role.api_key.reveal()}"
        return h

    def timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, connect=self.role.connect_timeout, sock_connect=self.role.connect_timeout,
                                     sock_read=self.read_timeout)

    async def post(self, path: str, body: bytes) -> aiohttp.ClientResponse:
        """Send `body` and return once the response headers arrived (the caller releases it)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return await self.session.post(f"{self.role.url}{path}", data=body, headers=self.headers(),
                                               timeout=self.timeout(), allow_redirects=False)
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
            return ApiError(503, f"model server {self.name!r} did not accept a connection within "
                                 f"{self.role.connect_timeout:g}s", code="upstream_unavailable",
                            headers={"Retry-After": "5"})
        if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
            return ApiError(504, f"model server {self.name!r} sent nothing within {self.read_timeout:g}s",
                            code="upstream_timeout")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ApiError(503, f"model server {self.name!r} is not reachable at {self.role.url}: "
                                 f"{exc.os_error.strerror if exc.os_error and exc.os_error.strerror else exc}",
                            code="upstream_unavailable", headers={"Retry-After": "5"})
        if isinstance(exc, aiohttp.ClientError):
            return ApiError(502, f"model server {self.name!r} failed: {_short(exc)}", code="upstream_error")
        return exc

    async def get_json(self, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, Any]:
        """(status, decoded JSON or None); status 0 when nothing answers."""
        try:
            async with self.session.get(f"{self.role.url}{path}", headers=self.headers(False),
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                try:
                    return r.status, await r.json(content_type=None)
                except ValueError:
                    return r.status, None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.debug("%s %s: %s", self.name, path, exc)
            return 0, None

    async def get_text(self, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, str]:
        try:
            async with self.session.get(f"{self.role.url}{path}", headers=self.headers(False),
                                        timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                return r.status, await r.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.debug("%s %s: %s", self.name, path, exc)
            return 0, ""

    async def probe(self) -> dict[str, Any]:
        """Is the server up (its /v1/models answers), and what does it serve."""
        status, body = await self.get_json("/v1/models")
        if status == 200 and isinstance(body, dict):
            data = body.get("data") or []
            first = data[0] if data and isinstance(data[0], dict) else {}
            return {"up": True, "status": "ok", "served": first.get("id"), "owned_by": first.get("owned_by"),
                    "meta": first.get("meta") if isinstance(first.get("meta"), dict) else {}}
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
