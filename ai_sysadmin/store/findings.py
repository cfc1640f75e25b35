"""`findings` rows: what a layer found about an incident (a review's, an investigation's diagnosis)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


async def insert(
    conn: psycopg.AsyncConnection,
    incident_id: int | None,
    layer: str,
    severity: str,
    title: str,
    detail: dict[str, Any],
) -> int:
    cur = await conn.execute(
        "INSERT INTO findings (incident_id, layer, severity, title, detail) VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (incident_id, layer, severity, title, Jsonb(detail)),
    )
    return int((await cur.fetchone())[0])  # type: ignore[index]


async def insert_reviewed(
    conn: psycopg.AsyncConnection,
    review_id: int,
    incident_id: int | None,
    layer: str,
    severity: str,
    title: str,
    detail: dict[str, Any],
    category: str | None,
    advice: str | None,
) -> int:
    """A review's finding, with its category and its NixOS advice as text (one line each)."""
    cur = await conn.execute(
        "INSERT INTO findings (incident_id, layer, severity, title, detail, review_id, category, advice) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (incident_id, layer, severity, title, Jsonb(detail), review_id, category, advice),
    )
    return int((await cur.fetchone())[0])  # type: ignore[index]


async def set_detail(conn: psycopg.AsyncConnection, finding_id: int, detail: dict[str, Any]) -> None:
    await conn.execute("UPDATE findings SET detail = %s WHERE id = %s", (Jsonb(detail), finding_id))


async def get(conn: psycopg.AsyncConnection, finding_id: int) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM findings WHERE id = %s", (finding_id,))
    return await cur.fetchone()


async def latest_for_incident(conn: psycopg.AsyncConnection, incident_id: int) -> dict[str, Any] | None:
    """The incident's newest finding, an investigation's (layer meta) before any other."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM findings WHERE incident_id = %s ORDER BY (layer = 'meta') DESC, id DESC LIMIT 1", (incident_id,)
    )
    return await cur.fetchone()


async def recorded_since(conn: psycopg.AsyncConnection, incident_id: int, layer: str, since: datetime) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM findings WHERE incident_id = %s AND layer = %s AND created_at >= %s LIMIT 1",
        (incident_id, layer, since),
    )
    return await cur.fetchone() is not None
