"""Bearer keys: who is calling, compared in constant time.

The keys come from `api.api_key_file` (config.parse_api_keys: `name:key` lines or one
bare key named `api`).  Each presented token is compared against *every* key with
`hmac.compare_digest` over SHA-256 digests, so neither the position of a matching key
nor the length of a key shows in the response time.

Without keys (loopback only; config refuses anything else) model and read endpoints
are open; approving or rejecting an action always needs a key, because the key's name
is the actor the audit trail records.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Iterable

from aiohttp import web

from ai_sysadmin.api.errors import ApiError, Handler
from ai_sysadmin.config import ApiKey

PUBLIC_PATHS = frozenset({"/health", "/health/ready"})
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class _Entry:
    name: str
    digest: bytes


class KeyRing:
    def __init__(self, keys: Iterable[ApiKey], *, required: bool):
        self._entries = tuple(_Entry(k.name, _digest(k.key.reveal())) for k in keys)
        self.required = required

    def __bool__(self) -> bool:
        return bool(self._entries)

    def match(self, token: str) -> str | None:
        """The key's name, or None; the time taken does not depend on which key matched."""
        presented = _digest(token)
        found: str | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry.name
        return found

    def identify(self, request: web.Request) -> str | None:
        """The caller's key name; None for no (or no valid) key. Raises 401 for a bad key."""
        header = request.headers.get("Authorization")
        if header is None or not self._entries:
            # Without configured keys any presented token is ignored: clients such as
            # Open WebUI always send one, even to an open loopback endpoint.
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "the Authorization header must be `Bearer <key>`", code="invalid_authorization",
                           headers={"WWW-Authenticate": 'Bearer realm="ai-sysadmin"'})
        name = self.match(token)
        if name is None:
            raise ApiError(401, "invalid API key", code="invalid_api_key",
                           headers={"WWW-Authenticate": 'Bearer realm="ai-sysadmin"'})
        return name


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def actor(request: web.Request) -> str | None:
    """The authenticated key name of this request (None: no key was presented)."""
    return request.get("actor")


def require_key(request: web.Request, what: str) -> str:
    """The key name, or 401: used where an actor must be recorded (approve, reject)."""
    name = actor(request)
    if name is None:
        ring: KeyRing = request.app["keyring"]
        hint = "" if ring else " (none is configured: set api.api_key_file)"
        raise ApiError(401, f"{what} needs an API key{hint}", code="api_key_required",
                       headers={"WWW-Authenticate": 'Bearer realm="ai-sysadmin"'})
    return name


def auth_middleware_for(ring: KeyRing):
    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        name = ring.identify(request)
        if name is None and ring.required:
            raise ApiError(401, "missing API key: send `Authorization: Bearer <key>`", code="missing_api_key",
                           headers={"WWW-Authenticate": 'Bearer realm="ai-sysadmin"'})
        request["actor"] = name
        return await handler(request)

    return auth_middleware
