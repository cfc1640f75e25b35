"""Incidents: triggers grouped into one problem with a status, and what was found and done.

Each incident belongs to the host it opened on (`incidents.host`); `incident_hosts` lists
every host it was seen on (more than one: a fleet incident, docs/fleet.md).  A host filter
matches an incident of that host and a fleet incident that reached it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

STATUSES = ("open", "acknowledged", "resolved", "closed")

# Its hosts in the order the fault reached them; an incident written before migration 10
# (or opened by hand) has no rows there and is its own host's.
HOSTS_OF = (
    "coalesce((SELECT array_agg(h.host ORDER BY h.first_seen, h.host) FROM incident_hosts h "
    "WHERE h.incident_id = i.id), ARRAY[i.host]) AS hosts"
)
ON_HOST = "(i.host = %s OR EXISTS (SELECT 1 FROM incident_hosts h WHERE h.incident_id = i.id AND h.host = %s))"


async def incident_evidence(conn: Any, incident_id: Any) -> tuple[frozenset[str], frozenset[str] | None] | None:
    """(units, supported actions) of an incident; None: no such incident.

    What a model's proposal for this incident may target and do unattended
    (actions/binding.py).  Units: those its trusted evidence names (`units`, and `unit`).

    Supported actions: its `candidate_actions` (written by the incident service), plus
    `rollback_generation` when the incident is attributed to a NixOS switch; None when the
    row predates that column (nothing to compare against).
    """
    if not isinstance(incident_id, int) or isinstance(incident_id, bool) or not 0 < incident_id < 2**63:
        return None
    cur = await conn.execute(
        "SELECT units, unit, candidate_actions, EXISTS (SELECT 1 FROM switch_incidents s "
        "WHERE s.incident_id = i.id) FROM incidents i WHERE id = %s",
        (incident_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    units, unit, actions, switched = row
    supported = None if actions is None else frozenset([*actions, *(["rollback_generation"] if switched else [])])
    return frozenset([*(units or ()), *([unit] if unit else [])]), supported


async def incident_hosts(conn: Any, incident_id: int | None) -> list[str]:
    """The hosts an incident reached, first first; [] for no incident (an action's host: actions/proposals.py)."""
    if incident_id is None:
        return []
    cur = await conn.execute(
        "SELECT coalesce((SELECT array_agg(h.host ORDER BY h.first_seen, h.host) FROM incident_hosts h "
        "WHERE h.incident_id = i.id), ARRAY[i.host]) FROM incidents i WHERE i.id = %s",
        (incident_id,),
    )
    row = await cur.fetchone()
    return list(row[0]) if row else []


async def incident_host(conn: Any, incident_id: int) -> tuple[str, str] | None:
    """(the incident's host, the store's local host); None for no such incident.  The host it
    opened on: a fleet incident is investigated on that host (docs/fleet.md)."""
    cur = await conn.execute(
        "SELECT i.host, (SELECT value FROM store_settings WHERE key = 'local_host') FROM incidents i WHERE i.id = %s",
        (incident_id,),
    )
    row = await cur.fetchone()
    return None if row is None else (row[0], row[1])


async def reopen(conn: Any, incident_id: int, at: datetime) -> None:
    """Open an incident again on the caller's connection (an action meant to fix it failed)."""
    await conn.execute(
        "UPDATE incidents SET status = 'open', resolved_at = NULL, updated_at = %s WHERE id = %s", (at, incident_id)
    )


async def _hosts(conn: Any, incident_id: int, own: str) -> list[dict[str, Any]]:
    """[{host, first_seen}] in the order the fault reached them; [{own, None}] without rows."""
    cur = await conn.execute(
        "SELECT host, first_seen FROM incident_hosts WHERE incident_id = %s ORDER BY first_seen, host",
        (incident_id,),
    )
    rows = await cur.fetchall()
    return [{"host": h, "first_seen": f} for h, f in rows] or [{"host": own, "first_seen": None}]


async def count_on_hosts(conn: Any) -> list[tuple[str, str, int]]:
    """(status, host, incidents): each incident on every host it reached (/metrics)."""
    cur = await conn.execute(
        "SELECT i.status, coalesce(h.host, i.host), count(*) FROM incidents i "
        "LEFT JOIN incident_hosts h ON h.incident_id = i.id GROUP BY 1, 2"
    )
    return [(str(s), str(h), int(n)) for s, h, n in await cur.fetchall()]


async def count_fleet(conn: Any) -> list[tuple[str, int]]:
    """(status, incidents seen on more than one host) (/metrics)."""
    cur = await conn.execute(
        "SELECT i.status, count(*) FROM incidents i WHERE "
        "(SELECT count(*) FROM incident_hosts h WHERE h.incident_id = i.id) > 1 GROUP BY 1"
    )
    return [(str(s), int(n)) for s, n in await cur.fetchall()]


# Spelled here: inside IncidentStore, `list` names its method.
Rows = list[dict[str, Any]]


class IncidentStore:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def open(
        self,
        title: str,
        severity: str,
        category: str,
        unit: str | None = None,
        trigger_ids: Sequence[str] = (),
        summary: str | None = None,
    ) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO incidents (title, severity, category, unit, summary) VALUES (%s, %s, %s, %s, %s) "
                "RETURNING id",
                (title, severity, category, unit, summary),
            )
            incident_id = int((await cur.fetchone())[0])  # type: ignore[index]
            if trigger_ids:
                await conn.execute(
                    "UPDATE triggers SET incident_id = %s WHERE id = ANY(%s)", (incident_id, list(trigger_ids))
                )
            return incident_id

    async def set_status(
        self,
        incident_id: int,
        status: str,
        *,
        diagnosis: str | None = None,
        resolution: str | None = None,
        outcome: str | None = None,
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not one of {', '.join(STATUSES)}")
        now = datetime.now(UTC)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE incidents SET status = %s, updated_at = %s, "
                "resolved_at = CASE WHEN %s IN ('resolved', 'closed') THEN coalesce(resolved_at, %s) END, "
                "diagnosis = coalesce(%s, diagnosis), resolution = coalesce(%s, resolution), "
                "outcome = coalesce(%s, outcome) WHERE id = %s",
                (status, now, status, now, diagnosis, resolution, outcome, incident_id),
            )
            if cur.rowcount == 0:
                raise LookupError(f"no incident {incident_id}")

    async def list(self, status: str | None = None, limit: int = 50, host: str | None = None) -> Rows:
        """The latest incidents; `host`: only that host's, and the fleet incidents that reached it."""
        q = (
            f"SELECT i.id, i.host, {HOSTS_OF}, i.title, i.status, i.severity, i.category, i.unit, i.opened_at, "
            "i.updated_at, (SELECT count(*) FROM triggers t WHERE t.incident_id = i.id) AS triggers FROM incidents i"
        )
        where: list[str] = []
        params: list[Any] = []
        if status:
            where.append("i.status = %s")
            params.append(status)
        if host:
            where.append(ON_HOST)
            params += [host, host]
        if where:
            q += " WHERE " + " AND ".join(where)
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
            incident["hosts"] = await _hosts(conn, incident_id, incident["host"])
            # Attributed to a NixOS switch: rollback_generation is then supported too (incident_evidence).
            await cur.execute(
                "SELECT EXISTS (SELECT 1 FROM switch_incidents WHERE incident_id = %s) AS switched", (incident_id,)
            )
            incident["switched"] = bool((await cur.fetchone() or {}).get("switched"))
            await cur.execute(
                "SELECT id, host, severity, category, source, unit, template, count, first_seen, last_seen, "
                "sample FROM triggers WHERE incident_id = %s ORDER BY first_seen",
                (incident_id,),
            )
            incident["triggers"] = await cur.fetchall()
            await cur.execute(
                "SELECT id, layer, severity, title, detail, category, advice, review_id, created_at FROM findings "
                "WHERE incident_id = %s ORDER BY id",
                (incident_id,),
            )
            incident["findings"] = await cur.fetchall()
            await cur.execute(
                "SELECT id, host, action, params, risk, status, created_at, updated_at FROM actions "
                "WHERE incident_id = %s ORDER BY id",
                (incident_id,),
            )
            incident["actions"] = await cur.fetchall()
            return incident

    # ------------------------------------------------------------------ the correlator's side (issue 12)

    async def save_correlated(self, inc: dict[str, Any], trigger_ids: Sequence[str], *, status_changed: bool) -> int:
        """Insert (inc['id'] is None) or update one correlated incident and link its triggers.

        The status is written only when the correlator changed it, so an acknowledgement a
        person made meanwhile is not overwritten by a mere update.  `inc['host']` (None: the
        local host) is written when it opens; `inc['hosts']`, (host, first seen) pairs, are
        added to incident_hosts ("" is the incident's own host).
        """
        now = datetime.now(UTC)
        cols = {
            k: inc[k]
            for k in (
                "title",
                "severity",
                "category",
                "unit",
                "units",
                "confidence",
                "first_trigger_at",
                "last_trigger_at",
                "reopened",
            )
        }
        cols["candidate_actions"] = inc.get("candidate_actions")
        async with self._pool.connection() as conn, conn.transaction():
            if inc["id"] is None:
                cur = await conn.execute(
                    "INSERT INTO incidents (host, title, severity, category, unit, units, confidence, "
                    "first_trigger_at, last_trigger_at, reopened, status, resolved_at, resolved_reason, "
                    "candidate_actions) VALUES "
                    "(coalesce(%(host)s, (SELECT value FROM store_settings WHERE key = 'local_host')), "
                    "%(title)s, %(severity)s, %(category)s, %(unit)s, %(units)s, %(confidence)s, "
                    "%(first_trigger_at)s, %(last_trigger_at)s, %(reopened)s, %(status)s, %(resolved_at)s, "
                    "%(resolved_reason)s, %(candidate_actions)s) RETURNING id",
                    {
                        **cols,
                        "host": inc.get("host"),
                        "status": inc["status"],
                        "resolved_at": inc["resolved_at"],
                        "resolved_reason": inc["resolved_reason"],
                    },
                )
                incident_id = int((await cur.fetchone())[0])  # type: ignore[index]
            else:
                incident_id = int(inc["id"])
                status_sql = ""
                if status_changed:
                    status_sql = (
                        ", status = %(status)s, resolved_at = %(resolved_at)s, "
                        "resolved_reason = %(resolved_reason)s, "
                        "resolution = CASE WHEN %(status)s = 'resolved' THEN %(resolved_reason)s "
                        "ELSE resolution END, "
                        "closed_at = CASE WHEN %(status)s = 'closed' THEN %(now)s END"
                    )
                await conn.execute(
                    "UPDATE incidents SET title = %(title)s, severity = %(severity)s, category = %(category)s, "
                    "unit = %(unit)s, units = %(units)s, confidence = %(confidence)s, "
                    "first_trigger_at = %(first_trigger_at)s, last_trigger_at = %(last_trigger_at)s, "
                    "reopened = %(reopened)s, updated_at = %(now)s, "
                    "candidate_actions = coalesce(%(candidate_actions)s, candidate_actions)"
                    + status_sql
                    + " WHERE id = %(id)s",
                    {
                        **cols,
                        "id": incident_id,
                        "status": inc["status"],
                        "resolved_at": inc["resolved_at"],
                        "resolved_reason": inc["resolved_reason"],
                        "now": now,
                    },
                )
            if trigger_ids:
                await conn.execute(
                    "UPDATE triggers SET incident_id = %s WHERE id = ANY(%s) AND incident_id IS DISTINCT FROM %s",
                    (incident_id, list(trigger_ids), incident_id),
                )
            hosts = list(inc.get("hosts") or ())
            if hosts:
                await conn.execute(
                    "INSERT INTO incident_hosts (incident_id, host, first_seen) "
                    "SELECT %s, coalesce(nullif(u.h, ''), (SELECT host FROM incidents WHERE id = %s)), u.f "
                    "FROM unnest(%s::text[], %s::timestamptz[]) AS u (h, f) "
                    "ON CONFLICT (incident_id, host) DO UPDATE SET first_seen = EXCLUDED.first_seen "
                    "WHERE EXCLUDED.first_seen < incident_hosts.first_seen",
                    (incident_id, incident_id, [h for h, _ in hosts], [f for _, f in hosts]),
                )
            return incident_id

    async def live(self, reopen_window_s: float, triggers_per_incident: int = 500) -> Rows:
        """Incidents the correlator must remember across a restart, each with its trigger rows."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM incidents WHERE status IN ('open', 'acknowledged') OR (status = 'resolved' "
                "AND resolved_at > now() - make_interval(secs => %s)) ORDER BY id",
                (reopen_window_s,),
            )
            rows = await cur.fetchall()
            for r in rows:
                await cur.execute(
                    "SELECT * FROM triggers WHERE incident_id = %s ORDER BY first_seen DESC LIMIT %s",
                    (r["id"], triggers_per_incident),
                )
                r["trigger_rows"] = await cur.fetchall()
                await cur.execute("SELECT host, first_seen FROM incident_hosts WHERE incident_id = %s", (r["id"],))
                r["hosts"] = {h["host"]: h["first_seen"] for h in await cur.fetchall()}
            return rows

    async def unassigned_triggers(self, since_s: float, limit: int = 5000) -> Rows:
        """Triggers recorded lately that no incident holds (a crash between record and correlate)."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT * FROM triggers WHERE incident_id IS NULL AND recorded_at > now() - "
                "make_interval(secs => %s) ORDER BY first_seen LIMIT %s",
                (since_s, limit),
            )
            return await cur.fetchall()

    async def statuses(self, ids: Sequence[int]) -> dict[int, str]:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT id, status FROM incidents WHERE id = ANY(%s)", (list(ids),))
            return {int(i): s for i, s in await cur.fetchall()}

    async def link_missing(self, pairs: Sequence[tuple[str, int]]) -> int:
        """Link triggers that reached the database after their incident was saved (spooled in an outage)."""
        if not pairs:
            return 0
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE triggers SET incident_id = v.inc FROM (SELECT unnest(%s::text[]) AS id, "
                "unnest(%s::bigint[]) AS inc) v WHERE triggers.id = v.id AND triggers.incident_id IS NULL",
                ([p[0] for p in pairs], [p[1] for p in pairs]),
            )
            return cur.rowcount
