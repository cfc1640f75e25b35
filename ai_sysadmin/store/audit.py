"""The append-only audit trail: every decision and action step, never lost in an outage."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ai_sysadmin.store.spool import Batch
from ai_sysadmin.store.writer import StoreWriter


class AuditLog:
    def __init__(self, writer: StoreWriter):
        self._writer = writer

    async def record(self, actor: str, event: str, subject: str | None = None,
                     detail: dict[str, Any] | None = None, at: datetime | None = None) -> str:
        """Stored or durably spooled before this returns ('stored' | 'spooled')."""
        if not actor or not event:
            raise ValueError("audit record needs an actor and an event")
        at = at or datetime.now(timezone.utc)
        return await self._writer.submit(Batch("audit", {
            "at": at.isoformat(), "actor": actor, "event": event, "subject": subject, "detail": detail or {}}))
