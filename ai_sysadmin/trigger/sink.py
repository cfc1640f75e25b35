"""Where L1 hands its triggers: the seam between the trigger pipeline and storage.

`TriggerSink` is the contract the PostgreSQL store implements (ai_sysadmin/store), and
every sink L1 is given (the incidents' TriggerTap, `JsonlTriggerSink`, a bench's timing
sink) implements all of it: the follower calls it as written, without probing.
Semantics the pipeline relies on:

* Each trigger passed carries the occurrences since the caller's previous record of the
  same id; `record_triggers` upserts by `Trigger.id` and *adds* the count (first/last
  seen widen, severity only rises, the newest samples are kept).  Ids are deterministic
  (template, unit, aligned window, source), so entries read again after a restart land
  on the same row.
* The cursor of `stream` is stored in the same transaction as the triggers (or spooled
  durably together with them when the database is down): after `record_triggers`
  returns, both survive a crash, and one never survives without the other.  The cursor
  is that of the last entry the batch covers, so a restart counts each entry once.
* `cursor=None` means "no safe cursor yet" and must not overwrite a stored cursor.
* `checkpoint` (L1 only) is the number of the checkpoint state file that goes with the
  cursor (trigger/checkpoints.py); it is stored with the cursor, atomically, and
  `load_position` returns both.

`JsonlTriggerSink` is a small durable implementation for tests and hosts run without a
database: one fsync'd JSON line per batch, merged by id the same way when read back.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from ai_sysadmin.trigger.model import MAX_SAMPLES, SEVERITY_RANK, Trigger


@runtime_checkable
class TriggerSink(Protocol):
    async def record_triggers(
        self, triggers: Sequence[Trigger], cursor: str | None, stream: str = "journal", *, checkpoint: int | None = None
    ) -> None:
        """Atomically upsert triggers by Trigger.id (count/last_seen/sample updated, never duplicated) and
        persist the cursor of `stream` (with `checkpoint`) in the same transaction (or spool durably)."""
        ...

    async def load_cursor(self, stream: str = "journal") -> str | None: ...

    async def load_position(self, stream: str = "journal") -> tuple[str | None, int | None]: ...


class JsonlTriggerSink:
    """Append-only JSON lines: {"stream", "cursor", "triggers": [...]}, fsync'd per batch.

    A kill -9 can leave a torn last line; it is ignored on load, and since the cursor
    travels in the same line, the entries behind it are simply read again.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._terminate_torn_line()

    def _terminate_torn_line(self) -> None:
        # A torn last line must not swallow the next batch appended after it.
        try:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        except (FileNotFoundError, OSError):
            return
        if torn:
            self._append(b"\n")

    async def record_triggers(
        self, triggers: Sequence[Trigger], cursor: str | None, stream: str = "journal", *, checkpoint: int | None = None
    ) -> None:
        line = (
            json.dumps(
                {
                    "stream": stream,
                    "cursor": cursor,
                    "checkpoint": checkpoint,
                    "triggers": [t.to_json() for t in triggers],
                },
                separators=(",", ":"),
            )
            + "\n"
        )
        await asyncio.to_thread(self._append, line.encode())

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def load_cursor(self, stream: str = "journal") -> str | None:
        return (await self.load_position(stream))[0]

    async def load_position(self, stream: str = "journal") -> tuple[str | None, int | None]:
        return (await asyncio.to_thread(self._load))[1].get(stream, (None, None))

    def triggers(self) -> dict[str, Trigger]:
        """Every trigger recorded, merged by id as the PostgreSQL store merges them."""
        return self._load()[0]

    def _load(self) -> tuple[dict[str, Trigger], dict[str, tuple[str, int | None]]]:
        triggers: dict[str, Trigger] = {}
        cursors: dict[str, tuple[str, int | None]] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return triggers, cursors
        for raw in data.split(b"\n"):
            if not raw:
                continue
            try:
                batch = json.loads(raw)
            except ValueError:
                continue  # a torn final write from a crash: its cursor was never committed
            for t in batch.get("triggers", []):
                new = Trigger.from_json(t)
                old = triggers.get(new.id)
                triggers[new.id] = new if old is None else merge(old, new)
            if batch.get("cursor") is not None:
                cursors[batch.get("stream", "journal")] = (batch["cursor"], batch.get("checkpoint"))
        return triggers, cursors


def merge(old: Trigger, new: Trigger) -> Trigger:
    """The store's upsert rule: counts add, times widen, severity only rises, newest samples."""
    severity = old.severity if SEVERITY_RANK[old.severity] >= SEVERITY_RANK[new.severity] else new.severity
    return replace(
        new,
        severity=severity,
        count=old.count + new.count,
        first_seen=min(old.first_seen, new.first_seen),
        last_seen=max(old.last_seen, new.last_seen),
        sample=(list(old.sample) + list(new.sample))[-MAX_SAMPLES:],
        summary=new.summary if new.summary is not None else old.summary,
    )
