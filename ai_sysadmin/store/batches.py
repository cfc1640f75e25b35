"""How each kind of batch is written to PostgreSQL (one function per kind).

The writer calls these inside one transaction, after it has recorded the batch id
in `ingest_batches`, so whatever an applier writes happens exactly once even when
the same batch is replayed from the spool.  Payloads are plain JSON (they may have
waited in the spool), produced by the store's typed front ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ai_sysadmin.sanitize import clean_json, clean_optional, clean_text
from ai_sysadmin.store import audit
from ai_sysadmin.store.partitions import MetricPartitions
from ai_sysadmin.trigger.model import MAX_SAMPLES, SEVERITIES

# An applier may return a callback to run once the transaction has committed (e.g. "these
# partitions now exist"): state about the database must not run ahead of a rollback.
AfterCommit = Callable[[], None]
Applier = Callable[[psycopg.AsyncConnection, dict[str, Any]], Awaitable[AfterCommit | None]]
# The careful variant of an applier: every record in its own savepoint; a record the
# database refuses is handed to `refuse(record, reason)` and the rest (and the cursor) go in.
Refuse = Callable[[str, Any, str], None]  # (record kind, record, reason)
CarefulApplier = Callable[[psycopg.AsyncConnection, dict[str, Any], Refuse], Awaitable[AfterCommit | None]]

# Bounds of stored text fields (characters, after escaping).
UNIT_CHARS, TEMPLATE_CHARS, SAMPLE_CHARS, SUMMARY_CHARS, FIELD_CHARS = 512, 4096, 2048, 1000, 1024


def is_refusal(exc: BaseException) -> bool:
    """The database (or the driver, adapting a value) refused this data; retrying cannot help."""
    return isinstance(
        exc,
        (
            psycopg.DataError,
            psycopg.IntegrityError,
            psycopg.errors.ProgramLimitExceeded,
            UnicodeError,
            ValueError,
            TypeError,
            OverflowError,
        ),
    )


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
    -- a trigger's text is proven (its `sender`) only while every record of it agrees (trigger/entry.py)
    fields = CASE WHEN triggers.fields->>'sender' IS NOT DISTINCT FROM EXCLUDED.fields->>'sender'
                  THEN triggers.fields || EXCLUDED.fields
                  ELSE (triggers.fields || EXCLUDED.fields) - 'sender' END
"""

SAVE_CURSOR = """
INSERT INTO cursors (stream, cursor, checkpoint, updated_at) VALUES (%s, %s, %s, now())
ON CONFLICT (stream) DO UPDATE SET cursor = EXCLUDED.cursor, checkpoint = EXCLUDED.checkpoint,
    updated_at = EXCLUDED.updated_at
"""


def trigger_row(t: dict[str, Any]) -> dict[str, Any]:
    """One trigger as SQL parameters, every text sanitised (NUL and controls escaped, bounded)."""
    return {
        "id": t["id"],
        "severity": t["severity"],
        "category": t["category"],
        "source": clean_text(t["source"], UNIT_CHARS),
        "unit": clean_optional(t.get("unit"), UNIT_CHARS),
        "template": clean_text(t["template"], TEMPLATE_CHARS),
        "template_id": clean_text(t["template_id"], 64),
        "count": t["count"],
        "first_seen": datetime.fromisoformat(t["first_seen"]),
        "last_seen": datetime.fromisoformat(t["last_seen"]),
        "sample": Jsonb([clean_text(s, SAMPLE_CHARS) for s in list(t.get("sample") or [])[-MAX_SAMPLES:]]),
        "summary": clean_optional(t.get("summary"), SUMMARY_CHARS),
        "host": clean_optional(t.get("host"), 255),
        "boot_id": clean_optional(t.get("boot_id"), 64),
        "fields": Jsonb(clean_json(t.get("fields") or {}, FIELD_CHARS)),
    }


async def _save_cursor(cur: psycopg.AsyncCursor, payload: dict[str, Any]) -> None:
    if payload.get("cursor") is not None:
        await cur.execute(SAVE_CURSOR, (payload.get("stream", "journal"), payload["cursor"], payload.get("checkpoint")))


async def apply_triggers(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
    rows = [trigger_row(t) for t in payload["triggers"]]
    async with conn.cursor() as cur:
        if rows:
            await cur.executemany(UPSERT_TRIGGER, rows)
        await _save_cursor(cur, payload)


async def apply_triggers_carefully(conn: psycopg.AsyncConnection, payload: dict[str, Any], refuse: Refuse) -> None:
    """Like apply_triggers, one savepoint per trigger: a refused one is set aside, the cursor still moves."""
    async with conn.cursor() as cur:
        for t in payload["triggers"]:
            try:
                async with conn.transaction():
                    await cur.execute(UPSERT_TRIGGER, trigger_row(t))
            except Exception as exc:
                if not is_refusal(exc):
                    raise
                refuse("trigger", t, f"{type(exc).__name__}: {exc}")
        await _save_cursor(cur, payload)


def metrics_applier(partitions: MetricPartitions) -> Applier:
    """rows: [epoch_seconds, name, subject, value]; daily partitions first, then one COPY."""

    async def apply_metrics(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> AfterCommit | None:
        rows = [
            (datetime.fromtimestamp(ts, UTC), clean_text(name, 200), clean_text(subject or "", 512), float(value))
            for ts, name, subject, value in payload["rows"]
        ]
        if not rows:
            return None
        created = await partitions.ensure(conn, {r[0].date() for r in rows})
        async with conn.cursor() as cur, cur.copy("COPY metrics (ts, name, subject, value) FROM STDIN") as copy:
            for row in rows:
                await copy.write_row(row)
        return lambda: partitions.mark_known(created)

    return apply_metrics


async def apply_audit(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
    await audit.insert(
        conn,
        datetime.fromisoformat(payload["at"]),
        clean_text(payload["actor"], 200),
        clean_text(payload["event"], 200),
        clean_optional(payload.get("subject")),
        clean_json(payload.get("detail") or {}),
    )


def _llm_row(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": datetime.fromisoformat(c["at"]),
        "role": clean_text(c["role"], 64),
        "model": clean_text(c["model"], 200),
        "kind": clean_text(c["kind"], 32),
        "prompt_tokens": int(c["prompt_tokens"]),
        "completion_tokens": int(c["completion_tokens"]),
        "latency_s": float(c["latency_s"]),
        "outcome": clean_text(c["outcome"], 32),
        "layer": clean_optional(c.get("layer"), 64),
        "incident_id": c.get("incident_id"),
    }


INSERT_LLM_CALL = (
    "INSERT INTO llm_calls (at, role, model, kind, prompt_tokens, completion_tokens, latency_s, outcome, layer,"
    " incident_id) VALUES (%(at)s, %(role)s, %(model)s, %(kind)s, %(prompt_tokens)s, %(completion_tokens)s,"
    " %(latency_s)s, %(outcome)s, %(layer)s, %(incident_id)s)"
)


async def apply_llm_calls(conn: psycopg.AsyncConnection, payload: dict[str, Any]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(INSERT_LLM_CALL, [_llm_row(c) for c in payload["calls"]])


def default_appliers(partitions: MetricPartitions) -> dict[str, Applier]:
    return {
        "triggers": apply_triggers,
        "metrics": metrics_applier(partitions),
        "audit": apply_audit,
        "llm_calls": apply_llm_calls,
    }


def careful_appliers() -> dict[str, CarefulApplier]:
    """Kinds whose batches can be split per record; others are quarantined whole."""
    return {"triggers": apply_triggers_carefully}
