"""Every error the API returns, in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

Clients (the `openai` SDK, Open WebUI, LibreChat) read `error.message` and show it; a
field problem names the field in `param`.  Nothing else -- no traceback, no HTML
page from the framework -- ever leaves the server: `error_middleware` turns aiohttp's
own exceptions and unexpected failures into this shape too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ai_sysadmin.api.appkeys import MAX_BODY_BYTES

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# HTTP status -> OpenAI error type (the strings OpenAI itself uses where it has one).
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class ApiError(Exception):
    """Raise anywhere in a handler; the middleware renders it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def sse_error(message: str, type: str = "upstream_error", code: str | None = None) -> bytes:
    """An error event that ends a stream whose headers are already sent (the SDK raises on it)."""
    return b"data: " + json.dumps(error_body(message, type, None, code)).encode() + b"\n\n"


def bad_field(param: str, message: str) -> ApiError:
    return ApiError(400, f"{param}: {message}", param=param, code="invalid_value")


def body_too_large(request: web.Request) -> ApiError:
    limit = request.app.get(MAX_BODY_BYTES)
    return ApiError(
        413, f"request body larger than the limit of {limit} bytes (api.max_body_bytes)", code="body_too_large"
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        limit = request.app.get(MAX_BODY_BYTES)
        if limit and request.content_length is not None and request.content_length > limit:
            return body_too_large(request).response()  # refused before reading a byte of it
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPRequestEntityTooLarge:
        return body_too_large(request).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not errors
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        reason = exc.reason or "error"
        if exc.status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        else:
            message = reason
        return ApiError(exc.status, message, code=reason.lower().replace(" ", "_"), headers=headers).response()
    except (ConnectionResetError, ConnectionError) as exc:
        # The client went away: there is nobody to answer.
        log.debug("client gone during %s %s: %s", request.method, request.path, exc)
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return ApiError(500, "internal error; the server log has the details", code="internal_error").response()
