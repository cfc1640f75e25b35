"""Records PostgreSQL refused, kept aside with the reason so they never block the stream.

Text is sanitised before it reaches the database (ai_sysadmin.sanitize), so a refusal
should not happen; when one does (a constraint, a value the server cannot take) the
record must neither stop L1 nor block the outage spool forever.  Both write paths --
a batch written directly and a batch flushed from the spool -- hand the refused
record here and carry on (the journal cursor still advances with the rest of its
batch).  One mechanism, one place to look:

    <state_dir>/quarantine/records.jsonl   one JSON object per line:
        {"at": ..., "kind": "trigger", "batch_id": ..., "reason": ..., "record": {...}}

Each line is written with one `write` and fsync'd; a failed write is cut back, so a
line is either whole or absent.  Lines are JSON with ASCII escapes, so even a record
holding NUL bytes or lone surrogates is stored losslessly.  The file is bounded: past
`max_bytes` it is rotated once to `records.1.jsonl` (the older one is dropped).

`doctor` and `status` read `QuarantineState` (`read_state` never creates anything);
the service also logs every quarantined record and counts them on /metrics.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from ai_sysadmin.store.spool import append_whole

log = logging.getLogger(__name__)

FILE = "records.jsonl"
OLD_FILE = "records.1.jsonl"
MAX_RECORD = 1 << 20  # one quarantined record is cut to this many bytes of JSON (with a note)
DEFAULT_MAX_BYTES = 64 << 20


def directory(state_dir: str) -> str:
    return os.path.join(state_dir, "quarantine")


@dataclass(frozen=True)
class QuarantineState:
    records: int
    bytes: int
    last_at: str | None = None
    last_kind: str | None = None
    last_reason: str | None = None

    def describe(self) -> str:
        if not self.records:
            return "no quarantined records"
        return f"{self.records} quarantined record(s); last {self.last_kind} at {self.last_at}: {self.last_reason}"


class Quarantine:
    """Thread-safe; blocking file I/O (call through asyncio.to_thread from async code)."""

    def __init__(
        self,
        dir_path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        registry: CollectorRegistry | None = None,
    ):
        self.dir = Path(dir_path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._counter = (
            Counter(
                "ai_sysadmin_quarantined_records", "Records PostgreSQL refused, kept aside", ["kind"], registry=registry
            )
            if registry is not None
            else None
        )

    @property
    def path(self) -> Path:
        return self.dir / FILE

    def put(self, kind: str, record: Any, reason: str, *, batch_id: str | None = None) -> str:
        """Durably keep `record` with `reason`; returns the file it went to."""
        reason = " ".join(str(reason).split())[:500]
        doc = {
            "at": datetime.now(UTC).isoformat(),
            "kind": kind,
            "batch_id": batch_id,
            "reason": reason,
            "record": record,
        }
        line = json.dumps(doc, ensure_ascii=True, default=str)
        if len(line) > MAX_RECORD:
            doc["record"] = {"truncated": True, "json_head": line[: MAX_RECORD // 2]}
            line = json.dumps(doc, ensure_ascii=True)
        data = line.encode() + b"\n"
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
            try:
                if self.path.stat().st_size + len(data) > self.max_bytes:
                    os.replace(self.path, self.dir / OLD_FILE)
            except FileNotFoundError:
                pass
            append_whole(self.path, data)
        if self._counter is not None:
            self._counter.labels(kind=kind).inc()
        log.error("PostgreSQL refused a %s record (%s); quarantined in %s", kind, reason, self.path)
        return str(self.path)

    def state(self) -> QuarantineState:
        return read_state(self.dir)

    def records(self) -> list[dict[str, Any]]:
        """Every quarantined record still kept, oldest first (for tests and inspection)."""
        out: list[dict[str, Any]] = []
        for name in (OLD_FILE, FILE):
            try:
                raw = (self.dir / name).read_bytes()
            except FileNotFoundError:
                continue
            for line in raw.splitlines():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


def read_state(dir_path: str | os.PathLike[str]) -> QuarantineState:
    """Count and last record, read-only (a missing directory is an empty quarantine)."""
    d = Path(dir_path)
    records = size = 0
    last: dict[str, Any] | None = None
    for name in (OLD_FILE, FILE):
        try:
            raw = (d / name).read_bytes()
        except (FileNotFoundError, PermissionError):
            continue
        size += len(raw)
        lines = raw.splitlines()
        records += sum(1 for ln in lines if ln.strip())
        for ln in reversed(lines):
            try:
                last = json.loads(ln)
                break
            except ValueError:
                continue
    if last is None:
        return QuarantineState(records, size)
    return QuarantineState(records, size, last.get("at"), last.get("kind"), last.get("reason"))
