"""The outage spool: a bounded, fsync'd, append-only queue of batches in the state dir.

While PostgreSQL is unreachable every batch (triggers with their journal cursor,
metrics, audit records, LLM call accounting) is appended here and flushed in order
when the database returns (store.writer).  Layout: numbered segment files

    <dir>/000000000042-events.jsonl    triggers and audit records: never dropped
    <dir>/000000000043-metrics.jsonl   metrics and LLM calls: dropped oldest first

one JSON batch per line, each append fsync'd before it returns, so a batch the
caller was told is spooled survives a crash.  A torn last line (a crash in the
middle of an append, which therefore never returned) is skipped on read.

The bound counts bytes on disk.  When an append would exceed it, whole metrics
segments are removed oldest first; triggers and audit records are never dropped --
if they alone exceed the bound the spool keeps them, reports `over_bound` and logs
an error on every append until the database is back.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from ai_sysadmin.durable import fsync_dir

log = logging.getLogger(__name__)

# Which segment class each batch kind goes to.
KIND_CLASS = {"triggers": "events", "audit": "events", "metrics": "metrics", "llm_calls": "metrics"}
DROPPABLE = "metrics"
_SEGMENT_RE = re.compile(r"^(\d{12})-(events|metrics)\.jsonl$")


@dataclass(frozen=True)
class Batch:
    """One unit of work for the database: applied exactly once, in one transaction."""

    kind: str
    payload: dict[str, Any]
    batch_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def encode(self) -> bytes:
        line = json.dumps({"id": self.batch_id, "kind": self.kind, "payload": self.payload},
                          separators=(",", ":"), ensure_ascii=False)
        return line.encode() + b"\n"


@dataclass(frozen=True)
class Segment:
    seq: int
    cls: str
    path: Path


@dataclass(frozen=True)
class SpoolState:
    records: int
    bytes: int
    max_bytes: int
    fill_ratio: float
    warn_ratio: float
    dropped: dict[str, int]
    over_bound: bool

    @property
    def warning(self) -> bool:
        return self.fill_ratio >= self.warn_ratio or self.over_bound

    def describe(self) -> str:
        text = f"{self.records} batch(es), {self.bytes} of {self.max_bytes} bytes ({self.fill_ratio:.0%})"
        if any(self.dropped.values()):
            text += ", dropped " + ", ".join(f"{n} {k}" for k, n in sorted(self.dropped.items()) if n)
        if self.over_bound:
            text += ", OVER BOUND with triggers/audit records (kept)"
        return text


class SpoolFull(OSError):
    """The disk refused the append: the caller must not advance its cursor."""


class SpoolMetrics:
    """The spool's /metrics series, on a registry the caller owns (no global registry)."""

    def __init__(self, registry: CollectorRegistry):
        self.bytes = Gauge("ai_sysadmin_spool_bytes", "Bytes waiting in the outage spool", registry=registry)
        self.records = Gauge("ai_sysadmin_spool_batches", "Batches waiting in the outage spool", registry=registry)
        self.fill = Gauge("ai_sysadmin_spool_fill_ratio", "Outage spool fill (bytes / bound)", registry=registry)
        self.dropped = Counter("ai_sysadmin_spool_dropped_batches", "Batches dropped from a full spool",
                               ["kind"], registry=registry)
        self.flushed = Counter("ai_sysadmin_spool_flushed_batches", "Batches flushed from the spool to PostgreSQL",
                               registry=registry)


