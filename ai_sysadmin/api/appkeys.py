"""The typed keys of the aiohttp application (aiohttp's `web.AppKey`): what handlers read from `request.app`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ai_sysadmin.api.auth import KeyRing
    from ai_sysadmin.api.connections import ConnectionGuard
    from ai_sysadmin.api.state import ApiState

STATE: web.AppKey[ApiState] = web.AppKey("state")
KEYRING: web.AppKey[KeyRing] = web.AppKey("keyring")
CONNECTIONS: web.AppKey[ConnectionGuard] = web.AppKey("connections")
MAX_BODY_BYTES: web.AppKey[int] = web.AppKey("max_body_bytes")
