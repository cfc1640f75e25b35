"""Where reviews and their findings are written (PostgreSQL), and the replay's stand-in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.store import reviews


class ReviewSink(Protocol):
    async def record(self, review: dict[str, Any]) -> int | None: ...

    async def last(self) -> dict[str, Any] | None: ...


class PgReviewSink:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def record(self, review: dict[str, Any]) -> int | None:
        async with self._pool.connection() as conn:
            return await reviews.insert(conn, review)

    async def last(self) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            return await reviews.last(conn)


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
    return datetime.now(UTC)