class Spool:
    """Thread-safe; every method does blocking file I/O (call through asyncio.to_thread)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, warn_ratio: float = 0.8,
                 metrics: SpoolMetrics | None = None):
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.warn_ratio = warn_ratio
        # Dropping works per segment, so a segment is a small share of the bound.
        self.segment_bytes = min(4 << 20, max(64 << 10, max_bytes // 16))
        self._metrics = metrics
        self._lock = threading.Lock()
        self._sizes: dict[Path, int] = {}
        self._counts: dict[Path, int] = {}
        self._segments: list[Segment] = []
        self._active: dict[str, Segment] = {}
        self._cursors: dict[str, tuple[int, str]] = {}  # stream -> (segment seq, cursor) of pending batches
        self._dropped = {"metrics": 0, "llm_calls": 0}
        self._warned = False
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._scan()

    # ------------------------------------------------------------------ state

    def _scan(self) -> None:
        for path in sorted(self.dir.iterdir()):
            m = _SEGMENT_RE.match(path.name)
            if not m:
                continue
            seg = Segment(int(m.group(1)), m.group(2), path)
            batches = self._read(seg)
            if not batches:
                path.unlink()
                continue
            self._segments.append(seg)
            self._sizes[path] = path.stat().st_size
            self._counts[path] = len(batches)
            for b in batches:
                self._note_cursor(seg, b)
        if self._segments:
            log.warning("outage spool %s holds %s from an earlier run; flushing when PostgreSQL answers",
                        self.dir, self.state().describe())
        self._publish()

    def _note_cursor(self, seg: Segment, batch: Batch) -> None:
        if batch.kind == "triggers" and batch.payload.get("cursor") is not None:
            self._cursors[batch.payload.get("stream", "journal")] = (seg.seq, batch.payload["cursor"])

    def state(self) -> SpoolState:
        total = sum(self._sizes.values())
        events = sum(self._sizes[s.path] for s in self._segments if s.cls != DROPPABLE)
        return SpoolState(records=sum(self._counts.values()), bytes=total, max_bytes=self.max_bytes,
                          fill_ratio=total / self.max_bytes, warn_ratio=self.warn_ratio,
                          dropped=dict(self._dropped), over_bound=events > self.max_bytes)

    def empty(self) -> bool:
        return not self._segments

    def cursor(self, stream: str) -> str | None:
        """The newest cursor of `stream` still waiting here (newer than the database's)."""
        found = self._cursors.get(stream)
        return found[1] if found else None

    def _publish(self) -> None:
        st = self.state()
        if self._metrics:
            self._metrics.bytes.set(st.bytes)
            self._metrics.records.set(st.records)
            self._metrics.fill.set(st.fill_ratio)
        if st.warning and not self._warned:
            log.warning("outage spool %s is near its bound: %s", self.dir, st.describe())
        elif not st.warning and self._warned:
            log.info("outage spool %s back below its warning level: %s", self.dir, st.describe())
        self._warned = st.warning

    # ------------------------------------------------------------------ writing

    def append(self, batch: Batch) -> bool:
        """Durably append `batch`; False when it was a metrics batch dropped for lack of room."""
        cls = KIND_CLASS[batch.kind]
        data = batch.encode()
        with self._lock:
            if not self._make_room(len(data)) and cls == DROPPABLE:
                self._count_drop(batch.kind, 1)
                self._publish()
                return False
            seg = self._active.get(cls)
            if seg is None or self._sizes[seg.path] >= self.segment_bytes:
                seg = self._new_segment(cls)
            try:
                with open(seg.path, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise SpoolFull(exc.errno, f"outage spool {self.dir}: {exc.strerror}") from exc
            self._sizes[seg.path] += len(data)
            self._counts[seg.path] += 1
            self._note_cursor(seg, batch)
            if self.state().over_bound:
                log.error("outage spool %s exceeds its bound with triggers/audit records alone (%s); "
                          "they are kept -- bring PostgreSQL back", self.dir, self.state().describe())
            self._publish()
            return True

    def _new_segment(self, cls: str) -> Segment:
        seq = (self._segments[-1].seq + 1) if self._segments else 1
        seg = Segment(seq, cls, self.dir / f"{seq:012d}-{cls}.jsonl")
        seg.path.touch()
        fsync_dir(self.dir)  # the new name must survive a crash too
        self._segments.append(seg)
        self._sizes[seg.path] = 0
        self._counts[seg.path] = 0
        self._active[cls] = seg
        return seg

    def _make_room(self, need: int) -> bool:
        """Drop oldest metrics segments until `need` bytes fit; False if they cannot."""
        while sum(self._sizes.values()) + need > self.max_bytes:
            victim = next((s for s in self._segments if s.cls == DROPPABLE), None)
            if victim is None:
                return False
            dropped = self._read(victim)
            for kind in ("metrics", "llm_calls"):
                n = sum(1 for b in dropped if b.kind == kind)
                if n:
                    self._count_drop(kind, n)
            log.warning("outage spool %s full: dropped %d oldest metrics batch(es) (%s)",
                        self.dir, len(dropped), victim.path.name)
            self._forget(victim)
        return True

    def _count_drop(self, kind: str, n: int) -> None:
        self._dropped[kind] = self._dropped.get(kind, 0) + n
        if self._metrics:
            self._metrics.dropped.labels(kind=kind).inc(n)

    def _forget(self, seg: Segment) -> None:
        seg.path.unlink(missing_ok=True)
        if seg in self._segments:  # a metrics segment may be dropped while being flushed
            self._segments.remove(seg)
        self._sizes.pop(seg.path, None)
        self._counts.pop(seg.path, None)
        if self._active.get(seg.cls) == seg:
            del self._active[seg.cls]

    # ------------------------------------------------------------------ flushing

    def oldest(self) -> Segment | None:
        """The segment to flush next; sealed first, so appends go to a new one meanwhile."""
        with self._lock:
            if not self._segments:
                return None
            seg = self._segments[0]
            if self._active.get(seg.cls) == seg:
                del self._active[seg.cls]
            return seg

    def read(self, seg: Segment) -> list[Batch]:
        with self._lock:
            return self._read(seg)

    def remove(self, seg: Segment) -> None:
        """The segment's batches are committed in PostgreSQL: delete it."""
        with self._lock:
            n = self._counts.get(seg.path, 0)
            self._forget(seg)
            fsync_dir(self.dir)
            for stream, (seq, _) in list(self._cursors.items()):
                if seq <= seg.seq:  # segments are removed oldest first: that cursor is committed
                    del self._cursors[stream]
            if self._metrics:
                self._metrics.flushed.inc(n)
            self._publish()

    def _read(self, seg: Segment) -> list[Batch]:
        out: list[Batch] = []
        try:
            raw = seg.path.read_bytes()
        except FileNotFoundError:
            return out
        lines = raw.split(b"\n")
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                obj = json.loads(line)
                out.append(Batch(kind=obj["kind"], payload=obj["payload"], batch_id=obj["id"]))
            except (ValueError, KeyError, TypeError):
                last = i == len(lines) - 1  # no newline after it: a torn final append
                log.error("outage spool %s line %d is %s; skipped", seg.path.name, i + 1,
                          "a torn final write (that append never completed)" if last else "corrupt")
        return out

    def quarantine(self, batch: Batch, reason: str) -> str:
        """Keep a batch PostgreSQL refused (it would block the flush forever) for the admin."""
        path = self.dir / "rejected.jsonl"
        line = json.dumps({"reason": reason, "batch": json.loads(batch.encode())}, ensure_ascii=False)
        with self._lock, open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        return str(path)

    # ------------------------------------------------------------------ cursor mirror

    def save_cursor(self, stream: str, cursor: str) -> None:
        """Remember the last committed cursor for a start while PostgreSQL is down."""
        path = self.dir / "cursors.json"
        with self._lock:
            data = self._load_mirror()
            data[stream] = cursor
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)

    def mirrored_cursor(self, stream: str) -> str | None:
        with self._lock:
            return self._load_mirror().get(stream)

    def _load_mirror(self) -> dict[str, str]:
        try:
            data = json.loads((self.dir / "cursors.json").read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}
