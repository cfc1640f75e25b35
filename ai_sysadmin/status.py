"""What `ai-sysadmin status` and the API's /api/v1/status show: one dict, read from the
database and the model servers, so it works from any process (CLI, API) while the
service runs elsewhere.

    status = await gather_status(cfg, pool)

Keys: `database`, `models` (per role: health), `layers` (l1, metrics, incidents, review:
when each last did something and whether that is recent), `last_review`,
`open_incidents` (with NixOS advice), `pending_approvals`, `degraded` (one line per
degraded part; empty when all is well).  A part that cannot be read is reported,
never raised.  With `host` (a fleet's hub, docs/fleet.md) the triggers, metrics,
incidents and approvals are that host's, and the document says so (`host`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.statedir import room

STALE_FACTOR = 3  # a layer is stale after this many of its intervals without activity


async def _models(cfg: Config, timeout: float) -> dict[str, Any]:
    from ai_sysadmin.llm import LLMClient

    async def one(role: Any) -> tuple[str, dict[str, Any]]:
        async with LLMClient(role) as client:
            try:
                h = await asyncio.wait_for(client.health(), timeout)
                return role.name, {"url": role.url, "model": role.model, "status": h.status, "detail": h.detail}
            except TimeoutError:
                return role.name, {
                    "url": role.url,
                    "model": role.model,
                    "status": "unavailable",
                    "detail": f"no answer within {timeout:g}s",
                }

    return dict(await asyncio.gather(*(one(r) for r in cfg.roles.enabled())))


def _age(ts: datetime | None, now: datetime) -> float | None:
    return None if ts is None else round((now - ts).total_seconds(), 1)


async def _database(cfg: Config, pool: Any, now: datetime, host: str | None = None) -> dict[str, Any]:
    from ai_sysadmin.store import overview

    out: dict[str, Any] = {
        "database": {"reachable": False},
        "layers": {},
        "last_review": None,
        "open_incidents": [],
        "pending_approvals": None,
    }
    async with pool.connection() as conn:
        rows = await overview.read(conn, host)
        out["database"] = {"reachable": True, "schema_version": rows["schema_version"]}
        l1, trig, met, last = rows["l1_checkpoint_at"], rows["triggers"], rows["last_metric_at"], rows["last_review"]
        out["open_incidents"] = rows["open_incidents"]
        out["pending_approvals"] = rows["pending_approvals"]
        out["last_switch"] = await _last_switch(conn)
    review_every = cfg.intervals.review
    out["layers"] = {
        "l1": {"last_checkpoint": l1, "age_s": _age(l1, now), "triggers_last_hour": trig["n"]},
        "metrics": {
            "last_sample": met,
            "age_s": _age(met, now),
            "stale": met is None or (now - met).total_seconds() > STALE_FACTOR * cfg.intervals.metrics,
        },
        "incidents": {"open": len(out["open_incidents"])},
        "review": {
            "last": last["started_at"] if last else None,
            "outcome": last["outcome"] if last else None,
            "stale": last is None or (now - last["started_at"]).total_seconds() > STALE_FACTOR * review_every,
        },
    }
    if last:
        p = last["prompt_tokens"] or 0
        last["cached_share"] = round(last["cached_tokens"] / p, 3) if p else None
    out["last_review"] = last
    return out


async def _last_switch(conn: Any) -> dict[str, Any] | None:
    """The last NixOS switch, its preflight verdict and what failed after it (docs/preflight.md)."""
    from ai_sysadmin.store.switches import last_switch

    try:
        async with conn.transaction():
            return await last_switch(conn)
    except Exception:  # a schema before migration 7, or a role without the grant: unknown
        return None


async def gather_status(
    cfg: Config,
    pool: Any,
    *,
    model_timeout: float = 3.0,
    service: dict[str, Any] | None = None,
    host: str | None = None,
) -> dict[str, Any]:
    """The status document; `service` may add in-process reports (an orchestrator's own view)."""
    now = datetime.now(UTC)
    models_task = asyncio.create_task(_models(cfg, model_timeout))
    try:
        db = await _database(cfg, pool, now, host)
    except Exception as exc:
        db = {
            "database": {
                "reachable": False,
                "error": str(exc).strip().splitlines()[-1][:200] if str(exc) else exc.__class__.__name__,
            },
            "layers": {},
            "last_review": None,
            "open_incidents": [],
            "pending_approvals": None,
        }
    models = await models_task
    degraded = []
    if not db["database"]["reachable"]:
        degraded.append(f"database unreachable: {db['database'].get('error', '')}; the service spools")
    for name, m in models.items():
        if m["status"] != "ok":
            what = {
                "trigger": "L1 keeps deterministic triggers only",
                "review": "reviews are skipped; deterministic candidates are still proposed",
                "meta": "no deep analysis or chat",
                "embed": "no knowledge retrieval",
            }.get(name, "")
            degraded.append(f"{name} model {m['status']}{': ' + m['detail'] if m['detail'] else ''}; {what}")
    layers = db["layers"]
    if layers.get("metrics", {}).get("stale"):
        degraded.append("metrics collector: no recent samples")
    rv = layers.get("review", {})
    if db["database"]["reachable"] and rv.get("outcome") in ("failed", "skipped"):
        degraded.append(f"last review {rv['outcome']}: {(db['last_review'] or {}).get('error') or ''}")
    # Records the database refused (kept, with the reason, in the state dir; see docs/storage.md).
    from ai_sysadmin.store.quarantine import directory, read_state

    quarantine = read_state(directory(cfg.state_dir))
    if quarantine.records:
        degraded.append(quarantine.describe())
    space = room(cfg.state_dir)
    if space is not None and space.full:
        degraded.append(f"state dir full ({space.describe()}): L1 checkpoints and the outage spool cannot be written")
    status = {
        "at": now,
        "autonomy_level": cfg.autonomy_level,
        "models": models,
        **db,
        "degraded": degraded,
        "quarantine": {
            "records": quarantine.records,
            "bytes": quarantine.bytes,
            "last_at": quarantine.last_at,
            "last_kind": quarantine.last_kind,
            "last_reason": quarantine.last_reason,
        },
    }
    if host:
        status["host"] = host
    if service:
        status["service"] = service
    return status
