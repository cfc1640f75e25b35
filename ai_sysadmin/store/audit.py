"""The append-only audit trail: every decision and action step, never lost in an outage.

Two ways in: `AuditLog.record` goes through the writer (stored, or spooled while the
database is away); `insert` writes one row on the caller's connection, inside its
transaction, so an audit row commits or rolls back with the change it records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from ai_sysadmin.store.spool import Batch

if TYPE_CHECKING:  # the writer imports the batch appliers, which import `insert`
    from ai_sysadmin.store.writer import StoreWriter

INSERT = "INSERT INTO audit_log (at, actor, event, subject, detail) VALUES (%s, %s, %s, %s, %s)"


async def insert(
    conn: psycopg.AsyncConnection, at: datetime, actor: str, event: str, subject: str | None, detail: dict[str, Any]
) -> None:
    """One audit row on `conn` (the caller's transaction, under the caller's role)."""
    await conn.execute(INSERT, (at, actor, event, subject, Jsonb(detail)))


class AuditLog:
    def __init__(self, writer: StoreWriter):
        self._writer = writer

    async def record(
        self,
        actor: str,
        event: str,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> str:
        """Stored or durably spooled before this returns ('stored' | 'spooled')."""
        if not actor or not event:
            raise ValueError("audit record needs an actor and an event")
        at = at or datetime.now(UTC)
        return await self._writer.submit(
            Batch(
                "audit",
                {"at": at.isoformat(), "actor": actor, "event": event, "subject": subject, "detail": detail or {}},
            )
        )
