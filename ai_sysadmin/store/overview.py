"""The rows `ai-sysadmin status` (and /api/v1/status) summarises: read-only, any role with the status grants."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from ai_sysadmin.store import reviews
from ai_sysadmin.store.db import SCHEMA_TABLE
from ai_sysadmin.store.incidents import HOSTS_OF, ON_HOST

SEVERITY_ORDER = "ARRAY['critical', 'high', 'medium', 'low', 'info']"


async def read(conn: psycopg.AsyncConnection, host: str | None = None) -> dict[str, Any]:
    """schema_version, l1_checkpoint_at, triggers (at, n in the last hour), last_metric_at, last_review,
    open_incidents (with their findings' NixOS advice) and pending_approvals (None: unknown).

    `host`: triggers, metrics, incidents (with the fleet incidents that reached it) and
    approvals of that host only; the checkpoint and the last review stay the service's."""
    only = " AND host = %s" if host else ""
    by_host: tuple[Any, ...] = (host,) if host else ()
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT coalesce(max(version), 0) AS v FROM {SCHEMA_TABLE}")
    out: dict[str, Any] = {"schema_version": (await cur.fetchone())["v"]}  # type: ignore[index]
    await cur.execute("SELECT max(updated_at) AS at FROM cursors WHERE stream = 'journal'")
    out["l1_checkpoint_at"] = (await cur.fetchone())["at"]  # type: ignore[index]
    await cur.execute(
        "SELECT max(last_seen) AS at, count(*) AS n FROM triggers WHERE recorded_at > now() - interval '1 hour'" + only,
        by_host,
    )
    out["triggers"] = await cur.fetchone()
    await cur.execute("SELECT max(ts) AS at FROM metrics WHERE ts > now() - interval '1 day'" + only, by_host)
    out["last_metric_at"] = (await cur.fetchone())["at"]  # type: ignore[index]
    out["last_review"] = await reviews.last(conn)
    await cur.execute(
        f"SELECT i.id, i.host, {HOSTS_OF}, i.status, i.severity, i.category, i.title, i.confidence, i.units, "
        "i.opened_at, i.last_trigger_at, (SELECT string_agg(DISTINCT f.advice, E'\\n') FROM findings f "
        "WHERE f.incident_id = i.id AND f.advice IS NOT NULL) AS advice FROM incidents i "
        "WHERE i.status IN ('open', 'acknowledged')"
        + (f" AND {ON_HOST}" if host else "")
        + f" ORDER BY array_position({SEVERITY_ORDER}, i.severity), i.id LIMIT 50",
        (host, host) if host else (),
    )
    out["open_incidents"] = await cur.fetchall()
    out["pending_approvals"] = await _pending_approvals(conn, host)
    return out


async def _pending_approvals(conn: psycopg.AsyncConnection, host: str | None) -> int | None:
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT count(*) FROM actions WHERE status = 'queued'" + (" AND host = %s" if host else ""),
                (host,) if host else (),
            )
            return int((await cur.fetchone())[0])  # type: ignore[index]
    except Exception:  # the actions schema is older than this service: unknown
        return None
