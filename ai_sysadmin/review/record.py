"""Where reviews and their findings are written (PostgreSQL), and the replay's stand-in."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool


class ReviewSink(Protocol):
    async def record(self, review: dict[str, Any]) -> int | None: ...

    async def last(self) -> dict[str, Any] | None: ...


class PgReviewSink:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def record(self, review: dict[str, Any]) -> int | None:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO reviews (started_at, finished_at, reason, outcome, status, error, attempts, model, "
                "prompt_tokens, cached_tokens, completion_tokens, context_tokens, latency_s, incident_ids, answer) "
                "VALUES (%(started_at)s, %(finished_at)s, %(reason)s, %(outcome)s, %(status)s, %(error)s, "
                "%(attempts)s, %(model)s, %(prompt_tokens)s, %(cached_tokens)s, %(completion_tokens)s, "
                "%(context_tokens)s, %(latency_s)s, %(incident_ids)s, %(answer)s) RETURNING id",
                {**review, "answer": Jsonb(review.get("answer")) if review.get("answer") is not None else None})
            review_id = int((await cur.fetchone())[0])  # type: ignore[index]
            for f in review.get("findings", []):
                cur = await conn.execute(
                    "INSERT INTO findings (incident_id, layer, severity, title, detail, review_id, category, advice) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (f.get("incident"), f["layer"], f["severity"], f["summary"][:500],
                     Jsonb({"evidence": f.get("evidence", []), "advice": f.get("advice", [])}), review_id,
                     f.get("category"), "\n".join(f.get("advice") or []) or None))
                f["id"] = int((await cur.fetchone())[0])  # type: ignore[index]
            return review_id

    async def last(self) -> dict[str, Any] | None:
        from psycopg.rows import dict_row

        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT id, started_at, finished_at, reason, outcome, status, error, attempts, "
                              "prompt_tokens, cached_tokens, completion_tokens, context_tokens, latency_s "
                              "FROM reviews ORDER BY id DESC LIMIT 1")
            return await cur.fetchone()


class MemoryReviewSink:
    """Replay and tests: keeps reviews in memory, numbered from 1."""

    def __init__(self) -> None:
        self.reviews: list[dict[str, Any]] = []
        self._finding = 0

    async def record(self, review: dict[str, Any]) -> int | None:
        self.reviews.append(review)
        for f in review.get("findings", []):
            self._finding += 1
            f["id"] = self._finding
        return len(self.reviews)

    async def last(self) -> dict[str, Any] | None:
        return self.reviews[-1] if self.reviews else None


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
