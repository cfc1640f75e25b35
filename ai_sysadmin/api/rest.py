"""REST for tools and dashboards: status, incidents, actions, approve / reject.

Reads go through the stores the CLI uses (IncidentStore, actions.approvals), so the
API shows exactly what `ai-sysadmin incidents` and `ai-sysadmin actions` show.
Approve and reject always need a key with the `approve` scope -- also on loopback --
because the key's name is the actor recorded in the audit trail; a reason is required
for both.  Status is computed once for all concurrent callers (api/coalesce.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from ai_sysadmin.api.appkeys import STATE
from ai_sysadmin.api.auth import require_key, require_scope
from ai_sysadmin.api.coalesce import Coalesced
from ai_sysadmin.api.errors import ApiError, bad_field
from ai_sysadmin.api.state import ApiState
from ai_sysadmin.api.validate import decode_object
from ai_sysadmin.apikeys import Scope
from ai_sysadmin.llm.serving import serving_info

log = logging.getLogger(__name__)

MAX_LIMIT = 500


def _state(request: web.Request) -> ApiState:
    return request.app[STATE]


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(value, default=_default), status=status, content_type="application/json")


def _default(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if hasattr(v, "to_json"):
        return v.to_json()
    if hasattr(v, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(v)
    return str(v)


def _pool(st: ApiState) -> Any:
    if st.pool is None:
        raise ApiError(503, "no database configured for this server", code="database_unavailable")
    return st.pool


def _int_param(request: web.Request, name: str, default: int, lo: int = 1, hi: int = MAX_LIMIT) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_field(name, "must be an integer") from None
    if not lo <= value <= hi:
        raise bad_field(name, f"must be between {lo} and {hi}")
    return value


def _host_param(request: web.Request) -> str | None:
    """`?host=H` (a fleet's hub, docs/fleet.md): a host id, else 400 naming `host`."""
    from ai_sysadmin.config import host_id_problem

    raw = request.query.get("host")
    if raw is None:
        return None
    problem = host_id_problem(raw)
    if problem:
        raise bad_field("host", problem)
    return raw


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    try:
        value = int(raw)
    except ValueError:
        raise bad_field("id", f"must be an integer, got {raw[:40]!r}") from None
    if not 0 < value < 2**63:
        raise bad_field("id", "out of range")
    return value


async def _db(coro: Any) -> Any:
    """Run a store call; a database that is down is 503, not a 500 with a traceback."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        return await coro
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise ApiError(503, f"database unavailable: {exc.__class__.__name__}", code="database_unavailable") from None


# ------------------------------------------------------------------ status


# One round of status is shared by every caller within this many seconds (api/coalesce.py):
# the document is seconds-grained anyway (ages, "stale"), and 400 concurrent callers must
# cost one round of database and model-server questions, not 400.
STATUS_TTL_SECONDS = 2.0
# `?host=` takes any host id, so the shared rounds per host are bounded: past this many the
# oldest is forgotten (its callers still get their answer; a later one starts a new round).
STATUS_HOSTS_KEPT = 64


async def status(request: web.Request) -> web.Response:
    st = _state(request)
    host = _host_param(request)  # the CLI's `status --host`: that host's triggers, metrics, incidents, approvals
    shared = st.status.get(host)
    if shared is None:
        if len(st.status) >= STATUS_HOSTS_KEPT:
            del st.status[next(iter(st.status))]
        shared = st.status[host] = Coalesced(lambda: status_document(st, host), STATUS_TTL_SECONDS)
    return web.Response(body=await shared.get(), content_type="application/json")


async def status_document(st: ApiState, host: str | None = None) -> bytes:
    """The status document (of one host, with `host`), encoded once for every caller that shares it."""
    models_task = asyncio.ensure_future(serving_info(st.cfg.roles.enabled(), st.session))
    body: dict[str, Any]
    try:
        from ai_sysadmin.status import gather_status  # issue 12
    except ImportError:
        body = {"status": "unknown", "detail": "status gathering is not installed"}
    else:
        try:
            body = dict(await gather_status(st.cfg, st.pool, host=host))
        except Exception as exc:
            log.warning("status: %s", exc)
            body = {"status": "unknown", "detail": f"status unavailable: {exc.__class__.__name__}"}
    # Per role: the status module's health view, plus what the server serves (llm.serving).
    models = body.get("models")
    health = models if isinstance(models, dict) else {}
    body["models"] = {i.role: {**i.to_json(), **health.get(i.role, {})} for i in await models_task}
    return json.dumps(body, default=_default).encode()


# ------------------------------------------------------------------ incidents


async def incidents(request: web.Request) -> web.Response:
    from ai_sysadmin.store.incidents import STATUSES, IncidentStore

    st = _state(request)
    wanted = request.query.get("status")
    if wanted is not None and wanted not in STATUSES:
        raise bad_field("status", f"must be one of {', '.join(STATUSES)}")
    limit = _int_param(request, "limit", 50)
    host = _host_param(request)
    rows = await _db(IncidentStore(_pool(st)).list(wanted, limit, host=host))
    return _json({"object": "list", "data": rows})


async def incident(request: web.Request) -> web.Response:
    from ai_sysadmin.store.incidents import IncidentStore

    st = _state(request)
    incident_id = _id(request)
    row = await _db(IncidentStore(_pool(st)).show(incident_id))
    if row is None:
        raise ApiError(404, f"no incident {incident_id}", param="id", code="not_found")
    return _json(row)


# ------------------------------------------------------------------ actions


def _approvals() -> Any:
    try:
        from ai_sysadmin.actions import approvals  # issue 11
    except ImportError:
        raise ApiError(503, "actions are not installed in this server", code="actions_unavailable") from None
    return approvals


async def _actions_call(coro: Any) -> Any:
    approvals = _approvals()
    try:
        return await _db(coro)
    except approvals.NotFound as exc:
        raise ApiError(404, str(exc), param="id", code="not_found") from None
    except approvals.InvalidState as exc:
        raise ApiError(409, str(exc), code="invalid_state") from None
    except approvals.NotAuthorized as exc:
        raise ApiError(403, str(exc), code="not_authorized") from None


async def actions(request: web.Request) -> web.Response:
    approvals = _approvals()
    st = _state(request)
    wanted = request.query.get("status")
    if wanted is not None and not (0 < len(wanted) <= 32 and wanted.replace("_", "").isalpha()):
        raise bad_field("status", "must be an action status such as 'proposed'")
    limit = _int_param(request, "limit", 50)
    host = _host_param(request)
    rows = await _actions_call(approvals.list_actions(_pool(st), status=wanted, limit=limit, host=host))
    return _json({"object": "list", "data": rows})


async def action(request: web.Request) -> web.Response:
    approvals = _approvals()
    st = _state(request)
    row = await _actions_call(approvals.show_action(_pool(st), _id(request)))
    return _json(row)


async def _decide(request: web.Request, verb: str) -> web.Response:
    approvals = _approvals()
    st = _state(request)
    who = require_key(request, f"{verb} an action")
    # The middleware checked the route's scope already; the decision itself checks again.
    require_scope(request, Scope.APPROVE, "approving or rejecting an action")
    action_id = _id(request)
    data = decode_object(await request.read())
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise bad_field("reason", "required: a non-empty string saying why")
    if len(reason) > 2000:
        raise bad_field("reason", "at most 2000 characters")
    pool = _pool(st)
    if verb == "approve":
        # What the person saw: the `digest` of GET /api/v1/actions/ID, sent back unchanged.
        digest = data.get("digest")
        if not isinstance(digest, str) or not digest.strip():
            raise bad_field("digest", "required: the digest of GET /api/v1/actions/ID, i.e. what you approve")
        if len(digest) > 128:
            raise bad_field("digest", "at most 128 characters")
        key = _approval_key(st)
        call = approvals.approve(pool, action_id, who, reason.strip(), digest=digest, key=key)
    else:
        call = approvals.reject(pool, action_id, who, reason.strip())
    # Shielded: a client hanging up must not cancel a decision halfway through its transaction.
    result = await asyncio.shield(_actions_call(call))
    return _json(result if result is not None else {"id": action_id, "status": verb + "d"})


def _approval_key(st: ApiState) -> bytes:
    """The approval signing key, read when needed (actions.approval_key_file; a credential)."""
    from ai_sysadmin.actions.signing import KeyUnavailable, load_key

    try:
        return load_key(st.cfg)
    except KeyUnavailable as exc:
        raise ApiError(403, f"this API server cannot sign approvals: {exc}", code="approval_key_unavailable") from None


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, "approve")


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, "reject")
