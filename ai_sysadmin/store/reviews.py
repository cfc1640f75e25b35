"""`reviews` rows: one per L2 review run, with its findings (store/findings.py)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ai_sysadmin.store import findings

SUMMARY_COLUMNS = (
    "id, started_at, finished_at, reason, outcome, status, error, attempts, "
    "prompt_tokens, cached_tokens, completion_tokens, context_tokens, latency_s"
)


async def insert(conn: psycopg.AsyncConnection, review: dict[str, Any]) -> int:
    """The review and its findings in one transaction; sets each finding's `id`; the review's id."""
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO reviews (started_at, finished_at, reason, outcome, status, error, attempts, model, "
            "prompt_tokens, cached_tokens, completion_tokens, context_tokens, latency_s, incident_ids, answer) "
            "VALUES (%(started_at)s, %(finished_at)s, %(reason)s, %(outcome)s, %(status)s, %(error)s, "
            "%(attempts)s, %(model)s, %(prompt_tokens)s, %(cached_tokens)s, %(completion_tokens)s, "
            "%(context_tokens)s, %(latency_s)s, %(incident_ids)s, %(answer)s) RETURNING id",
            {**review, "answer": Jsonb(review.get("answer")) if review.get("answer") is not None else None},
        )
        review_id = int((await cur.fetchone())[0])  # type: ignore[index]
        for f in review.get("findings", []):
            f["id"] = await findings.insert_reviewed(
                conn,
                review_id,
                f.get("incident"),
                f["layer"],
                f["severity"],
                f["summary"][:500],
                {"evidence": f.get("evidence", []), "advice": f.get("advice", [])},
                f.get("category"),
                "\n".join(f.get("advice") or []) or None,
            )
    return review_id


async def last(conn: psycopg.AsyncConnection) -> dict[str, Any] | None:
    """The latest review's outcome and accounting (not its answer)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {SUMMARY_COLUMNS} FROM reviews ORDER BY id DESC LIMIT 1")
    return await cur.fetchone()
