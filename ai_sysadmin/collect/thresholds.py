"""Threshold triggers: the collector's readings that cross `thresholds.*` become `Trigger`s.

They use L1's Trigger type, vocabulary and sink, with source `threshold:<name>`.  The id
is stable within an hour per (threshold, subject), so a disk that stays full is one
trigger whose count grows, not one trigger per sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from ai_sysadmin.collect.units import UnitStates
from ai_sysadmin.config import ThresholdsConfig
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.trigger.model import Trigger, template_id, trigger_id

WINDOW_S = 3600


def _trigger(
    name: str,
    severity: str,
    category: str,
    subject: str | None,
    template: str,
    line: str,
    at: datetime,
    unit: str | None = None,
    **fields: object,
) -> Trigger:
    tid = template_id(template)
    window = datetime.fromtimestamp(int(at.timestamp()) // WINDOW_S * WINDOW_S, UTC)
    source = f"threshold:{name}"
    return Trigger(
        id=trigger_id(tid, unit or subject, window, source),
        severity=severity,
        category=category,
        source=source,
        unit=unit,
        template=template,
        template_id=tid,
        count=1,
        first_seen=at,
        last_seen=at,
        sample=[line],
        summary=line,
        fields={"subject": subject, **fields},
    )


def evaluate(samples: Iterable[Sample], units: UnitStates, cfg: ThresholdsConfig) -> list[Trigger]:
    out: list[Trigger] = []
    for s in samples:
        at = datetime.fromtimestamp(s.ts, UTC)
        if s.name == "disk.used_percent" and s.value >= cfg.disk_percent:
            sev = "critical" if s.value >= 98 else "high"
            out.append(
                _trigger(
                    "disk",
                    sev,
                    "disk-full",
                    s.subject,
                    "filesystem <*> is <*>% full",
                    f"filesystem {s.subject} is {s.value:.1f}% full (threshold {cfg.disk_percent:g}%)",
                    at,
                    value=s.value,
                )
            )
        elif s.name == "disk.inodes_used_percent" and s.value >= cfg.inode_percent:
            out.append(
                _trigger(
                    "inodes",
                    "high",
                    "disk-full",
                    s.subject,
                    "filesystem <*> uses <*>% of its inodes",
                    f"filesystem {s.subject} uses {s.value:.1f}% of its inodes",
                    at,
                    value=s.value,
                )
            )
        elif s.name == "psi.memory.some_avg10" and s.value >= cfg.memory_pressure_avg10:
            out.append(
                _trigger(
                    "memory-pressure",
                    "high",
                    "resource",
                    None,
                    "memory pressure <*>% (avg10)",
                    f"memory pressure {s.value:.1f}% of the last 10s stalled",
                    at,
                    value=s.value,
                )
            )
        elif s.name == "swap.pages_per_s" and s.value >= cfg.swap_pages_per_s:
            out.append(
                _trigger(
                    "swap-storm",
                    "high",
                    "resource",
                    None,
                    "swapping <*> pages/s",
                    f"swapping {s.value:.0f} pages/s (threshold {cfg.swap_pages_per_s:g})",
                    at,
                    value=s.value,
                )
            )
    failed = units.failed
    if units.available and len(failed) >= cfg.failed_units:
        at = datetime.now(UTC)
        for unit in failed:
            out.append(
                _trigger(
                    "failed-unit",
                    "high",
                    "unit-failure",
                    None,
                    "unit <*> is in state failed",
                    f"unit {unit} is in state failed",
                    at,
                    unit=unit,
                )
            )
    return out
