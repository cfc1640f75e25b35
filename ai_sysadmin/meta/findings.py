"""Where investigations are recorded: a `findings` row (layer meta) with diagnosis and transcript.

Also reads what an investigation starts from (the incident, its triggers) and answers
the escalation debounce ("was this incident investigated recently?").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.store import findings
from ai_sysadmin.store.incidents import IncidentStore

LAYER = "meta"


class FindingsStore(Protocol):
    """What the investigator and the escalation need of the findings (MetaFindings, or eval's
    MemoryFindings over a snapshot)."""

    async def incident(self, incident_id: int) -> dict[str, Any] | None: ...

    async def record(self, incident_id: int | None, severity: str, title: str, detail: dict[str, Any]) -> int: ...

    async def update(self, finding_id: int, detail: dict[str, Any]) -> None: ...

    async def investigated_since(self, incident_id: int, seconds: float) -> bool: ...


class MetaFindings:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool
        self._incidents = IncidentStore(pool)

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        return await self._incidents.show(incident_id)

    async def record(self, incident_id: int | None, severity: str, title: str, detail: dict[str, Any]) -> int:
        async with self._pool.connection() as conn:
            return await findings.insert(conn, incident_id, LAYER, severity, title[:300], detail)

    async def update(self, finding_id: int, detail: dict[str, Any]) -> None:
        async with self._pool.connection() as conn:
            await findings.set_detail(conn, finding_id, detail)

    async def get(self, finding_id: int) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            return await findings.get(conn, finding_id)

    async def latest_for_incident(self, incident_id: int) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            return await findings.latest_for_incident(conn, incident_id)

    async def investigated_since(self, incident_id: int, seconds: float) -> bool:
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        async with self._pool.connection() as conn:
            return await findings.recorded_since(conn, incident_id, LAYER, since)
