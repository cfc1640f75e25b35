"""What the hub's database holds of one host: host-filtered reads for the investigation of a
member's incident (meta.tools.member.MemberHost, docs/fleet.md).

Every query names its host: a member's investigation never sees the hub's or another
member's rows.  The shapes are those of meta.tools.facts.HostFacts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

# Per bucket, as meta.tools.metrics offers them (the tool validates the name).
AGGREGATES = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "last": "(array_agg(value ORDER BY ts DESC))[1]",
}


async def metric_series(conn: Any, host: str, since_s: int) -> list[tuple[Any, ...]]:
    """(name, subject, samples, min, max, last) of each of `host`'s series since `since_s` seconds ago."""
    since = datetime.now(UTC) - timedelta(seconds=since_s)
    cur = await conn.execute(
        "SELECT name, subject, count(*), min(value), max(value), (array_agg(value ORDER BY ts DESC))[1] "
        "FROM metrics WHERE host = %s AND ts >= %s GROUP BY name, subject ORDER BY name, subject LIMIT 500",
        (host, since),
    )
    return list(await cur.fetchall())


async def metric_points(
    conn: Any, host: str, name: str, subject: str | None, since_s: int, step_s: int, aggregate: str
) -> list[tuple[Any, ...]]:
    """(bucket, subject, value, samples) of `host`'s series `name`, bucketed by `step_s`."""
    now = datetime.now(UTC)
    agg = AGGREGATES[aggregate]
    q = (
        f"SELECT date_bin(%s::interval, ts, timestamptz '2000-01-01') AS bucket, subject, {agg}, count(*) "
        "FROM metrics WHERE host = %s AND name = %s AND ts >= %s AND ts <= %s"
    )
    params: list[Any] = [timedelta(seconds=step_s), host, name, now - timedelta(seconds=since_s), now]
    if subject is not None:
        q += " AND subject = %s"
        params.append(subject)
    q += " GROUP BY bucket, subject ORDER BY subject, bucket LIMIT 2000"
    cur = await conn.execute(q, params)
    return list(await cur.fetchall())


async def newest_by_subject(conn: Any, host: str, names: Sequence[str], max_age: float) -> dict[str, dict[str, float]]:
    """name -> subject -> `host`'s newest value within `max_age` seconds (e.g. disk.used_percent per mount)."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (name, subject) name, subject, value FROM metrics "
        "WHERE host = %s AND name = ANY(%s) AND ts > now() - make_interval(secs => %s) "
        "ORDER BY name, subject, ts DESC",
        (host, list(names), max_age),
    )
    out: dict[str, dict[str, float]] = {}
    for name, subject, value in await cur.fetchall():
        out.setdefault(name, {})[subject] = float(value)
    return out


async def trigger_templates(
    conn: Any, host: str | None, unit: str | None, severities: Sequence[str] | None, since_s: int, limit: int
) -> list[tuple[Any, ...]]:
    """(template_id, template, unit, severity, category, total, last_seen, [ids]) of `host`'s
    triggers (None: every host's, the live host's tool on a standalone database)."""
    q = (
        "SELECT template_id, min(template), unit, max(severity), min(category), sum(count), max(last_seen), "
        "(array_agg(id ORDER BY last_seen DESC))[1:3] FROM triggers WHERE last_seen >= %s"
    )
    params: list[Any] = [datetime.now(UTC) - timedelta(seconds=since_s)]
    if host is not None:
        q += " AND host = %s"
        params.append(host)
    if unit is not None:
        q += " AND unit = %s"
        params.append(unit)
    if severities is not None:
        q += " AND severity = ANY(%s)"
        params.append(list(severities))
    q += " GROUP BY template_id, unit ORDER BY max(last_seen) DESC LIMIT %s"
    params.append(limit)
    cur = await conn.execute(q, params)
    return list(await cur.fetchall())
