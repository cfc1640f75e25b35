"""Bearer keys: who is calling and what that key may do, compared in constant time.

The keys come from `api.api_key_file` (config.parse_api_keys: `name:key` or
`name[scope,...]:key` lines, or one bare key named `api`).  Each presented token is
compared against *every* key with `hmac.compare_digest` over SHA-256 digests, so neither
the position of a matching key nor the length of a key shows in the response time.

Each key carries scopes (read, chat, approve); the endpoint's Access (api/access.py)
names the scopes that may call it, and a key without one of them gets 403 naming the
missing scope.  Without keys (loopback only; config refuses anything else) callers are
anonymous with read and chat; approving or rejecting an action always needs a key with
`approve`, because the key's name is the actor the audit trail records.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from ai_sysadmin.api.access import Access, AccessTable, Pool
from ai_sysadmin.api.appkeys import KEYRING
from ai_sysadmin.api.errors import ApiError, Handler
from ai_sysadmin.api.limits import ConcurrencyLimiter
from ai_sysadmin.apikeys import DEFAULT_KEY_SCOPES, ApiKey, Scope

# What a caller without a key may do where no key is required (loopback without keys).
ANONYMOUS_SCOPES = DEFAULT_KEY_SCOPES
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ai-sysadmin"'}


@dataclass(frozen=True)
class Caller:
    name: str | None  # the key's name; None: anonymous
    scopes: frozenset[Scope]


@dataclass(frozen=True)
class _Entry:
    name: str
    digest: bytes
    scopes: frozenset[Scope]


class KeyRing:
    def __init__(self, keys: Iterable[ApiKey], *, required: bool):
        self._entries = tuple(_Entry(k.name, _digest(k.key.reveal()), k.scopes) for k in keys)
        self.required = required

    def __bool__(self) -> bool:
        return bool(self._entries)

    def match(self, token: str) -> str | None:
        """The key's name, or None; the time taken does not depend on which key matched."""
        entry = self._lookup(token)
        return entry.name if entry is not None else None

    def _lookup(self, token: str) -> _Entry | None:
        presented = _digest(token)
        found: _Entry | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry
        return found

    def identify(self, request: web.Request) -> Caller | None:
        """The caller's key; None for no key (or none configured). Raises 401 for a bad key."""
        header = request.headers.get("Authorization")
        if header is None or not self._entries:
            # Without configured keys any presented token is ignored: clients such as
            # Open WebUI always send one, even to an open loopback endpoint.
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401, "the Authorization header must be `Bearer <key>`", code="invalid_authorization", headers=_CHALLENGE
            )
        entry = self._lookup(token)
        if entry is None:
            raise ApiError(401, "invalid API key", code="invalid_api_key", headers=_CHALLENGE)
        return Caller(entry.name, entry.scopes)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def actor(request: web.Request) -> str | None:
    """The authenticated key name of this request (None: no key was presented)."""
    return request.get("actor")


def require_key(request: web.Request, what: str) -> str:
    """The key name, or 401: used where an actor must be recorded (approve, reject)."""
    name = actor(request)
    if name is None:
        ring: KeyRing = request.app[KEYRING]
        hint = "" if ring else " (none is configured: set api.api_key_file)"
        raise ApiError(401, f"{what} needs an API key{hint}", code="api_key_required", headers=_CHALLENGE)
    return name


def require_scope(request: web.Request, scope: Scope, what: str) -> None:
    """403 unless this request's key holds `scope` (the middleware checked already; handlers re-check)."""
    held: frozenset[Scope] = request.get("scopes", frozenset())
    if scope not in held:
        raise _missing_scope(actor(request), frozenset({scope}), held, what)


def _missing_scope(name: str | None, needed: frozenset[Scope], held: frozenset[Scope], what: str) -> ApiError:
    wanted = " or ".join(f"`{s.value}`" for s in sorted(needed))
    if name is None:
        return ApiError(
            401, f"{what} needs an API key with the scope {wanted}", code="api_key_required", headers=_CHALLENGE
        )
    has = ", ".join(s.value for s in sorted(held)) or "none"
    return ApiError(
        403,
        f"the key {name!r} lacks the scope {wanted} needed for {what} (it has: {has}); "
        "scopes are set per key in api.api_key_file as name[scope,...]:key",
        code="insufficient_scope",
    )


class ConnectionMarks(Protocol):
    """What the auth middleware tells the connection guard (api/connections.py)."""

    def request_started(self, request: web.Request) -> None: ...

    def authenticated(self, request: web.Request) -> None: ...


def auth_middleware_for(
    ring: KeyRing, table: AccessTable, limiters: dict[Pool, ConcurrencyLimiter], marks: ConnectionMarks | None = None
):
    """Authenticate, check the endpoint's scopes, then hold the caller's per-key slot for it.

    `limiters` maps access.Pool -> ConcurrencyLimiter; `marks` (api/connections.py) learns
    which connections have passed authentication, so the unauthenticated cap spares them.
    """

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if marks is not None:
            marks.request_started(request)
        access: Access = table.of(request)
        if access.public:
            return await handler(request)
        caller = ring.identify(request)
        if caller is None:
            if ring.required:
                raise ApiError(
                    401,
                    "missing API key: send `Authorization: Bearer <key>`",
                    code="missing_api_key",
                    headers=_CHALLENGE,
                )
            caller = Caller(None, ANONYMOUS_SCOPES)
        if access.scopes and not access.scopes & caller.scopes:
            if caller.name is None and not ring:
                raise ApiError(
                    401,
                    f"{access.what} needs an API key (none is configured: set api.api_key_file)",
                    code="api_key_required",
                    headers=_CHALLENGE,
                )
            raise _missing_scope(caller.name, access.scopes, caller.scopes, access.what)
        request["actor"] = caller.name
        request["scopes"] = caller.scopes
        if marks is not None:
            marks.authenticated(request)
        if access.pool is None:
            return await handler(request)
        with limiters[access.pool].hold(caller.name or f"address:{request.remote or 'unknown'}"):
            return await handler(request)

    return auth_middleware
