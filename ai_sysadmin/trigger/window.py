"""Dedup windows: one trigger per (template, unit, source) per aligned window, with a count.

Windows sit on a fixed grid (floor(entry time / window)), so entries read again after
a restart land in the same windows and so on the same trigger ids.

The store *adds* counts (ai_sysadmin/store/triggers.py): each record carries the
occurrences since the previous record of that id, together with the cursor of the last
entry they cover.  So an open trigger keeps two views: the running total (what
`replay` prints) and the delta not yet handed to the sink (what a checkpoint takes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.model import MAX_SAMPLES, Trigger, trigger_id

SAMPLE_CHARS = 1000  # one sample line kept at most this long; the count says how many there were


def usec_to_dt(usec: int) -> datetime:
    return datetime.fromtimestamp(usec / 1_000_000, tz=UTC)


@dataclass
class Open:
    """A trigger being built in the current (or a not yet recorded) window."""

    id: str
    source: str
    severity: str
    category: str
    summary: str | None
    unit: str | None
    template_id: str
    cluster_id: int
    window: int  # window index on the grid
    min_count: int
    template: str | None = None  # fixed text (bursts of a unit); else the cluster's current template
    count: int = 0
    first_usec: int = 0
    last_usec: int = 0
    sample: list[str] = field(default_factory=list)
    host: str | None = None
    boot_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    delta: int = 0  # occurrences not yet handed to the sink
    delta_first_usec: int = 0
    delta_sample: list[str] = field(default_factory=list)  # newest lines since the last hand-over
    recorded_once: bool = False

    @property
    def ready(self) -> bool:
        return self.count >= self.min_count

    @property
    def dirty(self) -> bool:
        return self.delta > 0


class Windows:
    def __init__(
        self,
        window_seconds: int,
        template_text: Callable[[int], str],
        max_samples: int = MAX_SAMPLES,
        *,
        host: str | None = None,
    ):
        """`host`: every entry is that host's, whatever its `_HOSTNAME` says (a hub's member
        journals: the host is the file's, trigger/remote_names.py), and ids are scoped to it."""
        if window_seconds < 1:
            raise ValueError("window_seconds must be >= 1")
        self.window_usec = window_seconds * 1_000_000
        self.max_samples = max_samples
        self.host = host
        self._template_text = template_text
        self.open: dict[str, Open] = {}
        # Trigger ids are a sha256 per (template, unit, window, source); lines repeat, so memoise.
        self._ids: dict[tuple[str, str | None, int, str], str] = {}

    def index(self, usec: int) -> int:
        return usec // self.window_usec

    def start_dt(self, window: int) -> datetime:
        return usec_to_dt(window * self.window_usec)

    def add(
        self,
        entry: Entry,
        *,
        window: int,
        source: str,
        severity: str,
        category: str,
        summary: str | None,
        template_id: str,
        cluster_id: int,
        min_count: int = 1,
        count: int = 1,
        sample: bool = True,
        template: str | None = None,
    ) -> Open:
        unit = entry.source_unit
        key = (template_id, unit, window, source)
        tid = self._ids.get(key)
        if tid is None:
            tid = trigger_id(template_id, unit, self.start_dt(window), source, self.host)
            if len(self._ids) > 100_000:
                self._ids.clear()
            self._ids[key] = tid
        t = self.open.get(tid)
        if t is None:
            t = self.open[tid] = Open(
                id=tid,
                source=source,
                severity=severity,
                category=category,
                summary=summary,
                unit=unit,
                template_id=template_id,
                cluster_id=cluster_id,
                window=window,
                min_count=min_count,
                first_usec=entry.realtime_usec,
                last_usec=entry.realtime_usec,
                host=self.host if self.host is not None else entry.hostname,
                boot_id=entry.boot_id,
                fields=_context(entry),
                template=template,
            )
        elif t.fields.get("sender") != entry.sender:
            # One entry from another sender makes the whole trigger's text unproven (fail safe).
            t.fields.pop("sender", None)
        t.count += count
        usec = entry.realtime_usec
        if usec > t.last_usec:
            t.last_usec = usec
        if usec < t.first_usec:
            t.first_usec = usec
        if t.delta == 0 or usec < t.delta_first_usec:
            t.delta_first_usec = usec
        t.delta += count
        if sample:
            if len(t.sample) < self.max_samples:
                t.sample.append(entry.message[:SAMPLE_CHARS])
            t.delta_sample.append(entry.message[:SAMPLE_CHARS])
            if len(t.delta_sample) > self.max_samples:
                del t.delta_sample[0]
        return t

    def take_deltas(self) -> list[Trigger]:
        """What the sink has not seen yet: per ready trigger, the occurrences since its last record.

        A trigger below its rule's min_count is handed over whole once it gets there.
        """
        out = []
        for t in self.open.values():
            if t.delta and t.ready:
                first = t.first_usec if not t.recorded_once else t.delta_first_usec
                sample = t.delta_sample if t.recorded_once else (t.sample + t.delta_sample[len(t.sample) :])
                out.append(
                    Trigger(
                        id=t.id,
                        severity=t.severity,
                        category=t.category,
                        source=t.source,
                        unit=t.unit,
                        template=t.template or self._template_text(t.cluster_id),
                        template_id=t.template_id,
                        count=t.delta,
                        first_seen=usec_to_dt(first),
                        last_seen=usec_to_dt(t.last_usec),
                        sample=list(sample[-self.max_samples :]),
                        summary=t.summary,
                        host=t.host,
                        boot_id=t.boot_id,
                        fields=dict(t.fields),
                    )
                )
                t.delta = 0
                t.delta_sample = []
                t.recorded_once = True
        return out

    def give_back(self, deltas: list[Trigger]) -> None:
        """The sink refused `deltas`: add them back so the next checkpoint carries them."""
        for d in deltas:
            t = self.open.get(d.id)
            if t is not None:
                t.delta += d.count
                t.delta_first_usec = min(t.delta_first_usec or 2**62, int(d.first_seen.timestamp() * 1_000_000))
                t.delta_sample = (list(d.sample) + t.delta_sample)[-self.max_samples :]

    def retire_before(self, window: int) -> None:
        """Forget handed-over triggers of windows before `window`: no entry can reach them again."""
        for tid in [tid for tid, t in self.open.items() if t.window < window and (not t.dirty or not t.ready)]:
            del self.open[tid]

    def carried_state(self) -> list[dict[str, Any]]:
        """Open triggers whose state a restart cannot rebuild from the entries after the cursor.

        A rule with min_count counts across the whole window: a restart that began at
        zero would need min_count more lines (or never record a trigger already half
        counted).  Triggers without min_count are rebuilt by the entries read again.
        """
        return [asdict(t) for t in self.open.values() if t.min_count > 1]

    def restore(self, carried: list[dict[str, Any]]) -> None:
        for data in carried:
            t = Open(**data)
            self.open[t.id] = t

    def totals(self) -> list[Trigger]:
        """Every ready trigger with its running total (what `replay` prints)."""
        return [self.to_trigger(t) for t in self.open.values() if t.ready]

    def to_trigger(self, t: Open) -> Trigger:
        return Trigger(
            id=t.id,
            severity=t.severity,
            category=t.category,
            source=t.source,
            unit=t.unit,
            template=t.template or self._template_text(t.cluster_id),
            template_id=t.template_id,
            count=t.count,
            first_seen=usec_to_dt(t.first_usec),
            last_seen=usec_to_dt(t.last_usec),
            sample=list(t.sample),
            summary=t.summary,
            host=t.host,
            boot_id=t.boot_id,
            fields=dict(t.fields),
        )


def _context(entry: Entry) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    if entry.identifier:
        ctx["identifier"] = entry.identifier
    if entry.pid:
        ctx["pid"] = entry.pid
    if entry.comm:
        ctx["comm"] = entry.comm
    if entry.priority is not None:
        ctx["priority"] = entry.priority
    if entry.message_len > len(entry.message):
        ctx["message_length"] = entry.message_len
    if entry.result:
        ctx.update({k.lower(): v for k, v in entry.result.items()})
    # Trust (trigger/entry.py): who provably sent it, and what it claimed without proof.
    if entry.sender:
        ctx["sender"] = entry.sender
    if entry.claimed_unit:
        ctx["claimed_unit"] = entry.claimed_unit[:256]
    if entry.user_unit:
        ctx["user_unit"] = entry.user_unit[:256]
    return ctx
