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

Atomic per record: each batch is one `write` on an O_APPEND descriptor; a write that
fails half-way (ENOSPC, a file-size limit) is cut back to where it started and raised
as `SpoolFull`, so the caller knows it is not spooled and no torn tail corrupts the
next record.  Size accounting follows the file, not the intent.  A torn tail left by
a crash mid-write is cut off when the spool is opened.

Cursor-only batches (L1 checkpoints that carry only a newer journal cursor) would fill
the never-dropped segments during a long outage; they are coalesced instead: the newest
one per stream waits in `cursor-<stream>.json` (replaced atomically) and is flushed
after the segments.  A later batch of the same stream that carries its own cursor
supersedes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from ai_sysadmin.durable import fsync_dir, write_atomic

log = logging.getLogger(__name__)

# Which segment class each batch kind goes to.
KIND_CLASS = {"triggers": "events", "audit": "events", "metrics": "metrics", "llm_calls": "metrics"}
DROPPABLE = "metrics"
_SEGMENT_RE = re.compile(r"^(\d{12})-(events|metrics)\.jsonl$")
_PENDING_RE = re.compile(r"^cursor-[0-9a-f]{16}\.json$")
PENDING_SEQ = 1 << 62  # a coalesced cursor sorts after every segment


def append_whole(path: Path, data: bytes) -> None:
    """Append `data` as one whole record or not at all (a failed/short write is cut back and raised)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        start = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(28, f"short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, start)
                os.fsync(fd)
            except OSError:
                pass  # the reader cuts an unterminated tail; the caller is told either way
            raise
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Batch:
    """One unit of work for the database: applied exactly once, in one transaction."""

    kind: str
    payload: dict[str, Any]
    batch_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def encode(self) -> bytes:
        # ASCII escapes: a payload may hold lone surrogates or NUL from hostile log text;
        # the spool must take it whatever it is (the database side sanitises).
        line = json.dumps(
            {"id": self.batch_id, "kind": self.kind, "payload": self.payload, "at": time.time()},
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return line.encode() + b"\n"

    @property
    def cursor_only(self) -> bool:
        return self.kind == "triggers" and not self.payload.get("triggers") and self.payload.get("cursor") is not None


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
        self.dropped = Counter(
            "ai_sysadmin_spool_dropped_batches", "Batches dropped from a full spool", ["kind"], registry=registry
        )
        self.flushed = Counter(
            "ai_sysadmin_spool_flushed_batches", "Batches flushed from the spool to PostgreSQL", registry=registry
        )


class Spool:
    """Thread-safe; every method does blocking file I/O (call through asyncio.to_thread)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int,
        warn_ratio: float = 0.8,
        metrics: SpoolMetrics | None = None,
    ):
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
        # stream -> (segment seq, cursor, checkpoint number) of the newest batch waiting here
        self._cursors: dict[str, tuple[int, str, int | None]] = {}
        self._pending: dict[str, tuple[Batch, Path, float | None]] = {}  # coalesced cursor-only batch per stream
        self._dropped = {"metrics": 0, "llm_calls": 0}
        self._warned = False
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._scan()

    # ------------------------------------------------------------------ state

    def _scan(self) -> None:
        for path in sorted(self.dir.iterdir()):
            if _PENDING_RE.match(path.name):
                self._load_pending(path)
                continue
            m = _SEGMENT_RE.match(path.name)
            if not m:
                continue
            seg = Segment(int(m.group(1)), m.group(2), path)
            _cut_torn_tail(path)
            batches = self._read(seg)
            if not batches:
                path.unlink()
                continue
            self._segments.append(seg)
            self._sizes[path] = path.stat().st_size
            self._counts[path] = len(batches)
            for b in batches:
                self._note_cursor(seg, b)
        if self._segments or self._pending:
            log.warning(
                "outage spool %s holds %s from an earlier run; flushing when PostgreSQL answers",
                self.dir,
                self.state().describe(),
            )
        self._publish()

    def _load_pending(self, path: Path) -> None:
        try:
            obj = json.loads(path.read_bytes())
            batch = Batch(kind=obj["kind"], payload=obj["payload"], batch_id=obj["id"])
        except (OSError, ValueError, KeyError, TypeError):
            log.error(
                "outage spool %s: %s is unreadable; removed (a newer cursor comes with the next checkpoint)",
                self.dir,
                path.name,
            )
            path.unlink(missing_ok=True)
            return
        stream = batch.payload.get("stream", "journal")
        self._pending[stream] = (batch, path, obj.get("at"))
        self._note_cursor(None, batch)

    def _note_cursor(self, seg: Segment | None, batch: Batch) -> None:
        if batch.kind == "triggers" and batch.payload.get("cursor") is not None:
            self._cursors[batch.payload.get("stream", "journal")] = (
                seg.seq if seg is not None else PENDING_SEQ,
                batch.payload["cursor"],
                batch.payload.get("checkpoint"),
            )

    def state(self) -> SpoolState:
        total = sum(self._sizes.values())
        events = sum(self._sizes[s.path] for s in self._segments if s.cls != DROPPABLE)
        return SpoolState(
            records=sum(self._counts.values()) + len(self._pending),
            bytes=total,
            max_bytes=self.max_bytes,
            fill_ratio=total / self.max_bytes,
            warn_ratio=self.warn_ratio,
            dropped=dict(self._dropped),
            over_bound=events > self.max_bytes,
        )

    def empty(self) -> bool:
        return not self._segments and not self._pending

    def oldest_spooled_at(self) -> float | None:
        """Epoch seconds at which the oldest batch still waiting was spooled (None: empty)."""
        with self._lock:
            times = [at for _, _, at in self._pending.values() if at is not None]
            if self._segments:
                try:
                    with open(self._segments[0].path, "rb") as f:
                        at = json.loads(f.readline()).get("at")
                    if at is not None:
                        times.append(float(at))
                except (OSError, ValueError, AttributeError):
                    times.append(os.stat(self._segments[0].path).st_ctime if self._segments[0].path.exists() else 0)
            return min(times) if times else None

    def cursor(self, stream: str) -> str | None:
        """The newest cursor of `stream` still waiting here (newer than the database's)."""
        found = self._cursors.get(stream)
        return found[1] if found else None

    def position(self, stream: str) -> tuple[str, int | None] | None:
        """(cursor, checkpoint number) of the newest batch of `stream` waiting here."""
        found = self._cursors.get(stream)
        return (found[1], found[2]) if found else None

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
        """Durably append `batch`; False when it was a metrics batch dropped for lack of room.

        Raises SpoolFull when the disk refuses the write; nothing of the batch is then kept.
        """
        cls = KIND_CLASS[batch.kind]
        data = batch.encode()
        with self._lock:
            if batch.cursor_only:
                self._put_pending(batch, data)
                return True
            if not self._make_room(len(data)) and cls == DROPPABLE:
                self._count_drop(batch.kind, 1)
                self._publish()
                return False
            seg = self._active.get(cls)
            if seg is None or self._sizes[seg.path] >= self.segment_bytes:
                seg = self._new_segment(cls)
            try:
                append_whole(seg.path, data)
            except OSError as exc:
                self._sizes[seg.path] = _size(seg.path)  # exact, whatever the cut-back managed
                raise SpoolFull(exc.errno or 28, f"outage spool {self.dir}: {exc.strerror or exc}") from exc
            self._sizes[seg.path] += len(data)
            self._counts[seg.path] += 1
            self._note_cursor(seg, batch)
            stream = batch.payload.get("stream", "journal") if batch.kind == "triggers" else None
            if stream in self._pending and batch.payload.get("cursor") is not None:
                self._drop_pending(stream)  # superseded: this batch carries a newer cursor
            if self.state().over_bound:
                log.error(
                    "outage spool %s exceeds its bound with triggers/audit records alone (%s); "
                    "they are kept -- bring PostgreSQL back",
                    self.dir,
                    self.state().describe(),
                )
            self._publish()
            return True

    def _put_pending(self, batch: Batch, data: bytes) -> None:
        stream = batch.payload.get("stream", "journal")
        path = self.dir / f"cursor-{hashlib.sha256(stream.encode()).hexdigest()[:16]}.json"
        old = self._pending.get(stream)
        at = old[2] if old else json.loads(data).get("at")  # the oldest moment a cursor waits since
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise SpoolFull(exc.errno or 28, f"outage spool {self.dir}: {exc.strerror or exc}") from exc
        self._pending[stream] = (batch, path, at)
        self._note_cursor(None, batch)
        self._publish()

    def _drop_pending(self, stream: str) -> None:
        found = self._pending.pop(stream, None)
        if found is not None:
            found[1].unlink(missing_ok=True)

    def pending_cursors(self) -> list[Batch]:
        """Coalesced cursor-only batches, flushed after every segment."""
        with self._lock:
            return [b for b, _, _ in self._pending.values()]

    def remove_pending(self, batch: Batch) -> None:
        """`batch` (from pending_cursors) is committed: forget it unless a newer one replaced it."""
        with self._lock:
            stream = batch.payload.get("stream", "journal")
            found = self._pending.get(stream)
            if found is not None and found[0].batch_id == batch.batch_id:
                self._drop_pending(stream)
                fsync_dir(self.dir)
                if self._cursors.get(stream, (0, None))[0] == PENDING_SEQ:
                    del self._cursors[stream]
            self._publish()

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
            log.warning(
                "outage spool %s full: dropped %d oldest metrics batch(es) (%s)",
                self.dir,
                len(dropped),
                victim.path.name,
            )
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
            for stream, (seq, _, _) in list(self._cursors.items()):
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
                log.error(
                    "outage spool %s line %d is %s; skipped",
                    seg.path.name,
                    i + 1,
                    "a torn final write (that append never completed)" if last else "corrupt",
                )
        return out

    # ------------------------------------------------------------------ cursor mirror

    def save_cursor(self, stream: str, cursor: str, checkpoint: int | None = None) -> None:
        """Remember the last committed cursor (and checkpoint number) for a start while PostgreSQL is down."""
        path = self.dir / "cursors.json"
        with self._lock:
            data = self._load_mirror()
            data[stream] = cursor
            data[f"{stream}#checkpoint"] = checkpoint
            write_atomic(path, json.dumps(data).encode())

    def mirrored_position(self, stream: str) -> tuple[str | None, int | None]:
        with self._lock:
            data = self._load_mirror()
            cursor, n = data.get(stream), data.get(f"{stream}#checkpoint")
            return cursor if isinstance(cursor, str) else None, n if isinstance(n, int) else None

    def _load_mirror(self) -> dict[str, str | int | None]:
        """stream -> cursor and "<stream>#checkpoint" -> checkpoint number (a file anyone may have edited)."""
        try:
            data = json.loads((self.dir / "cursors.json").read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _cut_torn_tail(path: Path) -> None:
    """A crash mid-append can leave an unterminated last line: cut it so the next append starts clean."""
    try:
        with open(path, "rb+") as f:
            data = f.read()
            if not data or data.endswith(b"\n"):
                return
            keep = data.rfind(b"\n") + 1
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return
    log.error(
        "outage spool %s: cut a torn final write (%d bytes; that append never completed)", path.name, len(data) - keep
    )


def read_state(directory: str | os.PathLike[str], max_bytes: int, warn_ratio: float = 0.8) -> SpoolState | None:
    """The spool's fill as `doctor` reports it: read only (creates, repairs and deletes nothing)."""
    d = Path(directory)
    try:
        names = sorted(p.name for p in d.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return None
    records = total = events = 0
    for name in names:
        path = d / name
        if _PENDING_RE.match(name):
            records += 1
            continue
        m = _SEGMENT_RE.match(name)
        if not m:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        n = sum(1 for line in data.split(b"\n") if line.strip())
        records += n
        total += len(data)
        if m.group(2) != DROPPABLE:
            events += len(data)
    return SpoolState(
        records=records,
        bytes=total,
        max_bytes=max_bytes,
        fill_ratio=total / max_bytes,
        warn_ratio=warn_ratio,
        dropped={},
        over_bound=events > max_bytes,
    )
