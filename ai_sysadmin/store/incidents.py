"""Incidents: triggers grouped into one problem with a status, and what was found and done."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

STATUSES = ("open", "acknowledged", "resolved", "closed")


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


async def reopen(conn: Any, incident_id: int, at: datetime) -> None:
    """Open an incident again on the caller's connection (an action meant to fix it failed)."""
    await conn.execute(
        "UPDATE incidents SET status = 'open', resolved_at = NULL, updated_at = %s WHERE id = %s", (at, incident_id)
    )


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

    async def list(self, status: str | None = None, limit: int = 50) -> Rows:
        q = (
            "SELECT i.id, i.title, i.status, i.severity, i.category, i.unit, i.opened_at, i.updated_at, "
            "(SELECT count(*) FROM triggers t WHERE t.incident_id = i.id) AS triggers FROM incidents i"
        )
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
            await cur.execute(
                "SELECT id, severity, category, source, unit, template, count, first_seen, last_seen, "
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
                "SELECT id, action, params, risk, status, created_at, updated_at FROM actions "
                "WHERE incident_id = %s ORDER BY id",
                (incident_id,),
            )
            incident["actions"] = await cur.fetchall()
            return incident

    # ------------------------------------------------------------------ the correlator's side (issue 12)

    async def save_correlated(self, inc: dict[str, Any], trigger_ids: Sequence[str], *, status_changed: bool) -> int:
        """Insert (inc['id'] is None) or update one correlated incident and link its triggers.

        The status is written only when the correlator changed it, so an acknowledgement a
        person made meanwhile is not overwritten by a mere update.
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
                    "INSERT INTO incidents (title, severity, category, unit, units, confidence, first_trigger_at, "
                    "last_trigger_at, reopened, status, resolved_at, resolved_reason, candidate_actions) VALUES "
                    "(%(title)s, %(severity)s, %(category)s, %(unit)s, %(units)s, %(confidence)s, "
                    "%(first_trigger_at)s, %(last_trigger_at)s, %(reopened)s, %(status)s, %(resolved_at)s, "
                    "%(resolved_reason)s, %(candidate_actions)s) RETURNING id",
                    {
                        **cols,
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
