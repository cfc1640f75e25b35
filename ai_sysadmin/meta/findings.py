"""Where investigations are recorded: a `findings` row (layer meta) with diagnosis and transcript.

Also reads what an investigation starts from (the incident, its triggers) and answers
the escalation debounce ("was this incident investigated recently?").
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from psycopg.types.json import Jsonb

from ai_sysadmin.store.incidents import IncidentStore

LAYER = "meta"


class MetaFindings:
    def __init__(self, pool: Any):
        self._pool = pool
        self._incidents = IncidentStore(pool)

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        return await self._incidents.show(incident_id)

    async def record(self, incident_id: int | None, severity: str, title: str, detail: dict[str, Any]) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO findings (incident_id, layer, severity, title, detail) VALUES (%s, %s, %s, %s, %s) "
                "RETURNING id", (incident_id, LAYER, severity, title[:300], Jsonb(detail)))
            return int((await cur.fetchone())[0])  # type: ignore[index]

    async def update(self, finding_id: int, detail: dict[str, Any]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("UPDATE findings SET detail = %s WHERE id = %s", (Jsonb(detail), finding_id))

    async def get(self, finding_id: int) -> dict[str, Any] | None:
        from psycopg.rows import dict_row

        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM findings WHERE id = %s", (finding_id,))
            return await cur.fetchone()

    async def latest_for_incident(self, incident_id: int) -> dict[str, Any] | None:
        from psycopg.rows import dict_row

        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM findings WHERE incident_id = %s ORDER BY (layer = 'meta') DESC, id DESC "
                              "LIMIT 1", (incident_id,))
            return await cur.fetchone()

    async def investigated_since(self, incident_id: int, seconds: float) -> bool:
        since = datetime.now(timezone.utc) - timedelta(seconds=seconds)
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM findings WHERE incident_id = %s AND layer = %s AND created_at >= %s "
                                     "LIMIT 1", (incident_id, LAYER, since))
            return await cur.fetchone() is not None
