"""The typed trigger event: what L1 (and the metric thresholds) hand to the layers above.

A trigger stands for one (template, unit) problem within a dedup window: it carries a
count and a few sample lines, never one row per log line.  Its `id` is derived from
what it is about -- not from when it was processed -- so a replay after a crash
produces the same id and the store's upsert keeps exactly one copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The stable vocabulary (users alert on these strings) lives on the ground floor.
from ai_sysadmin.vocab import CATEGORIES, SEVERITIES, SEVERITY_RANK  # noqa: F401 (re-exported)

MAX_SAMPLES = 5


def trigger_id(template_id: str, unit: str | None, window_start: datetime, source: str, host: str | None = None) -> str:
    """Deterministic id: the same problem in the same window always maps to the same id.

    `host` scopes the id to one fleet member (a hub reads many hosts: the same template on
    two of them is two triggers).  Without it the key is the one every host used before
    fleets, so a standalone host's ids do not change.
    """
    key = f"{template_id}|{unit or ''}|{int(window_start.timestamp())}|{source}"
    if host is not None:
        key += f"|host={host}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def template_id(template: str) -> str:
    return hashlib.sha256(template.encode()).hexdigest()[:16]


@dataclass
class Trigger:
    id: str
    severity: str  # one of SEVERITIES
    category: str  # one of CATEGORIES
    source: str  # "rule:<id>" | "model" | "burst" | "threshold:<name>"
    unit: str | None
    template: str
    template_id: str
    count: int
    first_seen: datetime  # timezone-aware UTC
    last_seen: datetime
    sample: list[str] = field(default_factory=list)
    summary: str | None = None
    host: str | None = None
    boot_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # extra context: pid, comm, identifier, ...

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} not in {SEVERITIES}")
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} not in {CATEGORIES}")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "category": self.category,
            "source": self.source,
            "unit": self.unit,
            "template": self.template,
            "template_id": self.template_id,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "sample": list(self.sample),
            "summary": self.summary,
            "host": self.host,
            "boot_id": self.boot_id,
            "fields": dict(self.fields),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trigger:
        """Inverse of `to_json` (file sinks, spools, the API)."""
        return cls(
            id=data["id"],
            severity=data["severity"],
            category=data["category"],
            source=data["source"],
            unit=data.get("unit"),
            template=data["template"],
            template_id=data["template_id"],
            count=int(data["count"]),
            first_seen=datetime.fromisoformat(data["first_seen"]),
            last_seen=datetime.fromisoformat(data["last_seen"]),
            sample=list(data.get("sample") or []),
            summary=data.get("summary"),
            host=data.get("host"),
            boot_id=data.get("boot_id"),
            fields=dict(data.get("fields") or {}),
        )
