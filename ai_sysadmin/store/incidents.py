"""Incidents: triggers grouped into one problem with a status, and what was found and done."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

STATUSES = ("open", "acknowledged", "resolved", "closed")


class IncidentStore:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def open(self, title: str, severity: str, category: str, unit: str | None = None,
                   trigger_ids: Sequence[str] = (), summary: str | None = None) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO incidents (title, severity, category, unit, summary) VALUES (%s, %s, %s, %s, %s) "
                "RETURNING id", (title, severity, category, unit, summary))
            incident_id = int((await cur.fetchone())[0])  # type: ignore[index]
            if trigger_ids:
                await conn.execute("UPDATE triggers SET incident_id = %s WHERE id = ANY(%s)",
                                   (incident_id, list(trigger_ids)))
            return incident_id

    async def set_status(self, incident_id: int, status: str, *, diagnosis: str | None = None,
                         resolution: str | None = None, outcome: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not one of {', '.join(STATUSES)}")
        now = datetime.now(timezone.utc)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE incidents SET status = %s, updated_at = %s, "
                "resolved_at = CASE WHEN %s IN ('resolved', 'closed') THEN coalesce(resolved_at, %s) END, "
                "diagnosis = coalesce(%s, diagnosis), resolution = coalesce(%s, resolution), "
                "outcome = coalesce(%s, outcome) WHERE id = %s",
                (status, now, status, now, diagnosis, resolution, outcome, incident_id))
            if cur.rowcount == 0:
                raise LookupError(f"no incident {incident_id}")

    async def list(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = ("SELECT i.id, i.title, i.status, i.severity, i.category, i.unit, i.opened_at, i.updated_at, "
             "(SELECT count(*) FROM triggers t WHERE t.incident_id = i.id) AS triggers FROM incidents i")
        params: list[Any] = []
        if status:
            q += " WHERE i.status = %s"
            params.append(status)
        q += " ORDER BY i.updated_at DESC, i.id DESC LIMIT %s"
        params.append(limit)
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(q, params)
            return await cur.fetchall()

    async def show(self, incident_id: int) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM incidents WHERE id = %s", (incident_id,))
            incident = await cur.fetchone()
            if incident is None:
                return None
            await cur.execute("SELECT id, severity, category, source, unit, template, count, first_seen, last_seen, "
                              "sample FROM triggers WHERE incident_id = %s ORDER BY first_seen", (incident_id,))
            incident["triggers"] = await cur.fetchall()
            await cur.execute("SELECT id, layer, severity, title, detail, created_at FROM findings "
                              "WHERE incident_id = %s ORDER BY id", (incident_id,))
            incident["findings"] = await cur.fetchall()
            await cur.execute("SELECT id, action, params, risk, status, created_at, updated_at FROM actions "
                              "WHERE incident_id = %s ORDER BY id", (incident_id,))
            incident["actions"] = await cur.fetchall()
            return incident
