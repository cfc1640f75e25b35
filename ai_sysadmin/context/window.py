"""The L2 trigger window: recent triggers as (template, unit) entries with counts, bounded.

Triggers arrive as deltas (L1 checkpoints); the window keeps one entry per (template,
unit) with its count, worst severity, first/last time, the newest trigger ids and one
short sample line -- never raw floods.  At most `max_entries` entries: the oldest (by
last time) fold into per-category tallies, so memory is bounded whatever the trigger
rate.  The window is persisted (atomic JSON) so a restart does not lose it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ai_sysadmin.durable import write_atomic
from ai_sysadmin.trigger.model import SEVERITY_RANK, Trigger

log = logging.getLogger(__name__)

SAMPLE_CHARS = 160  # one sample line per entry, cut to this
IDS_KEPT = 3  # newest trigger ids per entry (evidence references)
VERSION = 1


@dataclass
class Entry:
    template: str
    unit: str | None
    category: str
    severity: str
    source: str
    count: int
    first_seen: str  # ISO times: the window is persisted as JSON
    last_seen: str
    sample: str
    ids: list[str] = field(default_factory=list)
    incident_id: int | None = None
    claimed_unit: str | None = None  # a unit the lines named without proof (trigger/entry.py): text only


@dataclass
class Folded:
    """What left the window: per-category entry and occurrence counts."""

    entries: int = 0
    occurrences: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    since: str | None = None
    until: str | None = None


class TriggerWindow:
    def __init__(self, max_entries: int, path: Path | None = None):
        self.max_entries = max_entries
        self.path = path
        self.entries: dict[str, Entry] = {}  # key: template_id|unit
        self.folded = Folded()
        self.dirty = False

    def add(self, triggers: Iterable[Trigger], incident_of: dict[str, int] | None = None) -> None:
        for t in triggers:
            key = f"{t.template_id}|{t.unit or ''}"
            e = self.entries.get(key)
            first, last = t.first_seen.isoformat(), t.last_seen.isoformat()
            if e is None:
                e = Entry(
                    t.template,
                    t.unit,
                    t.category,
                    t.severity,
                    t.source,
                    0,
                    first,
                    last,
                    (t.sample[-1] if t.sample else t.template)[:SAMPLE_CHARS],
                )
                self.entries[key] = e
            e.count += t.count
            claimed = t.fields.get("claimed_unit") or t.fields.get("user_unit")
            if isinstance(claimed, str):
                e.claimed_unit = claimed[:120]
            if SEVERITY_RANK[t.severity] > SEVERITY_RANK[e.severity]:
                e.severity = t.severity
            if e.source == "model" and t.source != "model":
                e.source = t.source  # rule evidence outranks the model's opinion
            e.first_seen, e.last_seen = min(e.first_seen, first), max(e.last_seen, last)
            if t.sample:
                e.sample = t.sample[-1][:SAMPLE_CHARS]
            if t.id in e.ids:
                e.ids.remove(t.id)
            e.ids = [*e.ids, t.id][-IDS_KEPT:]
            if incident_of and t.id in incident_of:
                e.incident_id = incident_of[t.id]
            # Re-insert at the end: dict order is recency, the fold takes from the front.
            self.entries[key] = self.entries.pop(key)
            self.dirty = True
        self._bound()

    def _bound(self) -> None:
        while len(self.entries) > self.max_entries:
            key = next(iter(self.entries))
            self.fold(key)

    def fold(self, key: str) -> None:
        e = self.entries.pop(key)
        f = self.folded
        f.entries += 1
        f.occurrences += e.count
        f.by_category[e.category] = f.by_category.get(e.category, 0) + e.count
        f.since = min(f.since or e.first_seen, e.first_seen)
        f.until = max(f.until or e.last_seen, e.last_seen)
        self.dirty = True

    def newest(self) -> list[Entry]:
        """Entries oldest first (rendering and compaction order)."""
        return list(self.entries.values())

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "entries": [[k, asdict(e)] for k, e in self.entries.items()],
            "folded": asdict(self.folded),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], max_entries: int, path: Path | None = None) -> TriggerWindow:
        w = cls(max_entries, path)
        if data.get("version") != VERSION:
            return w
        for key, e in data.get("entries", []):
            w.entries[key] = Entry(**e)
        w.folded = Folded(**data.get("folded", {}))
        w._bound()
        return w

    @classmethod
    def load(cls, path: Path, max_entries: int) -> TriggerWindow:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")), max_entries, path)
        except FileNotFoundError:
            return cls(max_entries, path)
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a torn or foreign file: start empty, say so
            log.warning("context window %s unreadable (%s); starting empty", path, exc)
            return cls(max_entries, path)

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.to_json(), separators=(",", ":")).encode())
        self.dirty = False
