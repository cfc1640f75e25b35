"""NixOS switches the service noticed, and the incidents attributed to them (migration 7).

`attribute` is the one rule, in SQL so that it sees every incident whatever process made
it: an incident is attributed to the latest switch before its first trigger when that
trigger came at most `window` seconds after the switch (and at most `grace` seconds before
it: the link's time and the journal's are read apart), one of its units is a unit the
switch touched, and it is not attributed yet.  Incidents already open before the switch
are not "new failures" and stay unattributed.  Switch and incident are of the same host: a
hub's switch explains nothing on a member (a fleet incident: the host it opened on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool


@dataclass(frozen=True)
class SwitchRow:
    switched_at: datetime
    from_generation: int | None
    to_generation: int | None
    from_path: str | None
    to_path: str
    verdict: str | None
    preflight: dict[str, Any]
    touched: tuple[str, ...]


ATTRIBUTE_SQL = """
INSERT INTO switch_incidents (incident_id, switch_id, units, failed_at)
SELECT i.id, s.id, ARRAY(SELECT u FROM unnest(i.units) u WHERE u = ANY(s.touched) ORDER BY u),
       coalesce(i.first_trigger_at, i.opened_at)
FROM incidents i
CROSS JOIN LATERAL (
    SELECT id, touched, switched_at FROM switches
    WHERE host = i.host AND switched_at <= coalesce(i.first_trigger_at, i.opened_at) + make_interval(secs => %(grace)s)
    ORDER BY switched_at DESC, id DESC LIMIT 1) s
WHERE i.opened_at > clock_timestamp() - make_interval(secs => %(window)s + %(grace)s)
  AND coalesce(i.first_trigger_at, i.opened_at) <= s.switched_at + make_interval(secs => %(window)s)
  AND coalesce(i.first_trigger_at, i.opened_at) >= s.switched_at - make_interval(secs => %(grace)s)
  AND i.units && s.touched
  AND NOT EXISTS (SELECT 1 FROM switch_incidents x WHERE x.incident_id = i.id)
ON CONFLICT (incident_id) DO NOTHING
RETURNING incident_id, switch_id, units, failed_at, attributed_at
"""

_ATTRIBUTION_COLS = (
    "x.incident_id, x.units, x.failed_at, x.attributed_at, s.id AS switch_id, s.switched_at, "
    "s.from_generation, s.to_generation, s.from_path, s.to_path, s.verdict, s.preflight, s.touched"
)


class SwitchStore:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def record(self, sw: SwitchRow) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO switches (switched_at, from_generation, to_generation, from_path, to_path, verdict, "
                "preflight, touched) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    sw.switched_at,
                    sw.from_generation,
                    sw.to_generation,
                    sw.from_path,
                    sw.to_path,
                    sw.verdict,
                    Jsonb(sw.preflight),
                    list(sw.touched),
                ),
            )
            return int((await cur.fetchone())[0])  # type: ignore[index]

    async def last(self) -> tuple[str, datetime] | None:
        """The system the last recorded switch went to, and when (where the watch resumes after a restart)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT to_path, switched_at FROM switches ORDER BY switched_at DESC, id DESC LIMIT 1"
            )
            row = await cur.fetchone()
            return (row[0], row[1]) if row else None

    async def attribute(self, window: float, grace: float) -> list[dict[str, Any]]:
        """Attribute the incidents the rule above matches; returns the new attributions."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(ATTRIBUTE_SQL, {"window": window, "grace": grace})
            return await cur.fetchall()

    async def attributions(self, incident_ids: list[int]) -> dict[int, dict[str, Any]]:
        """incident id -> its attribution joined with the switch (generation pair, preflight)."""
        if not incident_ids:
            return {}
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                f"SELECT {_ATTRIBUTION_COLS} FROM switch_incidents x JOIN switches s "
                "ON s.id = x.switch_id WHERE x.incident_id = ANY(%s)",
                (incident_ids,),
            )
            return {int(r["incident_id"]): r for r in await cur.fetchall()}


async def last_switch(conn: Any) -> dict[str, Any] | None:
    """For status: the last switch, its verdict, and the incidents attributed to it (a dict_row cursor's conn)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, switched_at, noticed_at, from_generation, to_generation, from_path, to_path, "
        "verdict, preflight->'reasons' AS reasons, touched FROM switches "
        "ORDER BY switched_at DESC, id DESC LIMIT 1"
    )
    sw: dict[str, Any] | None = await cur.fetchone()
    if sw is None:
        return None
    await cur.execute(
        "SELECT x.incident_id, x.units, x.failed_at, x.attributed_at, i.status, i.title "
        "FROM switch_incidents x JOIN incidents i ON i.id = x.incident_id "
        "WHERE x.switch_id = %s ORDER BY x.incident_id",
        (sw["id"],),
    )
    sw["failed_after"] = await cur.fetchall()
    return sw


