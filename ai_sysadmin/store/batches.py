"""How each kind of batch is written to PostgreSQL (one function per kind).

The writer calls these inside one transaction, after it has recorded the batch id
in `ingest_batches`, so whatever an applier writes happens exactly once even when
the same batch is replayed from the spool.  Payloads are plain JSON (they may have
waited in the spool), produced by the store's typed front ends.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import psycopg
from psycopg.types.json import Jsonb

from ai_sysadmin.store.partitions import MetricPartitions
from ai_sysadmin.trigger.model import MAX_SAMPLES, SEVERITIES

Applier = Callable[[psycopg.AsyncConnection, dict[str, Any]], Awaitable[None]]

_SEVERITY_ORDER = "ARRAY[" + ", ".join(f"'{s}'" for s in reversed(SEVERITIES)) + "]"  # info .. critical

# `count` adds up: every record carries the occurrences seen since the caller's previous
# record of that id (a journal cursor advances with it, so nothing is counted twice).
# Severity only rises; samples keep the newest MAX_SAMPLES lines.
UPSERT_TRIGGER = f"""
INSERT INTO triggers (id, severity, category, source, unit, template, template_id, count,
                      first_seen, last_seen, sample, summary, host, boot_id, fields)
VALUES (%(id)s, %(severity)s, %(category)s, %(source)s, %(unit)s, %(template)s, %(template_id)s, %(count)s,
        %(first_seen)s, %(last_seen)s, %(sample)s, %(summary)s, %(host)s, %(boot_id)s, %(fields)s)
ON CONFLICT (id) DO UPDATE SET
    count = triggers.count + EXCLUDED.count,
    first_seen = LEAST(triggers.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(triggers.last_seen, EXCLUDED.last_seen),
    severity = CASE WHEN array_position({_SEVERITY_ORDER}, EXCLUDED.severity)
                         > array_position({_SEVERITY_ORDER}, triggers.severity)
                    THEN EXCLUDED.severity ELSE triggers.severity END,
    category = EXCLUDED.category,
    sample = (SELECT coalesce(jsonb_agg(e.v ORDER BY e.n), '[]'::jsonb) FROM (
                SELECT a.v, a.n FROM jsonb_array_elements(triggers.sample || EXCLUDED.sample)
                    WITH ORDINALITY AS a(v, n)
                ORDER BY a.n DESC LIMIT {MAX_SAMPLES}) e),
    summary = coalesce(EXCLUDED.summary, triggers.summary),
    host = coalesce(EXCLUDED.host, triggers.host),
    boot_id = coalesce(EXCLUDED.boot_id, triggers.boot_id),
    fields = triggers.fields || EXCLUDED.fields
"""

SAVE_CURSOR = """
INSERT INTO cursors (stream, cursor, updated_at) VALUES (%s, %s, now())
ON CONFLICT (stream) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at
"""


async def apply_triggers(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
    rows = [
        {**t, "first_seen": datetime.fromisoformat(t["first_seen"]), "last_seen": datetime.fromisoformat(t["last_seen"]),
         "sample": Jsonb(list(t.get("sample") or [])[-MAX_SAMPLES:]), "fields": Jsonb(t.get("fields") or {})}
        for t in payload["triggers"]
    ]
    async with conn.cursor() as cur:
        if rows:
            await cur.executemany(UPSERT_TRIGGER, rows)
        if payload.get("cursor") is not None:
            await cur.execute(SAVE_CURSOR, (payload.get("stream", "journal"), payload["cursor"]))


def metrics_applier(partitions: MetricPartitions) -> Applier:
    """rows: [epoch_seconds, name, subject, value]; daily partitions first, then one COPY."""

    async def apply_metrics(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
        rows = [(datetime.fromtimestamp(ts, timezone.utc), name, subject or "", float(value))
                for ts, name, subject, value in payload["rows"]]
        if not rows:
            return
        await partitions.ensure(conn, {r[0].date() for r in rows})
        async with conn.cursor() as cur:
            async with cur.copy("COPY metrics (ts, name, subject, value) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)

    return apply_metrics


async def apply_audit(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO audit_log (at, actor, event, subject, detail) VALUES (%s, %s, %s, %s, %s)",
        (datetime.fromisoformat(payload["at"]), payload["actor"], payload["event"], payload.get("subject"),
         Jsonb(payload.get("detail") or {})))


async def apply_llm_calls(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO llm_calls (at, role, model, kind, prompt_tokens, completion_tokens, latency_s, outcome)"
            " VALUES (%(at)s, %(role)s, %(model)s, %(kind)s, %(prompt_tokens)s, %(completion_tokens)s,"
            " %(latency_s)s, %(outcome)s)",
            [{**c, "at": datetime.fromisoformat(c["at"])} for c in payload["calls"]])


def default_appliers(partitions: MetricPartitions) -> dict[str, Applier]:
    return {"triggers": apply_triggers, "metrics": metrics_applier(partitions), "audit": apply_audit,
            "llm_calls": apply_llm_calls}
