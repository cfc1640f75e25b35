"""The trigger sink: where L1 (and the collector's thresholds) put `Trigger`s.

Semantics L1 relies on:
* `record_triggers(triggers, cursor)` upserts by `Trigger.id` and stores the cursor
  in the same transaction.  `count` is *added*: each call carries the occurrences seen
  since the caller's previous record of that id (the cursor moves with it, so after a
  crash the lines past the stored cursor are counted once more -- and only those).
  `first_seen`/`last_seen` widen, severity only rises, samples keep the newest five.
* When PostgreSQL is unreachable the batch (with its cursor) is fsync'd to the outage
  spool before the call returns, so the caller may advance; it is applied exactly once
  when the database returns.  Only a failing disk raises (`SpoolFull`).
* `load_cursor()` answers from the spool when it holds a newer cursor, else from the
  database, else (database down at start) from the spool's mirror of the last commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ai_sysadmin.store.db import is_unreachable
from ai_sysadmin.store.spool import Batch
from ai_sysadmin.store.writer import StoreWriter
from ai_sysadmin.trigger.model import Trigger


class PgTriggerStore:
    def __init__(self, writer: StoreWriter):
        self._writer = writer

    async def record_triggers(
        self, triggers: Sequence[Trigger], cursor: str | None, stream: str = "journal", *, checkpoint: int | None = None
    ) -> None:
        for t in triggers:
            _check_aware(t)
        payload: dict[str, Any] = {"stream": stream, "cursor": cursor, "triggers": [t.to_json() for t in triggers]}
        if checkpoint is not None:
            payload["checkpoint"] = checkpoint
        await self._writer.submit(Batch("triggers", payload))

    async def load_cursor(self, stream: str = "journal") -> str | None:
        return (await self.load_position(stream))[0]

    async def load_position(self, stream: str = "journal") -> tuple[str | None, int | None]:
        """(cursor, checkpoint number) to resume `stream` from: spool first, then the database, then the mirror."""
        spooled = self._writer.spool.position(stream)
        if spooled is not None:
            return spooled  # newer than anything committed: the spool flushes in order
        try:
            async with self._writer.pool.connection() as conn:
                cur = await conn.execute("SELECT cursor, checkpoint FROM cursors WHERE stream = %s", (stream,))
                row = await cur.fetchone()
                return (row[0], row[1]) if row else (None, None)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            return await asyncio.to_thread(self._writer.spool.mirrored_position, stream)

    async def get(self, trigger_id: str) -> dict[str, Any] | None:
        """One stored trigger as a dict (for the CLI, the API and tests)."""
        from psycopg.rows import dict_row

        async with self._writer.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM triggers WHERE id = %s", (trigger_id,))
            return await cur.fetchone()


def _check_aware(t: Trigger) -> None:
    for name in ("first_seen", "last_seen"):
        value: datetime = getattr(t, name)
        if value.tzinfo is None:
            raise ValueError(f"trigger {t.id}: {name} must be timezone-aware (UTC), got naive {value.isoformat()}")


async def recent(conn: Any, limit: int) -> list[dict[str, Any]]:
    """Trigger rows seen in the last hour, oldest first (`limit` at most)."""
    from psycopg.rows import dict_row

    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM triggers WHERE last_seen > now() - interval '1 hour' ORDER BY last_seen LIMIT %s", (limit,)
    )
    rows: list[dict[str, Any]] = await cur.fetchall()
    return rows


async def severe_since(conn: Any, unit: str, since: datetime) -> int:
    """How many high or critical triggers about `unit` were seen at or after `since`."""
    cur = await conn.execute(
        "SELECT count(*) FROM triggers WHERE unit = %s AND last_seen >= %s AND severity IN ('critical', 'high')",
        (unit, since),
    )
    return int((await cur.fetchone())[0])