async def attribution(conn: Any, incident_id: int) -> dict[str, Any] | None:
    """One incident's attribution with its switch (for `incidents show`)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_ATTRIBUTION_COLS} FROM switch_incidents x JOIN switches s ON s.id = x.switch_id "
        "WHERE x.incident_id = %s",
        (incident_id,),
    )
    row: dict[str, Any] | None = await cur.fetchone()
    return row


async def attributed_units(conn: Any, incident_id: int) -> list[str] | None:
    """The units an incident attributed to a switch (the executor's rollback verification); None if none."""
    cur = await conn.execute("SELECT units FROM switch_incidents WHERE incident_id = %s", (incident_id,))
    row = await cur.fetchone()
    return None if row is None else list(row[0])


# ---------------------------------------------------------------- preflight's incident history
# Synchronous (the preflight command has no event loop); each is one statement.

OPEN_INCIDENTS_SQL = """
SELECT id, status, title, ARRAY(SELECT u FROM unnest(units) u WHERE u = ANY(%(units)s) ORDER BY u) AS units
FROM incidents WHERE status IN ('open', 'acknowledged') AND units && %(units)s::text[] ORDER BY id
"""

FAILED_AFTER_SWITCH_SQL = """
SELECT x.incident_id, x.units, x.failed_at, s.id AS switch_id, s.switched_at, s.from_generation, s.to_generation
FROM switch_incidents x JOIN switches s ON s.id = x.switch_id
WHERE x.units && %(units)s::text[] ORDER BY x.failed_at DESC, x.incident_id DESC LIMIT 50
"""

# The package versions that earlier switches brought in (their preflight's closure diff,
# "to" versions) when an incident was attributed to that switch.
FAILED_PACKAGES_SQL = """
SELECT c->>'package' AS package, v AS version, s.id AS switch_id, s.from_generation, s.to_generation,
       array_agg(DISTINCT x.incident_id ORDER BY x.incident_id) AS incident_ids
FROM switches s JOIN switch_incidents x ON x.switch_id = s.id
CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(s.preflight->'closure'->'changes')
    WHEN 'array' THEN s.preflight->'closure'->'changes' ELSE '[]'::jsonb END) c
CROSS JOIN LATERAL jsonb_array_elements_text(CASE jsonb_typeof(c->'to') WHEN 'array' THEN c->'to'
    ELSE '[]'::jsonb END) v
WHERE c->>'package' = ANY(%(packages)s::text[])
GROUP BY 1, 2, 3, 4, 5 ORDER BY 3 DESC
"""


def history_for(conn: Any, units: list[str], packages: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Open incidents of `units`, incidents attributed to earlier switches that name one of
    `units`, and package versions earlier failing switches brought in (a psycopg Connection)."""
    cur = conn.cursor(row_factory=dict_row)
    out: dict[str, list[dict[str, Any]]] = {}
    cur.execute(OPEN_INCIDENTS_SQL, {"units": units})
    out["open"] = cur.fetchall()
    cur.execute(FAILED_AFTER_SWITCH_SQL, {"units": units})
    out["failed_after"] = cur.fetchall()
    cur.execute(FAILED_PACKAGES_SQL, {"packages": packages})
    out["packages"] = cur.fetchall()
    return out
