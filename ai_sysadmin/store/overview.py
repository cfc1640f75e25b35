"""The rows `ai-sysadmin status` (and /api/v1/status) summarises: read-only, any role with the status grants."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from ai_sysadmin.store import reviews
from ai_sysadmin.store.db import SCHEMA_TABLE

SEVERITY_ORDER = "ARRAY['critical', 'high', 'medium', 'low', 'info']"


async def read(conn: psycopg.AsyncConnection) -> dict[str, Any]:
    """schema_version, l1_checkpoint_at, triggers (at, n in the last hour), last_metric_at, last_review,
    open_incidents (with their findings' NixOS advice) and pending_approvals (None: unknown)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT coalesce(max(version), 0) AS v FROM {SCHEMA_TABLE}")
    out: dict[str, Any] = {"schema_version": (await cur.fetchone())["v"]}  # type: ignore[index]
    await cur.execute("SELECT max(updated_at) AS at FROM cursors WHERE stream = 'journal'")
    out["l1_checkpoint_at"] = (await cur.fetchone())["at"]  # type: ignore[index]
    await cur.execute(
        "SELECT max(last_seen) AS at, count(*) AS n FROM triggers WHERE recorded_at > now() - interval '1 hour'"
    )
    out["triggers"] = await cur.fetchone()
    await cur.execute("SELECT max(ts) AS at FROM metrics WHERE ts > now() - interval '1 day'")
    out["last_metric_at"] = (await cur.fetchone())["at"]  # type: ignore[index]
    out["last_review"] = await reviews.last(conn)
    await cur.execute(
        "SELECT i.id, i.status, i.severity, i.category, i.title, i.confidence, i.units, i.opened_at, "
        "i.last_trigger_at, (SELECT string_agg(DISTINCT f.advice, E'\\n') FROM findings f "
        "WHERE f.incident_id = i.id AND f.advice IS NOT NULL) AS advice FROM incidents i "
        f"WHERE i.status IN ('open', 'acknowledged') ORDER BY array_position({SEVERITY_ORDER}, i.severity), "
        "i.id LIMIT 50"
    )
    out["open_incidents"] = await cur.fetchall()
    out["pending_approvals"] = await _pending_approvals(conn)
    return out


async def _pending_approvals(conn: psycopg.AsyncConnection) -> int | None:
    try:
        async with conn.transaction():
            cur = await conn.execute("SELECT count(*) FROM actions WHERE status = 'queued'")
            return int((await cur.fetchone())[0])  # type: ignore[index]
    except Exception:  # the actions schema is older than this service: unknown
        return None
